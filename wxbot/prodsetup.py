"""`make prod`'s first step: PostgreSQL and Redis answer, and the database exists (created if not).
Says in one sentence what to do when either is missing."""
from __future__ import annotations

import sys


def main(database_url: str, redis_url: str) -> int:
    import psycopg
    import redis
    from sqlalchemy.engine import make_url
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{url.database}"')
                print(f"已创建数据库 {url.database}。")
    except psycopg.OperationalError as exc:
        print(f"连不上 PostgreSQL（{url.host}:{url.port or 5432}）：{exc}。请先启动它，或用 PROD_DATABASE_URL 指定。")
        return 1
    try:
        redis.Redis.from_url(redis_url, socket_timeout=5).ping()
    except redis.RedisError as exc:
        print(f"连不上 Redis（{redis_url}）：{exc}。请先启动它，或用 PROD_REDIS_URL 指定。")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
