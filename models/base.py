"""Declarative base shared by every model, with a UTC datetime column type."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


def dialect_insert(session, model):
    """INSERT for the session's database, with its ON CONFLICT clauses (PostgreSQL and SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


# session.info: the app's caches of rows that bursts read again and again, by table (wxbot/rowcache.py);
# without one, every lookup reads the database.
ROW_CACHES = "wxbot.row_caches"


def cached_rows(session, table: str, ids: list[int], load) -> dict:
    """Rows of `table` by id as snapshots, from the app's cache when it has one, else `load(session, ids)`."""
    cache = session.info.get(ROW_CACHES, {}).get(table)
    return cache.get(session, ids) if cache is not None else load(session, ids)


# Statements built once per database and shape, their values given at execution: building an INSERT
# ... ON CONFLICT costs more CPU than running it (on the hot paths: answers, check-ins, credits).
_BUILT: dict[tuple, object] = {}


def built(session, shape: tuple, build):
    """The statement of this shape for the session's database, built by `build(insert)` the first time."""
    key = (session.get_bind().dialect.name, *shape)
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build(lambda model: dialect_insert(session, model))
    return statement


def insert_if_absent(session, model, **values) -> bool:
    """Insert a row unless its unique key is taken (by an earlier or a concurrent request); True when
    it was inserted. One INSERT ... ON CONFLICT DO NOTHING: no savepoint, no read before the write."""
    table = model.__table__
    statement = built(session, ("insert_if_absent", table.name), lambda insert: insert(table).on_conflict_do_nothing()
                      .returning(next(iter(table.primary_key.columns))))
    return session.execute(statement, values).first() is not None


def upsert(session, model, keys: tuple[str, ...], values: dict, changes: tuple[str, ...]) -> None:
    """Insert a row, or where its unique key `keys` is taken change `changes` to these values: one
    INSERT ... ON CONFLICT DO UPDATE, whoever wrote the row first."""
    table = model.__table__

    def build(insert):
        statement = insert(table)
        return statement.on_conflict_do_update(index_elements=list(keys),
                                               set_={name: statement.excluded[name] for name in changes})
    session.execute(built(session, ("upsert", table.name, keys, changes), build), values)
