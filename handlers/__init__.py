"""Feature handlers, one router per module, joined here in the one written order.

First match wins (see wxbot/router.py); the help router holds the fallback and stays last.
"""
from handlers import broadcast, contest, deliveries, development, events, feedback, help, members, quiz, study
from wxbot.router import Dispatcher, Router

ROUTERS = [
    # First: a follow by scanning a check-in code is a check-in (with its welcome), not only a follow.
    events.router,
    members.router,
    deliveries.router,
    broadcast.router,
    study.router,
    quiz.router,
    contest.router,
    feedback.router,
    development.router,
    help.router,
]


# 帮助's sections, in the order members use them (routing order is for matching).
HELP_TOPICS = ("学习", "答题", "活动", "留言", "我的", "群发")


def dispatcher(first: list[Router] = ()) -> Dispatcher:
    """The routers in their order (with `first` in front: tests), and how member-only commands
    answer someone not bound yet."""
    return Dispatcher([*first, *ROUTERS], unbound=members.unbound_reply, topics=HELP_TOPICS)
