"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wxbot.wsgi:app`."""
from wxbot import create_app

app = create_app()
