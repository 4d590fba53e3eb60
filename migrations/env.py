"""Alembic environment: the models' metadata, and the connection the app configures."""
from alembic import context

from models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:  # plain `alembic upgrade head`: build the app to read the configured URL
    from wxbot import create_app
    from wxbot.db import db

    with create_app().app_context(), db.engine.connect() as conn:
        run_migrations(conn)
        conn.commit()
