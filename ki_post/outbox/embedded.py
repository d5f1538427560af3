"""The embedded default: one sending thread inside the web process (``EMBEDDED_WORKER``), so that one
``flask run`` does everything. Separate ``flask outbox work`` processes replace it in production."""
from __future__ import annotations

import logging
import os
import threading

from flask import Flask

from .worker import Worker

log = logging.getLogger(__name__)
_embedded_lock = threading.Lock()
_embedded: dict[int, threading.Thread] = {}


def start_with_first_request(app: Flask) -> None:
    """The embedded default: the sending thread starts with the first request this process serves.

    Only a process that serves pages starts it (`flask run`, gunicorn); `flask outbox work`, `flask db
    upgrade` and the reloader's watcher never serve one, so they never send in the background.
    """
    def start() -> None:
        start_embedded_worker(app)

    app.before_request(start)


def start_embedded_worker(app: Flask) -> threading.Thread | None:
    """Start one daemon sending thread in this process (embedded default). Safe to call again: the
    running thread is returned. Does nothing under TESTING or with EMBEDDED_WORKER false."""
    if not app.config.get("EMBEDDED_WORKER") or app.testing:
        return None
    running = _embedded.get(os.getpid())
    if running is not None and running.is_alive():
        return running  # every request asks: answer without the lock while the thread runs
    with _embedded_lock:
        running = _embedded.get(os.getpid())
        if running is not None and running.is_alive():
            return running
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    with app.app_context():
                        worker = Worker(app)
                        worker.stop_event = stop
                        worker.run(once=False)
                except Exception:  # noqa: BLE001 - the database may be away for a while; keep trying
                    log.exception("Versand-Thread abgebrochen; neuer Versuch in 30 Sekunden")
                    stop.wait(30)

        thread = threading.Thread(target=loop, name="ki-post-outbox", daemon=True)
        thread.stop_event = stop  # type: ignore[attr-defined]
        thread.start()
        _embedded[os.getpid()] = thread
        return thread


def stop_embedded_worker(timeout: float = 30) -> None:
    """Stop this process's embedded worker after the message in flight (tests, clean shutdown)."""
    with _embedded_lock:
        thread = _embedded.pop(os.getpid(), None)
    if thread is not None:
        thread.stop_event.set()  # type: ignore[attr-defined]
        thread.join(timeout)
