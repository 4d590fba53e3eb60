"""Feature handlers, one router per module, joined here in the one written order.

First match wins (see wxbot/router.py); the help router holds the fallback and stays last.
"""
from handlers import help, members

ROUTERS = [
    members.router,
    help.router,
]
