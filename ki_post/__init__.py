"""KI-Post: correspondence and event invitations for the Kommunale Integrationszentren."""
from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Config, Flask
from sqlalchemy.exc import OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as default_config, settings
from .extensions import babel, csrf, db, limiter, login_manager, mail, migrate

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
ENV_PREFIX = "KI_POST_"

log = logging.getLogger(__name__)


def create_app(overrides: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the app without touching disk, database or threads; ``overrides`` (tests) win over every
    configuration layer. ``prepare_instance`` does what a starting installation needs (app.py calls it)."""
    instance_path = instance_path or os.environ.get(f"{ENV_PREFIX}INSTANCE_PATH") or str(PROJECT_DIR / "instance")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path),
        instance_relative_config=True,
        template_folder="templates",
        static_folder="static",
    )
    load_config(app, overrides or {})
    proxies = app.config["PROXY_COUNT"]
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    mail.init_app(app)
    csrf.init_app(app)
    babel.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from . import sqlite_pragmas  # noqa: F401  (registers the connect hook)
    from .core import register_core

    from .history import register_history_providers

    register_core(app)
    _register_domains(app)
    register_history_providers()
    if app.config["EMBEDDED_WORKER"] and not app.testing:
        from .outbox.embedded import start_with_first_request

        start_with_first_request(app)
    return app


def prepare_instance(app: Flask) -> Flask:
    """What a starting installation needs, done explicitly (app.py): the instance folder, a secret key
    generated once into it, and the schema brought up to date (``AUTO_MIGRATE``)."""
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(app.instance_path)
    if app.config["AUTO_MIGRATE"]:
        _upgrade_schema(app)
    return app


def load_config(app: Flask, overrides: dict[str, Any]) -> None:
    app.config.from_object(default_config)
    # What instance/config.py, the environment and the overrides set is fixed: the settings stored
    # in the database (Verwaltung → Einstellungen) only fill in what they leave at the default.
    from_file = Config(app.instance_path)
    from_file.from_pyfile("config.py", silent=True)
    app.config.update(from_file)
    configured = set(from_file) | set(overrides)
    for key, value in os.environ.items():
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}INSTANCE_PATH" and not key.startswith(f"{ENV_PREFIX}TEST_"):
            name = key[len(ENV_PREFIX):]
            try:
                app.config[name] = _coerce(value, app.config.get(name))
            except ValueError:
                raise SystemExit(f"Einstellung {key}: „{value}“ ist keine gültige Zahl.") from None
            configured.add(name)
    app.config.update(overrides)

    cfg = app.config
    cfg["SQLALCHEMY_DATABASE_URI"] = database_uri(cfg["DATABASE_URL"], app.instance_path)
    engine_options = cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        engine_options.setdefault("connect_args", {"timeout": 30})
    # A pooled connection that died with a database restart is replaced before use instead of
    # failing the next request (and /healthz) with "nicht erreichbar".
    engine_options.setdefault("pool_pre_ping", True)
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _existing_secret_key(app.instance_path)  # else written by prepare_instance
    cfg["OUTBOX_DIR"] = cfg["OUTBOX_DIR"] or os.path.join(app.instance_path, "postausgang")
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    cfg["REMEMBER_COOKIE_HTTPONLY"] = True
    cfg["REMEMBER_COOKIE_SECURE"] = cfg["SESSION_COOKIE_SECURE"]
    # Idle timeout and maximum live in the server-side session record (auth/sessions.py); the signed
    # cookie itself is never accepted for longer than the maximum.
    cfg["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=cfg["SESSION_MAX_HOURS"])
    # The session lifetime bounds CSRF tokens; a form left open over lunch must still submit.
    cfg["WTF_CSRF_TIME_LIMIT"] = None
    cfg["RATELIMIT_HEADERS_ENABLED"] = False
    settings.init_app(app, configured)


def _coerce(raw: str, default: Any) -> Any:
    """Convert an environment string to the type of the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "ja", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def database_uri(url: str, instance_path: str) -> str:
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "ki-post.sqlite3")
    # psycopg 3 is the PostgreSQL driver; accept the plain URL forms admins copy from elsewhere.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _existing_secret_key(instance_path: str) -> str:
    path = Path(instance_path) / "secret_key"
    return path.read_text().strip() if path.exists() else ""


def _instance_secret_key(instance_path: str) -> str:
    if key := _existing_secret_key(instance_path):
        return key
    path = Path(instance_path) / "secret_key"
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _register_domains(app: Flask) -> None:
    from .admin import views as admin_views
    from .auth import cli as auth_cli, views as auth_views
    from .events import cli as events_cli, routes as events_views
    from .letters import cli as letters_cli, routes as letters_views
    from .outbox import cli as outbox_cli, views as outbox_views
    from .recipients import cli as recipients_cli, routes as recipients_views, selfservice_views
    from .records import cli as records_cli, views as records_views

    for views in (auth_views, admin_views, recipients_views, selfservice_views, letters_views, events_views,
                  outbox_views, records_views):
        app.register_blueprint(views.bp)
    for cli in (auth_cli, recipients_cli, letters_cli, events_cli, outbox_cli, records_cli):
        for command in cli.commands:
            app.cli.add_command(command)
    _connect_erasure()


def _connect_erasure() -> None:
    """Each package scrubs its own copies of a person being anonymised or deleted (contact_erasing)."""
    from .events import erasure as events_erasure
    from .letters import erasure as letters_erasure
    from .outbox import erasure as outbox_erasure
    from .recipients import erasure as recipients_erasure

    for module in (recipients_erasure, outbox_erasure, letters_erasure, events_erasure):
        module.connect()

    from .events import merging as events_merging
    from .letters import merging as letters_merging
    from .outbox import merging as outbox_merging

    for module in (outbox_merging, letters_merging, events_merging):
        module.connect()  # their references follow a contact merged into another

    from .events.superseding import connect_receivers

    connect_receivers()  # events react to changed contacts and to mails back from a failure

    from .events import handover

    handover.connect()  # an accepted "nicht mehr zuständig" moves open invitations to the successor

    from .letters import jobs as letter_jobs

    letter_jobs.connect()  # the outbox worker loop runs letter jobs while nothing is due

    from .events import automation as event_automation

    event_automation.connect()  # ... and sends due automatic reminders of events


def _upgrade_schema(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        try:
            upgrade(directory=str(MIGRATIONS_DIR))
        except OperationalError as error:
            # The app still starts: pages and /healthz report the outage instead of a crash loop.
            log.error("Datenbank nicht erreichbar, Schema nicht aktualisiert: %s", error.orig)
