"""`flask --app wxbot ...` commands: one module per feature, joined here in one written order."""
from __future__ import annotations

import click
from flask import Flask

from models.tracing import current_request_id, new_request_id


def register_commands(app: Flask) -> None:
    from wxbot.commands import accounts, backup, broadcast, events, questions, report, roster, setup
    for command in (setup.db_cli, setup.demo_cli, setup.menu_cli, roster.roster_cli, questions.questions_cli,
                    events.events_cli, accounts.admin_cli, broadcast.broadcast_cli, broadcast.push_cli,
                    backup.backup_cli, report.report_cli, setup.urls, setup.chat, setup.scheduler, setup.worker):
        app.cli.add_command(traced(command))


def traced(command: click.Command) -> click.Command:
    """A command run gets a request id (cli-…), as a message or a page request does: its log lines and
    the campaigns it creates carry it, so a broadcast sent from the command line can be followed into
    the delivery workers' logs. The commands are module objects shared by every app made in a
    process (the tests make hundreds): they are wrapped once."""
    if getattr(command, "wxbot_traced", False):
        return command
    invoke = command.invoke

    def run(ctx: click.Context):
        token = current_request_id.set(f"cli-{new_request_id()[:10]}")
        try:
            return invoke(ctx)
        finally:
            current_request_id.reset(token)
    command.invoke = run
    command.wxbot_traced = True
    return command
