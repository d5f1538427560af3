"""The embedded default: one sending thread inside the web process (``EMBEDDED_WORKER``), so that one
``flask run`` does everything. Separate ``flask outbox work`` processes replace it in production."""
from __future__ import annotations

import logging
import os
import sys
import threading

from flask import Flask

from .worker import Worker

log = logging.getLogger(__name__)
_embedded_lock = threading.Lock()
_embedded: dict[int, threading.Thread] = {}


def _should_embed(app: Flask) -> bool:
    if not app.config.get("EMBEDDED_WORKER") or app.testing:
        return False
    main = sys.modules.get("__main__")
    main_spec = getattr(main, "__spec__", None)
    under_flask_cli = os.path.basename(sys.argv[0] if sys.argv else "").startswith("flask") or (
        main_spec is not None and main_spec.name in ("flask", "flask.__main__"))
    if under_flask_cli:
        if "run" not in sys.argv[1:]:
            return False  # `flask outbox work`, `flask db upgrade`, … must not send in the background
        reloading = "--reload" in sys.argv or "--debug" in sys.argv or os.environ.get("FLASK_DEBUG", "").lower() in ("1", "true")
        if reloading and "--no-reload" not in sys.argv and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
            return False  # the reloader's watcher process; its child starts the worker
    return True


def start_embedded_worker(app: Flask) -> threading.Thread | None:
    """Start one daemon sending thread in this process (embedded default). Safe to call twice.

    Call it from the app factory. It does nothing under TESTING, with EMBEDDED_WORKER false,
    under `flask` commands other than `run`, and in the reloader's watcher process.
    """
    if not _should_embed(app):
        return None
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
