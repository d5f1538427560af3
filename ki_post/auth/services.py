from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_request_context, request
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from .models import ROLES, AuditEntry, User
from .passwords import password_guessable
from .sessions import end_user_sessions

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
_dummy_hashes: dict[str, str] = {}


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _dummy_hash() -> str:
    """Compared against when the account does not exist, so unknown users cost the same time."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _dummy_hashes:
        _dummy_hashes[method] = _hash("kein-konto-vorhanden")
    return _dummy_hashes[method]


def normalise_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationError("Bitte eine gültige E-Mail-Adresse angeben.", field="email") from None


def check_password(password: str, *personal: str) -> None:
    """Refuse short and guessable passwords (common ones, sequences, keyboard rows, the user's own
    name or address, the application's name). ``personal``: e-mail address and name of the account."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"Das Passwort muss mindestens {MIN_PASSWORD_LENGTH} Zeichen lang sein.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"Das Passwort darf höchstens {MAX_PASSWORD_LENGTH} Zeichen lang sein.", field="password")
    if password_guessable(password, *personal):
        raise ValidationError(
            "Dieses Passwort ist zu leicht zu erraten (z. B. ein häufig verwendetes Passwort, eine Zahlen- oder "
            "Tastenfolge, ein Name oder die E-Mail-Adresse). Bitte wählen Sie ein anderes, etwa drei oder vier "
            "Wörter mit Bindestrichen.",
            field="password",
        )


def has_any_user() -> bool:
    return db.session.scalar(select(func.count(User.id))) > 0


def create_user(email: str, name: str, role: str, password: str) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise ValidationError(f"Unbekannte Rolle „{role}“. Erlaubt: {', '.join(ROLES)}.", field="role")
    if not name.strip():
        raise ValidationError("Bitte einen Namen angeben.", field="name")
    check_password(password, email, name)
    if db.session.scalar(select(User).where(User.email == email)):
        raise ValidationError("Für diese E-Mail-Adresse gibt es bereits ein Konto.", field="email")
    user = User(email=email, name=name.strip(), role=role, password_hash=_hash(password))
    db.session.add(user)
    db.session.flush()
    audit("konto.angelegt", user, role=role)
    return user


def update_user(user: User, *, role: str, active: bool, password: str = "", keep_session: str | None = None) -> None:
    """Change role, state or password. A new password or a deactivation ends the user's sessions,
    except the one whose secret is ``keep_session`` (the admin's own, when editing themselves)."""
    if role not in ROLES:
        raise ValidationError("Unbekannte Rolle.", field="role")
    if user.role == "admin" and (role != "admin" or not active) and _active_admin_count() <= 1:
        raise ValidationError("Das letzte aktive Administrationskonto kann nicht herabgestuft werden.", field="role")
    if password:
        check_password(password, user.email, user.name)
        user.password_hash = _hash(password)
    user.role, user.active = role, active
    ended = 0
    if password or not active:
        ended = end_user_sessions(user, keep_secret=keep_session if active else None)
    db.session.flush()
    audit("konto.geaendert", user, role=role, active=active, password_changed=bool(password), sessions_ended=ended)


def _active_admin_count() -> int:
    return db.session.scalar(select(func.count(User.id)).where(User.role == "admin", User.active.is_(True)))


def normalise_login(email: str) -> str:
    """The entered address as accounts are looked up (and login attempts are counted)."""
    return (email or "").strip().lower()


def authenticate(email: str, password: str) -> User | None:
    """The user for valid credentials, else None. Same work whether or not the account exists."""
    user = db.session.scalar(select(User).where(User.email == normalise_login(email)))
    password_ok = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    if user is None or not password_ok or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


_acting_for: ContextVar[tuple[int | None, str] | None] = ContextVar("acting_for", default=None)


@contextmanager
def acting_for(user_id: int | None, actor: str) -> Iterator[None]:
    """Work done outside a request on someone's behalf (a background job) is audited as theirs."""
    token = _acting_for.set((user_id, actor))
    try:
        yield
    finally:
        _acting_for.reset(token)


def audit(action: str, obj: Any = None, *, actor: str = "", **details: Any) -> AuditEntry:
    """Append one entry. ``details`` must hold IDs and counts only, never content."""
    user_id = None
    acting = _acting_for.get()
    if acting is not None and not has_request_context():
        user_id, actor = acting[0], actor or acting[1]
    elif has_request_context() and current_user and current_user.is_authenticated:
        user_id = current_user.id
    elif not actor:
        actor = "cli" if not has_request_context() else "anonym"
    entry = AuditEntry(
        user_id=user_id,
        actor=actor,
        action=action,
        object_type=obj.__tablename__ if obj is not None else "",
        object_id=getattr(obj, "id", None),
        details={**details, **({"ip": request.remote_addr} if has_request_context() else {})},
    )
    db.session.add(entry)
    db.session.flush()
    return entry
