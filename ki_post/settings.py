"""Settings an administrator edits in the browser (Verwaltung → Einstellungen), stored in the database.

Order, later wins: the defaults in ``config.py``, then these stored values, then ``instance/config.py``
and the environment (``KI_POST_<NAME>``) – what an operator fixed in configuration stays fixed and is
shown as such. The stored values are applied to ``app.config`` by ``refresh`` (at most every
``SETTINGS_REFRESH_SECONDS`` per process, and at once where it matters: the sending worker's loop, the
IMAP poll, after saving), so every reader keeps reading ``app.config`` and a change needs no restart.

Passwords are stored encrypted (Fernet: AES-128-CBC with HMAC-SHA256) with a key from ``SETTINGS_KEY``
or the file ``instance/settings_key`` (created with mode 0600 on first use). Without that key a stored
password cannot be read back: it then counts as not set, and the settings page says so.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import String, Text, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from . import config as default_config
from .db_types import UTCDateTime, utcnow
from .extensions import db

log = logging.getLogger(__name__)

# Every setting the page may store; anything else in the table is ignored.
KEYS = (
    "MAIL_DEFAULT_SENDER", "MAIL_REPLY_TO", "MAIL_RATE_PER_MINUTE", "MAIL_DAILY_CAP",
    "MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_USERNAME", "MAIL_PASSWORD",
    "IMAP_SERVER", "IMAP_PORT", "IMAP_USE_SSL", "IMAP_USERNAME", "IMAP_PASSWORD", "IMAP_FOLDER",
)
SECRETS = frozenset({"MAIL_PASSWORD", "IMAP_PASSWORD"})
DEFAULT_SENDER = default_config.MAIL_DEFAULT_SENDER
_EXTENSION = "ki_post_settings"


class Setting(db.Model):
    """One stored setting; secrets hold a Fernet token, never the clear text."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    secret: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(254), default="")


@dataclass
class _State:
    base: dict[str, Any]  # the values of the configuration layers, what a removed setting falls back to
    fixed: frozenset[str]  # set in instance/config.py, the environment or the factory's overrides
    applied: set[str] = field(default_factory=set)  # keys app.config currently holds from the database
    unreadable: set[str] = field(default_factory=set)  # secrets stored with a key this process lacks
    loaded_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)


def init_app(app: Flask, configured: set[str]) -> None:
    """Remember what configuration fixed (``configured``: keys set beyond the defaults) and the values
    to fall back to; register the per-request refresh."""
    app.extensions[_EXTENSION] = _State(base={key: app.config[key] for key in KEYS},
                                        fixed=frozenset(key for key in KEYS if key in configured))
    app.before_request(lambda: refresh(app))
    app.context_processor(lambda: {"sender_missing": sender_missing})


def _state(app: Flask | None = None) -> _State:
    return (app or current_app).extensions[_EXTENSION]


def fixed(app: Flask | None = None) -> frozenset[str]:
    return _state(app).fixed


def unreadable(app: Flask | None = None) -> frozenset[str]:
    return frozenset(_state(app).unreadable)


def default_value(key: str, app: Flask | None = None) -> Any:
    return _state(app).base[key]


def sender_missing() -> bool:
    """Nobody has named a sender: mails would leave as "KI-Post <ki-post@localhost>"."""
    return current_app.config.get("MAIL_DEFAULT_SENDER", DEFAULT_SENDER) == DEFAULT_SENDER


def refresh(app: Flask | None = None, force: bool = False) -> None:
    """Apply the stored settings to ``app.config`` (throttled unless ``force``).

    Reads on a connection of its own, so the caller's transaction is untouched. When the table cannot
    be read (database away, schema not migrated yet) the values in use stay as they are."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get(_EXTENSION)
    if state is None:
        return
    now = time.monotonic()
    if not force and now - state.loaded_at < float(app.config["SETTINGS_REFRESH_SECONDS"]):
        return
    state.loaded_at = now
    try:
        with db.engine.connect() as connection:
            rows = connection.execute(select(Setting.key, Setting.value, Setting.secret)).all()
    except SQLAlchemyError as error:
        log.info("Einstellungen nicht gelesen, die bisherigen gelten weiter: %s", getattr(error, "orig", error))
        return
    values: dict[str, Any] = {}
    unreadable_now: set[str] = set()
    for key, raw, secret in rows:
        if key not in KEYS or key in state.fixed:
            continue
        if secret:
            clear = decrypt(raw, app)
            if clear is None:
                unreadable_now.add(key)
                continue
            values[key] = clear
        else:
            values[key] = parse(key, raw, app)
    with state.lock:
        for key in state.applied - values.keys():
            app.config[key] = state.base[key]
        app.config.update(values)
        state.applied = set(values)
        state.unreadable = unreadable_now


def parse(key: str, raw: str, app: Flask | None = None) -> Any:
    """A stored text as the type of the setting's default."""
    default = default_value(key, app)
    if isinstance(default, bool):
        return raw == "true"
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            return default
    return raw


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stored() -> dict[str, Setting]:
    return {row.key: row for row in db.session.scalars(select(Setting))}


def store(values: dict[str, Any], user: str = "") -> list[str]:
    """Store the given settings (flush, no commit); ``None`` removes one (back to the configuration's
    value). Keys fixed by configuration are left alone. Returns the keys whose value changed."""
    rows = stored()
    changed = []
    for key, value in values.items():
        if key not in KEYS or key in fixed():
            continue
        row = rows.get(key)
        if value is None:
            if row is not None:
                db.session.delete(row)
                changed.append(key)
            continue
        if key in SECRETS:
            if row is not None and decrypt(row.value) == value:
                continue
            text, secret = encrypt(value), True
        else:
            text, secret = _text(value), False
            if (row is not None and row.value == text) or (row is None and text == _text(default_value(key))):
                continue
        if row is None:
            row = Setting(key=key)
            db.session.add(row)
        row.value, row.secret, row.updated_by = text, secret, user
        changed.append(key)
    db.session.flush()
    return changed


# --- encryption of secrets ---------------------------------------------------------------------------
def _key_path(app: Flask) -> Path:
    return Path(app.instance_path) / "settings_key"


def _fernet(app: Flask | None = None, create: bool = False):
    from cryptography.fernet import Fernet

    app = app or current_app
    configured = app.config.get("SETTINGS_KEY") or ""
    if configured:
        return Fernet(configured.encode())
    path = _key_path(app)
    if not path.exists():
        if not create:
            return None
        os.makedirs(path.parent, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process was first; use its key
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
    return Fernet(path.read_bytes().strip())


def encrypt(clear: str, app: Flask | None = None) -> str:
    return _fernet(app, create=True).encrypt(clear.encode("utf-8")).decode("ascii")


def decrypt(token: str, app: Flask | None = None) -> str | None:
    """The clear text, or None when this installation's key does not open it."""
    from cryptography.fernet import InvalidToken

    fernet = _fernet(app)
    if fernet is None:
        return None
    try:
        return fernet.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        return None
