"""Server-side records of signed-in browsers: idle timeout, absolute maximum, a logout that sticks.

The Flask session cookie carries a random secret next to Flask-Login's user id; the database keeps
only the secret's SHA-256 with the times of sign-in and of the last activity. Every request counts as
activity and moves the idle deadline (``SESSION_MINUTES``, sliding); ``SESSION_MAX_HOURS`` after the
sign-in the session ends however active it was. ``last_seen_at`` is written at most once a minute, so
reading pages does not turn every request into a write (the idle deadline is exact to that minute).

Logging out deletes the record: a copy of the cookie taken before is worthless afterwards. A new
password or a deactivated account deletes the user's other records.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app, flash, g, request, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import joinedload

from ..db_types import utcnow
from ..extensions import db
from .models import User, UserSession

SESSION_KEY = "_ki_session"
TOUCH_INTERVAL = timedelta(seconds=60)
EXPIRED_MESSAGE = "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return timedelta(minutes=config["SESSION_MINUTES"]), timedelta(hours=config["SESSION_MAX_HOURS"])


def start_session(user: User, now: datetime | None = None) -> str:
    """A new record for ``user``; returns the secret for the cookie (stored only as a hash)."""
    idle, absolute = _limits()
    now = now or utcnow()
    # Dead records of everybody go here: sign-ins are rare, so the table stays small at no cost.
    db.session.execute(
        delete(UserSession).where(or_(UserSession.last_seen_at < now - idle, UserSession.created_at < now - absolute)),
        execution_options={"synchronize_session": False},
    )
    secret = secrets.token_urlsafe(32)
    db.session.add(UserSession(user_id=user.id, token_hash=_hash(secret), created_at=now, last_seen_at=now))
    db.session.flush()
    return secret


def resolve_session(user_id: int, secret: str | None, now: datetime | None = None) -> tuple[User | None, str]:
    """The user of a live session, and what happened to the record: "ok", "touched" (activity
    written, needs a commit), "expired" (record deleted, needs a commit) or "unknown"."""
    if not secret:
        return None, "unknown"
    record = db.session.scalar(
        select(UserSession).where(UserSession.token_hash == _hash(secret)).options(joinedload(UserSession.user))
    )
    if record is None or record.user_id != user_id:
        return None, "unknown"
    idle, absolute = _limits()
    now = now or utcnow()
    if now - record.last_seen_at > idle or now - record.created_at > absolute or not record.user.active:
        db.session.delete(record)
        db.session.flush()
        return None, "expired"
    if now - record.last_seen_at >= TOUCH_INTERVAL:
        record.last_seen_at = now
        db.session.flush()
        return record.user, "touched"
    return record.user, "ok"


def end_session(secret: str | None) -> None:
    if secret:
        db.session.execute(delete(UserSession).where(UserSession.token_hash == _hash(secret)),
                           execution_options={"synchronize_session": False})


def end_user_sessions(user: User, keep_secret: str | None = None) -> int:
    """End every session of ``user`` except the one whose secret is ``keep_secret``; returns how many."""
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    if keep_secret:
        statement = statement.where(UserSession.token_hash != _hash(keep_secret))
    return db.session.execute(statement, execution_options={"synchronize_session": False}).rowcount or 0


# --- Flask glue ---------------------------------------------------------------------------------

def sign_in(user: User) -> None:
    """Log ``user`` in with a fresh session record (flushes; the caller commits)."""
    _clear_session()  # nothing from before the sign-in survives it, the CSRF secret included
    login_user(user)
    session[SESSION_KEY] = start_session(user)


def sign_out() -> None:
    """End this browser's session (flushes; the caller commits)."""
    end_session(session.get(SESSION_KEY))
    logout_user()
    _clear_session()


def _clear_session() -> None:
    session.clear()
    g.pop("csrf_token", None)  # Flask-WTF caches this request's token, made from the cleared secret


def current_secret() -> str | None:
    """The secret of this request's session, to keep it when the user's other sessions end."""
    return session.get(SESSION_KEY)


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: a user only with a live session record."""
    try:
        wanted = int(user_id)
    except (TypeError, ValueError):
        return None
    user, state = resolve_session(wanted, session.get(SESSION_KEY))
    g.ki_session_state = state
    return user


def resolve_request_user() -> None:
    """before_request, ahead of the access check: decide the user from this request's cookie alone
    and store the session bookkeeping before any view work starts."""
    if request.endpoint == "static":
        return  # stylesheets and scripts need no user and cost no database query
    # User and CSRF token come from this request's cookie alone, never from an earlier request that
    # shared the app context (tests drive several browsers in one).
    g.pop("_login_user", None)
    g.pop("csrf_token", None)
    authenticated = current_user.is_authenticated
    state = g.pop("ki_session_state", None)
    if state in ("touched", "expired"):
        db.session.commit()
    if state in ("expired", "unknown") and not authenticated:
        session.pop(SESSION_KEY, None)
        session.pop("_user_id", None)
        if state == "expired":
            flash(EXPIRED_MESSAGE, "info")
