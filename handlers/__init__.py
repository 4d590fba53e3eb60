"""Feature handlers, one router per module, joined here in the one written order.

First match wins (see wxbot/router.py); the help router holds the fallback and stays last.
"""
from handlers import broadcast, contest, deliveries, help, members, quiz, study

ROUTERS = [
    members.router,
    deliveries.router,
    broadcast.router,
    study.router,
    quiz.router,
    contest.router,
    help.router,
]
