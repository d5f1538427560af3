"""An app whose mail settings are left to Verwaltung → Einstellungen (not fixed by the test configuration)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from ki_post.auth.services import create_user
from ki_post.extensions import db
from tests.helpers import PASSWORD, Client, make_app
from tests.events.conftest import _dovecot, imap_server  # noqa: F401  (fixtures shared with the event tests)
from tests.outbox.conftest import smtp  # noqa: F401  (fixture shared with the outbox tests)

FREE = ("MAIL_SERVER",)  # every other mail and IMAP setting is absent from the test configuration anyway


@pytest.fixture
def settings_app(tmp_path, backend) -> Iterator[Flask]:
    app = make_app(tmp_path, backend, unset=FREE)
    with app.app_context():
        for role in ("admin", "sachbearbeitung", "lesen"):
            create_user(f"{role}@ministerium.example", role.capitalize(), role, PASSWORD)
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def admin(settings_app) -> Client:
    client = settings_app.test_client()
    client.login("admin@ministerium.example")
    return client

