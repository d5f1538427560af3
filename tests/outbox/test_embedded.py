"""The embedded worker thread: started once, only where it belongs, and it really sends."""
from __future__ import annotations

import os
import sys
import time

import pytest
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.outbox import worker as worker_module
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing


@pytest.mark.parametrize("argv,env,expected", [
    (["gunicorn", "app:app"], {}, True),
    (["/venv/bin/flask", "--app", "app", "run"], {}, True),
    (["/venv/bin/flask", "--app", "app", "outbox", "work"], {}, False),
    (["/venv/bin/flask", "--app", "app", "db", "upgrade"], {}, False),
    (["/venv/bin/flask", "--app", "app", "run", "--debug"], {}, False),  # reloader watcher
    (["/venv/bin/flask", "--app", "app", "run", "--debug"], {"WERKZEUG_RUN_MAIN": "true"}, True),  # reloader child
])
def test_where_the_embedded_worker_starts(app, monkeypatch, argv, env, expected):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app.config.update(TESTING=False, EMBEDDED_WORKER=True)
    assert worker_module._should_embed(app) is expected
    app.config["EMBEDDED_WORKER"] = False
    assert worker_module._should_embed(app) is False


def test_not_under_testing(app):
    app.config["EMBEDDED_WORKER"] = True
    assert worker_module.start_embedded_worker(app) is None


def test_embedded_worker_sends_and_starts_once(app, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gunicorn", "app:app"])
    app.config.update(TESTING=False, EMBEDDED_WORKER=True, MAIL_RATE_PER_MINUTE=0)
    mailing = create_mailing("testversand", "Test")
    enqueue(mailing, to_email="a@kreis.example", subject="Test", text="Test\n")
    start_mailing(mailing)
    db.session.commit()
    try:
        thread = worker_module.start_embedded_worker(app)
        assert thread is not None and thread.daemon
        assert worker_module.start_embedded_worker(app) is thread
        deadline = time.monotonic() + 30
        while db.session.scalar(select(OutboxMessage.state)) != "gesendet":
            assert time.monotonic() < deadline, "der Versand-Thread hat nicht gesendet"
            time.sleep(0.05)
            db.session.commit()
    finally:
        worker_module.stop_embedded_worker()
    assert not thread.is_alive()
    assert os.listdir(app.config["OUTBOX_DIR"])
