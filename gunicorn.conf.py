"""gunicorn settings. Workers, threads and bind can be set by GUNICORN_CMD_ARGS or the command line."""
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gthread with a time limit on slow request headers (wxbot/bodyread.py: slow senders cannot hold threads).
worker_class = "wxbot.gunicorn_worker.TimedThreadWorker"
# Threads per worker: the sandbox simulator calls back into the same server, and a slow handler
# must not hold up other users. More threads than this lose to GIL contention (bench/webhook.py).
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
# No gunicornc control socket: systemd starts, reloads and stops the server, and the socket's default
# place ($HOME/.gunicorn) is not writable by the service user (an error line at every start).
control_socket_disable = True
graceful_timeout = 10
accesslog = "-"
# address "METHOD /path" status bytes NNms: the path without the query string (WeChat puts the
# user's openid there, and it must not reach the log), built cheaply.
logger_class = "wxbot.gunicorn_worker.AccessLogger"


def on_starting(server):
    """The embedded store lives in one process: refuse to start several workers on it."""
    from wxbot.config import ConfigError, load_settings
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    if not settings.redis_url and server.cfg.workers > 1:
        raise SystemExit("配置错误 redis_url: 内置存储只能单进程运行；多个 worker 需要设置 WXBOT_REDIS_URL。")
    from wxbot.gunicorn_worker import TimedThreadWorker
    TimedThreadWorker.read_timeout = settings.server.read_timeout
    _note_running_url(server.cfg.bind[0], settings.database_url)
    _metrics_directory()


def _metrics_directory() -> None:
    """/metrics adds up every worker's counters from files in one directory (prometheus_client's
    multiprocess mode). Set before any worker imports prometheus_client; a directory given by the
    environment (systemd: shared with the scheduler and workers of this host) is used as it is."""
    import shutil

    from models.heartbeats import process_alive
    from wxbot.config import ROOT
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
        return
    parent = ROOT / "instance" / "metrics"
    for old in parent.glob("*"):  # counters start again with the server, as Prometheus expects
        if old.name.isdigit() and not process_alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    path = parent / str(os.getpid())  # one per server: tests run several from one checkout
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def child_exit(server, worker):
    """A dead worker's live gauges must not be added up any more."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def _note_running_url(bind: str, database_url: str) -> None:
    """Tell `flask --app wxbot chat` (make run PORT=8765) and, in sandbox mode, every process of this
    machine where this server listens (wxbot.sandbox.address)."""
    from wxbot.config import ROOT
    from wxbot.sandbox.address import note_running_url, running_url_file
    if bind.startswith("unix:"):
        return
    host, _, port = bind.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
    instance = ROOT / "instance"
    note_running_url(running_url_file(database_url or f"sqlite:///{instance / 'wxbot.db'}", str(instance)),
                     f"http://{host}:{port}")


def post_worker_init(worker):
    """Every web process writes the message log; in the embedded default it also runs the scheduler
    and a delivery worker. What the app made at load (modules, mappers, compiled statements) is then
    moved out of the garbage collector's passes, which would otherwise walk it again and again and
    stall every thread of the worker for tens of milliseconds in a burst."""
    import gc
    import threading

    from scheduler import embedded, start_embedded
    from wxbot import services
    from wxbot.delivery.engine import DeliveryWorker
    app = worker.wsgi
    # Bound beyond loopback (make run HOST=0.0.0.0): the sandbox's pages then need a console sign-in.
    app.config["WXBOT_LISTENS_BEYOND_LOOPBACK"] = any(not _loopback_bind(b) for b in worker.cfg.bind)
    services.logwriter(app).start()  # also writes what a killed process left queued
    if embedded(app):
        worker.wxbot_scheduler = start_embedded(app)
        worker.wxbot_stop = threading.Event()
        worker.wxbot_delivery = threading.Thread(target=DeliveryWorker(app).run, args=(worker.wxbot_stop,),
                                                 name="wxbot-delivery-worker", daemon=True)
        worker.wxbot_delivery.start()
    gc.freeze()


def worker_exit(server, worker):
    """A stopping web process first lets its delivery worker finish the sends in flight (no claim is
    left to expire and be flagged as a possible duplicate), then stops its scheduler."""
    stop = getattr(worker, "wxbot_stop", None)
    if stop is not None:
        stop.set()
        worker.wxbot_delivery.join(graceful_timeout)
        worker.wxbot_scheduler.shutdown(wait=False)


def _loopback_bind(bind: str) -> bool:
    from wxbot.sandbox import is_loopback
    host = bind.rsplit(":", 1)[0].strip("[]") if not bind.startswith("unix:") else "127.0.0.1"
    return host == "localhost" or is_loopback(host)
