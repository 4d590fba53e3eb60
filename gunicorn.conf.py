"""gunicorn settings. Workers, threads and bind can be set by GUNICORN_CMD_ARGS or the command line."""
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gthread"
# Threads per worker: the sandbox simulator calls back into the same server, and a slow handler
# must not hold up other users. More threads than this lose to GIL contention (bench/webhook.py).
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 10
accesslog = "-"
# Path without the query string: WeChat puts the user's openid there, and it must not reach the log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def on_starting(server):
    """The embedded store lives in one process: refuse to start several workers on it."""
    from wxbot.config import ConfigError, load_settings
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    if not settings.redis_url and server.cfg.workers > 1:
        raise SystemExit("配置错误 redis_url: 内置存储只能单进程运行；多个 worker 需要设置 WXBOT_REDIS_URL。")


def post_worker_init(worker):
    """In the embedded default the web process also runs the scheduler and a delivery worker."""
    import threading
    from scheduler import embedded, start_embedded
    from wxbot.delivery.engine import DeliveryWorker
    app = worker.wsgi
    if embedded(app):
        start_embedded(app)
        threading.Thread(target=DeliveryWorker(app).run, args=(threading.Event(),), name="wxbot-delivery-worker",
                         daemon=True).start()
