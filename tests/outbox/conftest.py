"""Outbox fixtures: a real aiosmtpd server on 127.0.0.1 and an app that sends to it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from ki_post.extensions import db
from tests.helpers import make_app
from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def smtp_config(port: int, **extra) -> dict:
    return {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": port,
        "MAIL_USE_TLS": False,
        "MAIL_USE_SSL": False,
        "MAIL_TIMEOUT": 10,
        "MAIL_RATE_PER_MINUTE": 0,
        "MAIL_RETRY_BASE_SECONDS": 0.05,
        "MAIL_DEFAULT_SENDER": "MKJFGFI NRW – Veranstaltungen <veranstaltungen@ministerium.example>",
        **extra,
    }


@pytest.fixture
def smtp_app(tmp_path, backend, smtp) -> Iterator[Flask]:
    """Like ``app`` (both backends), but mail goes to the ``smtp`` server without a rate limit."""
    app = make_app(tmp_path, backend, **smtp_config(smtp.port))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
