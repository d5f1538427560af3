import os
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from ki_post import create_app, prepare_instance
from ki_post.formatting import datum, datum_zeit
from ki_post.extensions import db

PUBLIC_ENDPOINTS = {"core.healthz", "core.accessibility", "core.privacy", "auth.login", "static"}


def test_config_layers_defaults_instance_then_environment(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text("MAIL_PORT = 2525\nMAIL_SERVER = 'smtp.instance.example'\nBASE_URL = 'https://post.example'\n")
    monkeypatch.setenv("KI_POST_MAIL_SERVER", "smtp.env.example")
    monkeypatch.setenv("KI_POST_MAIL_USE_TLS", "false")
    monkeypatch.setenv("KI_POST_MAIL_RATE_PER_MINUTE", "12")
    app = create_app({"AUTO_MIGRATE": False, "EMBEDDED_WORKER": False}, instance_path=str(instance))
    assert app.config["MAIL_PORT"] == 2525  # instance/config.py over the default 587
    assert app.config["MAIL_SERVER"] == "smtp.env.example"  # environment over instance/config.py
    assert app.config["MAIL_USE_TLS"] is False
    assert app.config["MAIL_RATE_PER_MINUTE"] == 12
    assert app.config["BASE_URL"] == "https://post.example"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance}/ki-post.sqlite3"


def test_postgres_url_uses_psycopg3(tmp_path):
    app = create_app({"AUTO_MIGRATE": False, "EMBEDDED_WORKER": False, "DATABASE_URL": "postgresql://ki@db.example/kipost"}, instance_path=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://ki@db.example/kipost"


def test_secret_key_is_generated_once_into_instance_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("KI_POST_SECRET_KEY", raising=False)
    settings = {"AUTO_MIGRATE": False, "EMBEDDED_WORKER": False}
    first = prepare_instance(create_app(settings, instance_path=str(tmp_path / "a")))
    again = create_app(settings, instance_path=str(tmp_path / "a"))  # reads the key, writes nothing
    other = prepare_instance(create_app(settings, instance_path=str(tmp_path / "b")))
    key_file = tmp_path / "a" / "secret_key"
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] == again.config["SECRET_KEY"] == key_file.read_text()
    assert other.config["SECRET_KEY"] != first.config["SECRET_KEY"]
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"


def test_the_factory_has_no_side_effects(tmp_path, monkeypatch):
    """create_app writes no file, creates no schema and starts no thread; prepare_instance does the first two."""
    import threading

    monkeypatch.delenv("KI_POST_SECRET_KEY", raising=False)
    threads = threading.active_count()
    instance = tmp_path / "instance"
    app = create_app({"EMBEDDED_WORKER": True}, instance_path=str(instance))
    assert not instance.exists() and app.config["SECRET_KEY"] == ""
    assert threading.active_count() == threads
    prepare_instance(app)
    with app.app_context():
        assert "alembic_version" in db.inspect(db.engine).get_table_names()
        db.engine.dispose()
    assert (instance / "secret_key").exists() and threading.active_count() == threads


def test_fresh_instance_is_migrated_on_start(tmp_path):
    app = prepare_instance(create_app({"EMBEDDED_WORKER": False}, instance_path=str(tmp_path)))
    with app.app_context():
        tables = set(db.inspect(db.engine).get_table_names())
        assert {"users", "audit_log", "contacts", "organisations", "verteiler", "alembic_version"} <= tables
        db.engine.dispose()


def test_migrations_match_models(tmp_path, backend):
    """The Alembic history builds exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    from tests import helpers
    from ki_post.models import metadata

    app = create_app(helpers.build_config(tmp_path, backend), instance_path=str(tmp_path / "instance"))
    with app.app_context():
        if backend == "postgresql":
            helpers.empty_postgres_schema(app)
            helpers._postgres_ready = False  # the next test recreates the test schema
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
        db.engine.dispose()
    assert diff == [], f"Migration fehlt: flask --app app db migrate. Unterschiede: {diff}"


def test_sqlite_has_foreign_keys_and_wal(tmp_path):
    from tests.helpers import make_app

    app = make_app(tmp_path, "sqlite")
    with app.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        # FULL (2): a commit is on disk when it returns; a claim or "sent" must survive a power loss.
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 2
        db.engine.dispose()


def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_unreachable_database_gives_503_and_no_stack_trace(tmp_path):
    app = create_app(
        {"DATABASE_URL": "postgresql://ki@127.0.0.1:1/nirgendwo", "SECRET_KEY": "x", "TESTING": False, "EMBEDDED_WORKER": False},
        instance_path=str(tmp_path),
    )
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json["database"] == "nicht erreichbar"
    page = client.get("/anmelden")
    body = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "Die Datenbank ist zurzeit nicht erreichbar" in body
    assert "Traceback" not in body and "psycopg" not in body


def test_german_404_page(client):
    response = client.get("/gibt-es-nicht")
    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.get_data(as_text=True)
    assert '<html lang="de">' in response.get_data(as_text=True)


def test_every_staff_url_requires_login(app, client, make_user):
    """Walk every URL rule anonymously: only the public ones answer 200."""
    make_user("admin")
    seen = 0
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for argument in rule.arguments:
            url = url.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x").replace(f"<path:{argument}>", "x.css")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method)
            seen += 1
            if rule.endpoint in PUBLIC_ENDPOINTS or getattr(app.view_functions[rule.endpoint], "_public", False):
                continue
            assert response.status_code in (302, 400, 404), (method, url, response.status_code)
            if response.status_code == 302:
                assert "/anmelden" in response.headers["Location"], url
    assert seen > 10


def test_public_endpoints_are_only_the_intended_ones(app):
    public = {endpoint for endpoint, view in app.view_functions.items() if getattr(view, "_public", False)}
    allowed = PUBLIC_ENDPOINTS | {"core.first_run"} | {e for e in public if e.startswith("events.rsvp")} | {
        "selfservice.page", "selfservice.confirm", "selfservice.correct", "selfservice.hand_over"}
    assert public <= allowed, public - allowed


def test_dates_are_german_and_shown_in_berlin_time():
    assert datum(date(2016, 12, 28)) == "28. Dezember 2016"
    assert datum(date(2024, 3, 1)) == "1. März 2024"
    assert datum_zeit(datetime(2017, 2, 8, 10, 0, tzinfo=timezone.utc)) == "8. Februar 2017, 11:00 Uhr"
    assert datum_zeit(datetime(2026, 7, 1, 9, 30, tzinfo=timezone.utc)) == "1. Juli 2026, 11:30 Uhr"


def test_demo_data_command_is_idempotent(runner):
    from ki_post.recipients.models import Contact, Organisation, Verteiler

    first = runner.invoke(args=["demo-data"])
    assert "53 Organisationen, 53 Ansprechpersonen, 1 Verteiler, 1 Briefvorlagen, 1 Veranstaltungen, 53 Einladungen neu angelegt" in first.output
    second = runner.invoke(args=["demo-data"])
    assert "0 Organisationen, 0 Ansprechpersonen, 0 Verteiler, 0 Briefvorlagen, 0 Veranstaltungen, 0 Einladungen neu angelegt" in second.output
    assert db.session.scalar(db.select(db.func.count(Organisation.id))) == 53
    assert db.session.scalar(db.select(db.func.count(Contact.id))) == 53
    assert db.session.scalar(db.select(Verteiler).where(Verteiler.name == "Alle KI-Dezernate")) is not None
    kinds = set(db.session.scalars(db.select(Organisation.kind)))
    assert kinds == {"kreis", "kreisfreie_stadt", "staedteregion"}


def test_security_headers_and_cookie_flags(client, make_user):
    user = make_user("lesen")
    response = client.login(user.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # only when configured for HTTPS
    page = client.get("/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_bad_number_in_environment_stops_with_german_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KI_POST_MAIL_PORT", "fünfhundert")
    with pytest.raises(SystemExit, match="KI_POST_MAIL_PORT: „fünfhundert“ ist keine gültige Zahl"):
        create_app({"AUTO_MIGRATE": False, "EMBEDDED_WORKER": False}, instance_path=str(tmp_path))
