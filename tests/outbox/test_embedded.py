"""The embedded worker thread: started once, only where it belongs, and it really sends."""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.outbox import embedded
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing


def test_started_by_the_first_request_not_by_the_factory_or_a_command(app):
    """A process that serves pages sends in the background; building the app or running a command
    (`flask outbox work`, `flask db upgrade`) never starts the thread."""
    from ki_post.outbox.embedded import _embedded, start_with_first_request

    app.config.update(TESTING=False, EMBEDDED_WORKER=True, MAIL_RATE_PER_MINUTE=0)
    start_with_first_request(app)
    try:
        result = app.test_cli_runner().invoke(args=["outbox", "status"])
        assert result.exit_code == 0, result.output
        assert os.getpid() not in _embedded
        app.test_client().get("/healthz")
        assert _embedded[os.getpid()].is_alive()
    finally:
        embedded.stop_embedded_worker()
    app.config["EMBEDDED_WORKER"] = False
    assert embedded.start_embedded_worker(app) is None


def test_not_under_testing(app):
    app.config["EMBEDDED_WORKER"] = True
    assert embedded.start_embedded_worker(app) is None


def test_embedded_worker_sends_and_starts_once(app, monkeypatch):
    app.config.update(TESTING=False, EMBEDDED_WORKER=True, MAIL_RATE_PER_MINUTE=0)
    mailing = create_mailing("testversand", "Test")
    enqueue(mailing, to_email="a@kreis.example", subject="Test", text="Test\n")
    start_mailing(mailing)
    db.session.commit()
    try:
        thread = embedded.start_embedded_worker(app)
        assert thread is not None and thread.daemon
        assert embedded.start_embedded_worker(app) is thread
        deadline = time.monotonic() + 30
        while db.session.scalar(select(OutboxMessage.state)) != "gesendet":
            assert time.monotonic() < deadline, "der Versand-Thread hat nicht gesendet"
            time.sleep(0.05)
            db.session.commit()
    finally:
        embedded.stop_embedded_worker()
    assert not thread.is_alive()
    assert os.listdir(app.config["OUTBOX_DIR"])
