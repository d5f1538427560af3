"""What is wrong with the database or the local storage, in German: for /healthz, error pages, logs
and the sending worker (which waits out an outage instead of exiting).

Base layer: no domain imports. ``database_problem(error)`` classifies an exception raised by
SQLAlchemy; ``check(app)`` looks actively (storage first, then one query).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .extensions import db

SQLITE_READONLY = 8
SQLITE_CANTOPEN = 14
SQLITE_FULL = 13


@dataclass(frozen=True)
class Problem:
    """``kind``: a short German label (/healthz, logs); ``message``: what a person should know and do."""

    kind: str
    message: str
    what: str = "database"  # which part: "database" or "postausgang" (/healthz key)


UNREACHABLE = Problem("nicht erreichbar", "Die Datenbank ist zurzeit nicht erreichbar. Bitte versuchen Sie es in "
                                          "einigen Minuten erneut.")
READ_ONLY = Problem("schreibgeschützt", "Die Datenbank ist schreibgeschützt: KI-Post kann zurzeit nichts speichern, "
                                        "auch keine Anmeldung. Bitte wenden Sie sich an die IT (Schreibrechte für den "
                                        "instance-Ordner und die Datenbankdatei bzw. den Datenbankserver prüfen).")
DISK_FULL = Problem("Speicherplatz voll", "Der Speicherplatz der Datenbank ist voll: KI-Post kann zurzeit nichts "
                                          "speichern, auch keine Anmeldung. Bitte wenden Sie sich an die IT "
                                          "(Speicherplatz freigeben).")


def database_problem(error: BaseException) -> Problem | None:
    """The kind of trouble behind a database exception; None for errors that are not about the
    database's availability (constraint violations, programming errors)."""
    orig = getattr(error, "orig", None) or error
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(orig, sqlite3.Error) and code is not None:
        primary = code & 0xFF  # extended result codes carry the primary code in the low byte
        if primary == SQLITE_FULL:
            return DISK_FULL
        if primary == SQLITE_READONLY:
            return READ_ONLY
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlstate == "53100":  # disk_full
        return DISK_FULL
    if sqlstate == "25006":  # read_only_sql_transaction: a standby, or default_transaction_read_only
        return READ_ONLY
    words = str(orig).lower()
    if "no space left on device" in words:
        return DISK_FULL
    if "read-only file system" in words:
        return READ_ONLY
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):  # connection, shutdown, starting up
        return UNREACHABLE
    if isinstance(error, (OperationalError, InterfaceError)):
        return UNREACHABLE
    return None


def _sqlite_file(app: Flask) -> Path | None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free_mb(path: Path) -> float:
    return shutil.disk_usage(_existing(path)).free / (1024 * 1024)


def storage_problem(app: Flask) -> Problem | None:
    """Local files KI-Post must write: the SQLite file and its folder (WAL and journal files live
    beside it), and the .eml folder when no SMTP server is set. Cheap: no query, no write."""
    return _database_storage(app) or _outbox_storage(app)


def _minimum_mb(app: Flask) -> float:
    return float(app.config.get("HEALTHZ_MIN_FREE_MB", 50) or 0)


def _database_storage(app: Flask) -> Problem | None:
    database = _sqlite_file(app)
    if database is None:
        return None
    folder = database.parent
    if not os.access(_existing(folder), os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        return READ_ONLY
    if _minimum_mb(app) and _free_mb(folder) < _minimum_mb(app):
        return DISK_FULL
    return None


def _outbox_storage(app: Flask) -> Problem | None:
    if app.config.get("MAIL_SERVER"):
        return None
    outbox = Path(app.config["OUTBOX_DIR"])
    if not os.access(_existing(outbox), os.W_OK):
        return Problem("schreibgeschützt", f"Der Ordner für nicht versendete Nachrichten ({outbox}) ist "
                                           "schreibgeschützt: Der Postausgang kann nichts ablegen. Bitte wenden Sie "
                                           "sich an die IT (Schreibrechte prüfen).", what="postausgang")
    if _minimum_mb(app) and _free_mb(outbox) < _minimum_mb(app):
        return Problem("Speicherplatz voll", f"Der Speicherplatz für den Ordner {outbox} ist fast voll: Der "
                                             "Postausgang kann bald nichts mehr ablegen. Bitte wenden Sie sich an die "
                                             "IT (Speicherplatz freigeben).", what="postausgang")
    return None


# A write refused for lack of space or rights on a database server, seen by this app. Its disk cannot
# be looked at from here, and a probe write on every /healthz call would cost more than it tells; so
# /healthz repeats what the last refused write said, for a minute. (SQLite's disk is checked directly.)
_REMEMBER_SECONDS = 60.0


def note(app: Flask, problem: Problem | None) -> None:
    """Remember a refused write (read-only, disk full) for /healthz; other problems it sees itself."""
    if (problem is READ_ONLY or problem is DISK_FULL) and _sqlite_file(app) is None:
        app.extensions["ki_post_refused_write"] = (time.monotonic(), problem)


def _recent_refusal(app: Flask) -> Problem | None:
    seen = app.extensions.get("ki_post_refused_write")
    if seen is None:
        return None
    age = time.monotonic() - seen[0]
    if age > _REMEMBER_SECONDS:
        app.extensions.pop("ki_post_refused_write", None)
        return None
    return replace(seen[1], message=f"{seen[1].message} (Zuletzt vor {age:.0f} s beim Speichern festgestellt.)")


def check(app: Flask) -> Problem | None:
    """Everything /healthz reports: storage, then whether the database answers and accepts writes,
    and a write refused lately (read-only, disk full) that no query would show."""
    problem = storage_problem(app)
    if problem is not None:
        return problem
    try:
        if db.engine.dialect.name == "postgresql":
            if db.session.execute(text("SELECT current_setting('transaction_read_only')")).scalar() == "on":
                return READ_ONLY
        else:
            db.session.execute(text("SELECT 1"))
    except DBAPIError as error:
        _rollback()
        return database_problem(error) or UNREACHABLE
    finally:
        _rollback()
    return _recent_refusal(app)


def explain(app: Flask, error: DBAPIError) -> Problem | None:
    """``database_problem``, refined by a look at the storage: SQLite reports a read-only folder as
    "unable to open database file" when it cannot create its WAL or journal files. (A full disk it
    reports as such; low free space alone does not explain an error.)"""
    problem = database_problem(error)
    if problem is UNREACHABLE and _database_storage(app) is READ_ONLY:
        return READ_ONLY
    return problem


def _rollback() -> None:
    try:
        db.session.rollback()
    except DBAPIError:  # the connection is gone; the pool replaces it
        pass
