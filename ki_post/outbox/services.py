"""Postausgang: the one road every mail of KI-Post takes.

API for the other packages (none commits; the caller commits; all flush except ``enqueue``, whose
messages the next flush writes in batches)::

    from ki_post.outbox.services import (
        Attachment, CalendarPart, create_mailing, enqueue, render_mail, start_mailing,
    )

    mailing = create_mailing("einladung", "Einladung: Festakt", created_by_id=user.id, event_id=event.id)
    mail = render_mail("einladung", {"anrede": "Sehr geehrte Frau Muster,", ...})
    enqueue(mailing, to_email="a@b.de", to_name="Erika Muster", contact_id=contact.id,
            subject=mail.subject, text=mail.text, html=mail.html,
            attachments=[Attachment("rundschreiben.pdf", "application/pdf", pdf_bytes)],
            calendar=CalendarPart("REQUEST", ics_bytes))
    start_mailing(mailing)      # releases it to the worker
    db.session.commit()

- ``create_mailing(kind, title, *, created_by_id=None, event_id=None) -> Mailing``: a new mailing in
  state ``entwurf`` (draft). Messages of a draft are never sent; staff can preview them and send a
  test to themselves. ``start_mailing(mailing)`` sets ``aktiv``: from then the worker sends.
  Kinds: rundschreiben, einladung, aktualisierung, absage, erinnerung, bestaetigung, nachruecker,
  testversand, allgemein.
- ``enqueue(...) -> OutboxMessage``: renders one message for one recipient (To only, never Cc/Bcc)
  and stores what will be sent: From/Reply-To from the config, Message-ID and Date generated now
  (the worker sets Date again to the moment it sends), the bodies, the calendar part and the
  attachments (bytes stored once by sha256). Raises
  ``ValidationError`` (German) for CR/LF or other control characters in a header value, a bad
  address, or a mailing that is no longer open.
- ``Attachment(filename, mimetype, data)`` and ``CalendarPart(method, data)`` are frozen
  dataclasses. The calendar part becomes ``text/calendar; method=<METHOD>; charset=UTF-8``, base64,
  without Content-Disposition, as the LAST alternative after text/plain and text/html
  (standards.md MIME-01…05).
- ``enqueue(..., topic=…, facts=…, expires_at=…)``: optional. ``topic`` names what the message is
  about for this recipient (e.g. ``"veranstaltung-3/einladung-17"``): messages with the same topic
  are sent one after another in the order they were queued. ``facts`` (JSON) records what the
  message tells, for the queueing package to read back later; ``expires_at`` withdraws the message
  instead of sending it after that moment. ``outbox.topics`` rewrites, skips and withdraws messages
  that have not gone out yet, and ``outbox.signals.messages_returned`` reports messages that came back
  unsent after a claim or a failure.
- ``render_mail(kind, context) -> RenderedMail(subject, text, html)``: renders
  ``templates/mail/<kind>.txt`` and ``.html`` in a sandbox (HTML autoescaped, text not). The subject
  is defined in the .txt template with ``{% set subject %}…{% endset %}``; ``.html`` is optional.
  Context values are data and are never evaluated as templates.
- ``build_mime(message) -> bytes``: the RFC 5322 bytes of a stored message (pure apart from
  loading attachment blobs), used by the worker, the preview and the .eml viewer.
- ``mailing_counts``, ``mailing_progress``: how far a mailing got. What people decide about mailings
  and messages (release, pause, resend …) is in ``outbox.steering``; the mail templates in
  ``outbox.mail_templates``.
"""
from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid, parseaddr
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from .. import settings
from ..blobs import sha256_of, store_blob
from ..db_types import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import db
from .mail_style import inline_styles
from .files import eml_files, outbox_dir, read_eml, write_eml  # noqa: F401  (part of this module's API)
from .mime import build_mime  # noqa: F401  (part of this module's API, see the docstring)
from .models import Mailing, MailingKind, MailingState, MessageState, OutboxAttachment, OutboxMessage

MAIL_TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "mail"
CALENDAR_METHODS = {"REQUEST", "CANCEL", "PUBLISH", "REPLY", "COUNTER", "DECLINECOUNTER", "REFRESH", "ADD"}
# Any control character in a header value could end a header line somewhere along the way.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


@dataclass(frozen=True)
class Attachment:
    filename: str
    mimetype: str
    data: bytes


@dataclass(frozen=True)
class CalendarPart:
    """The .ics bytes (CRLF line ends) and the iTIP method inside them (REQUEST, CANCEL…)."""

    method: str
    data: bytes


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None


# --- Templates ---------------------------------------------------------------------------------

_environments: dict[str, SandboxedEnvironment] = {}


def _environment(autoescape: bool) -> SandboxedEnvironment:
    key = f"{MAIL_TEMPLATE_DIR}:{autoescape}"
    if key not in _environments:
        _environments[key] = SandboxedEnvironment(
            loader=FileSystemLoader(str(MAIL_TEMPLATE_DIR)),
            autoescape=autoescape,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
    return _environments[key]


def mail_template_kinds() -> list[str]:
    # Names starting with "_" are shared parts (layout, footer), not kinds of mail.
    return sorted(path.stem for path in MAIL_TEMPLATE_DIR.glob("*.txt") if not path.stem.startswith("_"))


def _common_mail_context() -> dict[str, str]:
    """What every mail shows: the sender's name and the data-protection notice (DSG-03)."""
    config = current_app.config
    return {"app_name": config["APP_NAME"], "datenschutz_url": f"{config['BASE_URL']}/datenschutz"}


def render_mail(kind: str, context: dict[str, Any]) -> RenderedMail:
    """Render ``templates/mail/<kind>.txt`` (+ ``.html``); the subject comes from ``{% set subject %}``."""
    if not _KIND.match(kind):
        raise ValidationError(f"Unbekannte Mail-Vorlage „{kind}“.", "kind")
    context = {**_common_mail_context(), **context}
    try:
        text_module = _environment(False).get_template(f"{kind}.txt").make_module(dict(context))
    except TemplateNotFound:
        raise ValidationError(f"Die Mail-Vorlage „{kind}.txt“ fehlt in templates/mail/.", "kind") from None
    except TemplateSyntaxError as error:
        raise ValidationError(f"Die Mail-Vorlage „{kind}.txt“ hat einen Fehler in Zeile {error.lineno}: {error.message}", "kind") from None
    except UndefinedError as error:
        raise ValidationError(f"Die Mail-Vorlage „{kind}.txt“ verwendet ein unbekanntes Feld: {error.message}", "kind") from None
    except SecurityError:
        raise ValidationError(f"Die Mail-Vorlage „{kind}.txt“ versucht einen unerlaubten Zugriff.", "kind") from None
    subject = str(getattr(text_module, "subject", "")).strip()
    if not subject:
        raise ValidationError(f"Die Mail-Vorlage „{kind}.txt“ setzt keinen Betreff ({{% set subject %}}…{{% endset %}}).", "kind")
    text = str(text_module).strip("\n") + "\n"
    html: str | None = None
    if (MAIL_TEMPLATE_DIR / f"{kind}.html").exists():
        try:
            html = inline_styles(_environment(True).get_template(f"{kind}.html").render(dict(context, subject=subject)))
        except TemplateSyntaxError as error:
            raise ValidationError(f"Die Mail-Vorlage „{kind}.html“ hat einen Fehler in Zeile {error.lineno}: {error.message}", "kind") from None
        except UndefinedError as error:
            raise ValidationError(f"Die Mail-Vorlage „{kind}.html“ verwendet ein unbekanntes Feld: {error.message}", "kind") from None
        except SecurityError:
            raise ValidationError(f"Die Mail-Vorlage „{kind}.html“ versucht einen unerlaubten Zugriff.", "kind") from None
    return RenderedMail(subject=subject, text=text, html=html)


# --- Mailings and enqueue ----------------------------------------------------------------------

def create_mailing(kind: str, title: str, *, created_by_id: int | None = None, event_id: int | None = None) -> Mailing:
    """A new mailing in state ``entwurf``; nothing is sent before ``start_mailing``."""
    if not MailingKind.parse(kind):
        raise ValidationError(f"Unbekannte Art der Aussendung „{kind}“.", "kind")
    title = (title or "").strip()
    if not title:
        raise ValidationError("Bitte geben Sie einen Titel für die Aussendung an.", "title")
    mailing = Mailing(kind=kind, title=title[:300], state=MailingState.ENTWURF, created_by_id=created_by_id, event_id=event_id)
    db.session.add(mailing)
    db.session.flush()
    return mailing


def _check_header(value: str, label: str, field: str) -> str:
    if _CONTROL.search(value or ""):
        raise ValidationError(f"{label} darf keinen Zeilenumbruch und keine Steuerzeichen enthalten.", field)
    return value


def _check_address(value: str, field: str = "to_email") -> str:
    """One bare address, checked by email-validator; returned with the domain in its ASCII (IDNA)
    form, which every server takes. A local part beyond ASCII (RFC 6531, ``renée@…``) is valid: such
    a message is sent with SMTPUTF8, or refused for just this recipient where the server lacks it."""
    value = _check_header((value or "").strip(), "Die E-Mail-Adresse", field)
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=True, allow_display_name=False,
                                 allow_quoted_local=False, allow_domain_literal=False)
    except EmailNotValidError:
        raise ValidationError(f"„{value}“ ist keine gültige E-Mail-Adresse (genau eine Adresse, ohne Namen).", field) from None
    return f"{checked.local_part}@{checked.ascii_domain}"


def needs_smtputf8(address: str) -> bool:
    """True for an address (as ``enqueue`` stores it) that only an SMTPUTF8 server can take."""
    return not address.isascii()


def _calendar_method(calendar: CalendarPart | None) -> str | None:
    """The iTIP method of a calendar part, checked against the METHOD line inside it."""
    if calendar is None:
        return None
    method = calendar.method.upper()
    if method not in CALENDAR_METHODS:
        raise ValidationError(f"Unbekannte Kalender-Methode „{calendar.method}“.", "calendar")
    found = re.search(rb"^METHOD:([A-Za-z-]+)\r?$", calendar.data, re.MULTILINE)
    if not found or found.group(1).decode().upper() != method:
        raise ValidationError("Die Kalenderdatei nennt eine andere METHOD als der Mail-Teil.", "calendar")
    return method


def _check_topic(topic: str | None) -> str | None:
    if topic is not None and (not topic or len(topic) > 100 or _CONTROL.search(topic)):
        raise ValidationError("Ungültiges Thema einer Nachricht.", "topic")
    return topic


def _sender() -> tuple[str, str]:
    settings.refresh()  # also outside a request (CLI): the sender as set in Verwaltung → Einstellungen
    cfg = current_app.config
    from_header = _check_header(cfg["MAIL_DEFAULT_SENDER"] if isinstance(cfg["MAIL_DEFAULT_SENDER"], str)
                                else f"{cfg['MAIL_DEFAULT_SENDER'][0]} <{cfg['MAIL_DEFAULT_SENDER'][1]}>",
                                "Der Absender (MAIL_DEFAULT_SENDER)", "from")
    reply_to = _check_header(cfg.get("MAIL_REPLY_TO") or "", "Die Antwortadresse (MAIL_REPLY_TO)", "reply_to")
    return from_header, reply_to


def _msgid_domain(from_header: str) -> str:
    addr = parseaddr(from_header)[1]
    return addr.rpartition("@")[2] or socket.getfqdn()


def enqueue(
    mailing: Mailing,
    *,
    to_email: str,
    to_name: str = "",
    contact_id: int | None = None,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    calendar: CalendarPart | None = None,
    topic: str | None = None,
    facts: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> OutboxMessage:
    """Render and store one message for one recipient (see the module docstring)."""
    if mailing.state not in MailingState.NOT_CANCELLED:
        raise ValidationError("Diese Aussendung ist abgebrochen; es können keine Nachrichten mehr hinzukommen.")
    to_email = _check_address(to_email)
    to_name = _check_header((to_name or "").strip(), "Der Name des Empfängers", "to_name")
    subject = _check_header((subject or "").strip(), "Der Betreff", "subject")
    if not subject:
        raise ValidationError("Bitte geben Sie einen Betreff an.", "subject")
    if not text or not text.strip():
        raise ValidationError("Die Nachricht braucht einen Text.", "text")
    calendar_method = _calendar_method(calendar)
    for attachment in attachments:
        _check_header(attachment.filename, "Der Dateiname eines Anhangs", "attachments")
        _check_header(attachment.mimetype, "Der Typ eines Anhangs", "attachments")
        if "/" not in attachment.mimetype or not attachment.filename.strip():
            raise ValidationError(f"Der Anhang „{attachment.filename}“ hat keinen gültigen Dateinamen oder Typ.", "attachments")
    from_header, reply_to = _sender()
    blob_keys = [_store_blob_cached(attachment.data) for attachment in attachments]
    message = OutboxMessage(
        mailing=mailing,
        contact_id=contact_id,
        from_header=from_header,
        reply_to=reply_to,
        to_email=to_email,
        to_name=to_name,
        subject=subject,
        message_id=make_msgid(domain=_msgid_domain(from_header)),
        bounce_token=secrets.token_urlsafe(16),
        date=utcnow().replace(microsecond=0),
        text=text,
        html=html,
        calendar_method=calendar_method,
        calendar_data=calendar.data if calendar is not None else None,
        topic=_check_topic(topic),
        facts=facts,
        expires_at=expires_at,
        state=MessageState.WARTEND,
        next_attempt_at=utcnow(),
    )
    for position, attachment in enumerate(attachments):
        message.attachments.append(OutboxAttachment(
            position=position,
            filename=attachment.filename,
            mimetype=attachment.mimetype,
            blob_sha256=blob_keys[position],
            size=len(attachment.data),
        ))
    # No flush per message: the next one (at the latest start_mailing's count) writes a whole
    # mailing in batched INSERTs; two round trips per message made 2,000 take 10 s on PostgreSQL.
    db.session.add(message)
    return message


def skip_recipient(mailing: Mailing, *, to_email: str, to_name: str = "", contact_id: int | None = None,
                   reason: str) -> OutboxMessage:
    """Record that no message could be built for one recipient (``reason`` in German), so the batch
    goes on and the mailing shows this person with the reason. Such a row is never sent."""
    from_header, reply_to = _sender()
    message = OutboxMessage(
        mailing=mailing, contact_id=contact_id, from_header=from_header, reply_to=reply_to,
        # Kept as given (it may be the very problem), without anything that could break a line.
        to_email=_CONTROL.sub(" ", to_email or "")[:254], to_name=_CONTROL.sub(" ", to_name or "")[:200],
        subject="", message_id=make_msgid(domain=_msgid_domain(from_header)), text="",
        state=MessageState.UEBERSPRUNGEN, server_reply=reason,
    )
    db.session.add(message)
    return message


def withdraw_messages(condition: Any, reason: str) -> int:
    """Withdraw every message matching ``condition`` (an SQL expression on OutboxMessage) that has
    not been claimed yet; returns how many. What a worker already claimed is beyond recall."""
    result = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.state == MessageState.WARTEND, condition)
        .values(state=MessageState.ZURUECKGEZOGEN, server_reply=reason),
        execution_options={"synchronize_session": "fetch"},
    )
    db.session.flush()
    return result.rowcount or 0


def _store_blob_cached(data: bytes) -> str:
    """store_blob, but a mailing with 2,000 identical attachments asks the database once per session."""
    known: set[str] = db.session.info.setdefault("outbox_blob_keys", set())
    key = sha256_of(data)
    if key not in known:
        store_blob(data)
        known.add(key)
    return key


@event.listens_for(Session, "after_rollback")
def _forget_blob_keys(session: Session) -> None:
    # After a rollback the blobs flushed in that transaction are gone again.
    session.info.pop("outbox_blob_keys", None)


def start_mailing(mailing: Mailing, *, allow_empty: bool = False) -> None:
    """Release a draft to the worker. ``allow_empty``: a running mailing that later messages join
    (e.g. an event's confirmations) may start with nothing to send."""
    if mailing.state != MailingState.ENTWURF:
        raise ValidationError("Nur ein Entwurf kann gesendet werden.")
    count = db.session.scalar(select(func.count()).where(OutboxMessage.mailing_id == mailing.id,
                                                         OutboxMessage.state == MessageState.WARTEND))
    if not count and not allow_empty:
        raise ValidationError("Die Aussendung enthält keine Nachrichten, die gesendet werden können.")
    mailing.state = MailingState.AKTIV
    mailing.started_at = utcnow()
    db.session.flush()
    if db.engine.dialect.name == "postgresql" and count >= 100:
        # Fresh statistics before the workers start: with a table that last looked empty of
        # waiting rows, the planner sorts every waiting row for each claim instead of walking
        # the due index, and a 10,000-message mailing would take quadratic time. ANALYZE also
        # makes workers re-plan their prepared claim statement.
        db.session.execute(text("ANALYZE outbox_messages"))


# --- Progress and control ----------------------------------------------------------------------

def get_mailing(mailing_id: int) -> Mailing:
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None:
        raise NotFound(f"Aussendung {mailing_id} gibt es nicht.")
    return mailing


def get_message(message_id: int) -> OutboxMessage:
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"Nachricht {message_id} gibt es nicht.")
    return message


def mailing_counts(mailing_id: int | None = None) -> dict[str, int]:
    """Count per message state (every state present, zeros included)."""
    query = select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    if mailing_id is not None:
        query = query.where(OutboxMessage.mailing_id == mailing_id)
    counts = {state: 0 for state in MessageState}
    for state, count in db.session.execute(query):
        counts[state] = count
    return counts


def counts_by_mailing(mailing_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    result = {mid: {state: 0 for state in MessageState} for mid in mailing_ids}
    if mailing_ids:
        rows = db.session.execute(
            select(OutboxMessage.mailing_id, OutboxMessage.state, func.count())
            .where(OutboxMessage.mailing_id.in_(mailing_ids))
            .group_by(OutboxMessage.mailing_id, OutboxMessage.state)
        )
        for mid, state, count in rows:
            result[mid][state] = count
    return result


def mailing_progress(mailing: Mailing) -> dict[str, Any]:
    """Counts, percentage done and an estimate of the seconds left (JSON-ready)."""
    counts = mailing_counts(mailing.id)
    total = sum(counts.values())
    waiting = sum(counts[state] for state in MessageState.LEFT_TO_SEND)
    done = total - waiting
    seconds_left: float | None = None
    if waiting and mailing.state == MailingState.AKTIV:
        recent = utcnow() - timedelta(minutes=5)
        sent_times = db.session.execute(
            select(func.count(), func.min(OutboxMessage.sent_at), func.max(OutboxMessage.sent_at))
            .where(OutboxMessage.mailing_id == mailing.id, OutboxMessage.sent_at >= recent)
        ).one()
        rate_limit = current_app.config["MAIL_RATE_PER_MINUTE"] or 0
        per_second = None
        if sent_times[0] and sent_times[0] > 1 and sent_times[2] > sent_times[1]:
            per_second = (sent_times[0] - 1) / (sent_times[2] - sent_times[1]).total_seconds()
        if rate_limit:
            per_second = min(per_second or rate_limit / 60, rate_limit / 60)
        if per_second:
            seconds_left = round(waiting / per_second)
    return {
        "id": mailing.id,
        "state": mailing.state,
        "state_label": mailing.state_label_for(counts),
        "pause_reason": mailing.pause_reason,
        "total": total,
        "sent": counts["gesendet"],
        "waiting": waiting,
        "failed": counts["fehlgeschlagen"],
        "unklar": counts["unklar"],
        "cancelled": counts["abgebrochen"],
        "withdrawn": counts["zurueckgezogen"],
        "skipped": counts["uebersprungen"],
        "undeliverable": counts["unzustellbar"],
        "done": done,
        "percent": round(100 * done / total) if total else 100,
        "seconds_left": seconds_left,
        "finished": waiting == 0,
    }


def messages_in_state(state: str, mailing_id: int | None = None, limit: int | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.state == state).order_by(OutboxMessage.id).limit(limit)
    if mailing_id is not None:
        query = query.where(OutboxMessage.mailing_id == mailing_id)
    return list(db.session.scalars(query))
