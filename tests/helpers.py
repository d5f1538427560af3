"""Test helpers shared by fixtures and tests: databases, the CSRF-aware client, app construction."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from ki_post import create_app, prepare_instance
from ki_post.extensions import db
from ki_post.models import metadata

def _worker_database(url: str) -> str:
    """Under pytest-xdist every worker gets a database of its own beside the given one (created on first
    use; .ci/run drops them), because the tests empty and refill the schema."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    own = f"{name}_{worker}"
    with psycopg.connect(url, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (own,)).fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(own)))
    return f"{base}/{own}"


POSTGRES_URL = _worker_database(os.environ.get("KI_POST_TEST_DATABASE_URL", ""))
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
PASSWORD = "Rheinufer-Kanzlei-2017"
CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


class Client(FlaskClient):
    """A test client that submits forms like a browser: it fetches the page and its CSRF token first."""

    def csrf_token(self, url: str) -> str:
        page = self.get(url).get_data(as_text=True)
        match = CSRF_PATTERN.search(page)
        assert match, f"kein CSRF-Token auf {url}"
        return match.group(1) or match.group(2)

    def submit(self, url: str, data: dict | None = None, *, form_url: str | None = None, **kwargs):
        payload = dict(data or {})
        payload["csrf_token"] = self.csrf_token(form_url or url)
        return self.post(url, data=payload, **kwargs)

    def login(self, email: str, password: str = PASSWORD):
        response = self.submit("/anmelden", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        return response


def build_config(tmp_path, backend: str, unset: tuple[str, ...] = (), **extra) -> dict:
    """The test configuration; ``unset`` leaves keys out, so that Verwaltung → Einstellungen may set them
    (whatever this dict names counts as fixed by configuration)."""
    database_url = POSTGRES_URL if backend == "postgresql" else f"sqlite:///{tmp_path}/test.sqlite3"
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": False,
        "SECRET_KEY": "test-secret",
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # scrypt costs ~0.1 s per account; tests make hundreds
        "EMBEDDED_WORKER": False,
        "MAIL_SERVER": "",
        "OUTBOX_DIR": str(tmp_path / "postausgang"),
        "BASE_URL": "http://127.0.0.1:5000",
        # Settings stored in the database are read on the first request, by the worker, the IMAP poll and
        # after saving; never again by a later request of the same test (query counts stay fixed).
        "SETTINGS_REFRESH_SECONDS": 3600,
        **extra,
    }
    return {key: value for key, value in config.items() if key not in unset}


def empty_postgres_schema(app: Flask) -> None:
    """An empty PostgreSQL schema (for migration tests, which build it up themselves)."""
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))


def fresh_schema(app: Flask) -> None:
    """Empty the app's database and create the models' tables (tests and bench scripts)."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            empty_postgres_schema(app)
        else:
            metadata.drop_all(db.engine)
        metadata.create_all(db.engine)


_postgres_ready = False


def make_app(tmp_path, backend: str, unset: tuple[str, ...] = (), **overrides) -> Flask:
    global _postgres_ready
    app = prepare_instance(create_app(build_config(tmp_path, backend, unset, **overrides), instance_path=str(tmp_path / "instance")))
    app.test_client_class = Client
    with app.app_context():
        if backend == "postgresql":
            if not _postgres_ready:
                fresh_schema(app)
                _postgres_ready = True
            else:
                _truncate_all()
        elif "DATABASE_URL" in overrides:
            metadata.create_all(db.engine)
        else:
            _copy_sqlite_schema(tmp_path / "test.sqlite3")
    return app


_sqlite_schema: Path | None = None


def _copy_sqlite_schema(target: Path) -> None:
    """The empty schema, built once per test run and copied (create_all per test cost ~0.2 s each)."""
    global _sqlite_schema
    if _sqlite_schema is None:
        path = Path(tempfile.mkdtemp(prefix="ki-post-schema-")) / "schema.sqlite3"
        engine = create_engine(f"sqlite:///{path}")
        metadata.create_all(engine)
        engine.dispose()
        _sqlite_schema = path
    shutil.copyfile(_sqlite_schema, target)


def _truncate_all() -> None:
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.session.commit()




def claim(worker) -> int | None:
    """Claim one due message and commit the claim, as the worker does before sending; its id or None."""
    prepared, _ = worker.claim_next()
    return prepared.envelope.message_id if prepared else None
