"""Requests arrive within a time limit, so that slow senders cannot hold the server's threads.

A client that sends its headers or its body one byte every few seconds keeps a gunicorn thread
blocked in recv() for as long as it likes; four of them and the server stops answering. While a
thread waits for a request's headers (TimedThreadWorker) or reads its body (BodyDeadline), the socket
is registered with one watchdog thread per process; a read still running at its deadline has the
socket's reading side shut, which ends the blocked recv() at once (a body read then raises
BodyTimeout, 408). Behind nginx, which buffers requests, this never fires; it is for direct exposure
(`make run HOST=0.0.0.0`) and for whatever nginx lets through.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

from werkzeug.exceptions import RequestTimeout


class BodyTimeout(RequestTimeout):
    """The body did not arrive within the time allowed (answered 408)."""

    description = "请求内容发送得太慢，已中止。"


class _Watchdog:
    """One thread per process that ends body reads running past their deadline."""

    TICK = 0.2

    def __init__(self):
        self._reads: dict[int, tuple[float, socket.socket]] = {}
        self._expired: set[int] = set()
        self._lock = threading.Lock()
        self._pid = 0

    def watch(self, key: int, sock: socket.socket, deadline: float) -> None:
        self._ensure_thread()
        with self._lock:
            self._reads[key] = (deadline, sock)

    def release(self, key: int) -> bool:
        """Stop watching; True when the read was cut off at its deadline."""
        with self._lock:
            self._reads.pop(key, None)
            if key in self._expired:
                self._expired.discard(key)
                return True
        return False

    def _ensure_thread(self) -> None:
        # Started on first use, per process: a thread must not cross gunicorn's fork.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._loop, name="wxbot-body-watchdog", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                late = [(key, sock) for key, (deadline, sock) in self._reads.items() if deadline <= now]
                for key, _sock in late:
                    del self._reads[key]
                    self._expired.add(key)
            for _key, sock in late:
                stop_reading(sock)


_watchdog = _Watchdog()


def stop_reading(sock: socket.socket | None) -> None:
    """Shut a connection's reading side: a blocked recv() returns, and gunicorn does not wait for the
    rest of a body nobody will read; the answer can still be written."""
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed by the client: nothing to stop
            sock.shutdown(socket.SHUT_RD)


def connection_socket(environ: dict) -> socket.socket | None:
    """The client connection's socket, where the server exposes it (gunicorn, werkzeug)."""
    return environ.get("gunicorn.socket") or environ.get("werkzeug.socket")


class _TimedInput:
    """wsgi.input whose reads end at the request's deadline."""

    def __init__(self, stream, sock: socket.socket, deadline: float):
        self._stream, self._sock, self._deadline = stream, sock, deadline

    def _timed(self, method, *args):
        key = id(threading.current_thread())
        _watchdog.watch(key, self._sock, self._deadline)
        try:
            data = method(*args)
        except OSError:  # the watchdog shut the socket mid-read (or the client went away)
            _watchdog.release(key)
            raise BodyTimeout() from None
        if _watchdog.release(key):
            raise BodyTimeout()
        return data

    def read(self, *args):
        return self._timed(self._stream.read, *args)

    def readline(self, *args):
        return self._timed(self._stream.readline, *args)

    def readlines(self, *args):
        return self._timed(self._stream.readlines, *args)

    def __iter__(self):
        return iter(self.readline, b"")


class BodyDeadline:
    """WSGI middleware: a request's body must arrive within `timeout` seconds of its start."""

    def __init__(self, app, timeout: float):
        self.app, self.timeout = app, timeout

    def __call__(self, environ, start_response):
        sock = connection_socket(environ)
        _watchdog.release(id(threading.current_thread()))  # the headers are in (TimedThreadWorker)
        if sock is not None:
            environ["wsgi.input"] = _TimedInput(environ["wsgi.input"], sock, time.monotonic() + self.timeout)
        return self.app(environ, start_response)


def watch_headers(sock: socket.socket, deadline: float):
    """Register a connection whose request headers this thread is about to read, until the
    (time.monotonic) deadline; returns the function that ends the watch."""
    key = id(threading.current_thread())
    _watchdog.watch(key, sock, deadline)
    return lambda: _watchdog.release(key)
