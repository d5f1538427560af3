"""Fixtures after the Flask tutorial: app, client, runner — parametrised over the databases.

SQLite always; PostgreSQL too when KI_POST_TEST_DATABASE_URL names a (throw-away) database.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from ki_post.extensions import db
from tests.helpers import BACKENDS, PASSWORD, Client, make_app

@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def app(tmp_path, backend) -> Iterator[Flask]:
    app = make_app(tmp_path, backend)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app) -> Client:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    from ki_post.auth.services import create_user

    def make(role: str = "sachbearbeitung", email: str | None = None):
        user = create_user(email or f"{role}@ministerium.example", role.capitalize(), role, PASSWORD)
        db.session.commit()
        return user

    return make


@pytest.fixture
def staff_client(client, make_user) -> Client:
    """Client signed in with the role ``sachbearbeitung``."""
    make_user("admin", "admin@ministerium.example")  # keeps first-run out of the way
    user = make_user("sachbearbeitung")
    client.login(user.email)
    return client


@pytest.fixture
def admin_client(client, make_user) -> Client:
    user = make_user("admin")
    client.login(user.email)
    return client


@pytest.fixture
def demo(app):
    """The demo Verteiler only (53 organisations and contacts, "Alle KI-Dezernate")."""
    from ki_post.demo import load_demo_verteiler

    load_demo_verteiler()
    db.session.commit()


@pytest.fixture
def count_queries(app):
    """``with count_queries() as queries: ...`` then ``len(queries)``: the SQL statements a block sent
    (for N+1 checks on list pages)."""
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def counting():
        statements: list[str] = []

        def record(_conn, _cursor, statement, *_args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(db.engine, "before_cursor_execute", record)

    return counting
