"""The outbox's part of erasing a person (``recipients.signals.contact_erasing``).

- What still waits for them is withdrawn (``zurueckgezogen``), drafts included, so a mailing started
  after the erasure sends them nothing; failed messages too, so "retry" cannot send them either.
- Every message to them keeps its row, so the counts of past mailings stay right, but loses what was
  personal: address, name, subject (it becomes the mailing's title), text, HTML, calendar part, and the
  address in the server's reply. A mailed letter goes with its message (mailed circulars are not
  archived; their record is the template version and the anonymised log of the Akten-Export); letters
  made as files stay in the letters archive (letters/erasure.py).
- Their attachment rows go; the bytes go with them unless something kept still uses them (the same
  circular attached to everyone, or the archived letter).
- Delivery reports and automatic replies recorded about their messages are deleted.
- Copies written as .eml files (no SMTP server configured) are deleted once the erasure is committed.

A message a worker is handing to the SMTP server at this very moment (``in_arbeit``) is beyond recall;
its stored content is scrubbed all the same. Should the server answer it with a temporary failure, it
comes back (``messages_returned``) and is withdrawn then, never tried again.
"""
from __future__ import annotations

import os
import re
from typing import Any

from sqlalchemy import and_, delete, false, func, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..blobs import discard_unreferenced
from ..extensions import db
from ..recipients.addresses import ANONYMISED_ADDRESS, address_forms
from ..recipients.models import Contact
from ..recipients.signals import contact_erasing
from .models import Mailing, MessageState, OutboxAttachment, OutboxBounce, OutboxMessage
from .services import outbox_dir, withdraw_messages
from .signals import messages_returned

SCRUBBED_TEXT = "Inhalt aus Datenschutzgründen gelöscht: Die Ansprechperson wurde anonymisiert oder gelöscht."
_FILES_KEY = "erasure_files_after_commit"


def person_messages(contact: Contact) -> ColumnElement[bool]:
    """Messages to this person: by contact id, and copies that carry only one of their addresses."""
    own = OutboxMessage.contact_id == contact.id
    known = db.session.scalars(select(OutboxMessage.to_email).where(own).distinct())
    forms = address_forms([contact.email, *known])
    if not forms:
        return own
    return or_(own, and_(OutboxMessage.contact_id.is_(None), func.lower(OutboxMessage.to_email).in_(sorted(forms))))


def _redact(text: str, forms: set[str]) -> str:
    for form in forms:
        text = re.sub(re.escape(form), ANONYMISED_ADDRESS, text, flags=re.IGNORECASE)
    return text


def erase_messages(contact: Contact, reason: str) -> dict[str, int]:
    """Withdraw and scrub (see the module docstring); flushes. Returns counts for the audit entry."""
    db.session.flush()
    condition = person_messages(contact)
    forms = address_forms([contact.email, *db.session.scalars(select(OutboxMessage.to_email).where(condition).distinct())])
    withdrawn = withdraw_messages(condition, reason)
    withdrawn += db.session.execute(
        update(OutboxMessage).where(condition, OutboxMessage.state == MessageState.FEHLGESCHLAGEN)
        .values(state=MessageState.ZURUECKGEZOGEN, server_reply=reason),
        execution_options={"synchronize_session": False},
    ).rowcount or 0

    replies = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.server_reply).where(condition, OutboxMessage.server_reply != "")).all()
    for message_id, reply in replies:
        redacted = _redact(reply, forms)
        if redacted != reply:
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(server_reply=redacted),
                               execution_options={"synchronize_session": False})

    # Reports about their messages (or naming one of their addresses) hold the address and the server's
    # words about it; what they did to the messages stays in the messages' state.
    bounces = db.session.execute(delete(OutboxBounce).where(or_(
        OutboxBounce.message_id.in_(select(OutboxMessage.id).where(condition)),
        func.lower(OutboxBounce.recipient).in_(sorted(forms)) if forms else false())),
        execution_options={"synchronize_session": False}).rowcount or 0

    folder = outbox_dir()
    files = [folder / name for name in db.session.scalars(select(OutboxMessage.eml_file).where(condition, OutboxMessage.eml_file != ""))]
    db.session.info.setdefault(_FILES_KEY, set()).update(files)

    attachments = db.session.execute(
        select(OutboxAttachment.id, OutboxAttachment.blob_sha256)
        .join(OutboxMessage, OutboxMessage.id == OutboxAttachment.message_id).where(condition)).all()
    if attachments:
        db.session.execute(delete(OutboxAttachment).where(OutboxAttachment.id.in_([row.id for row in attachments])),
                           execution_options={"synchronize_session": False})

    scrubbed = db.session.execute(
        update(OutboxMessage).where(condition).values(
            to_email=ANONYMISED_ADDRESS, to_name="", text=SCRUBBED_TEXT, html=None, calendar_data=None,
            # Titles are made of event titles and subjects, never of a recipient's data.
            subject=select(Mailing.title).where(Mailing.id == OutboxMessage.mailing_id).scalar_subquery()),
        execution_options={"synchronize_session": False},
    ).rowcount or 0
    _forget_loaded_copies()
    discarded = discard_unreferenced(row.blob_sha256 for row in attachments)
    # enqueue's per-session cache must not believe the discarded bytes are still stored.
    db.session.info.get("outbox_blob_keys", set()).difference_update(discarded)
    db.session.flush()
    return {"nachrichten": scrubbed, "zurueckgezogen": withdrawn, "dateien": len(discarded), "zustellberichte": bounces}


def _forget_loaded_copies() -> None:
    # The bulk statements bypassed the ORM: objects already loaded must read the scrubbed rows again.
    for instance in list(db.session.identity_map.values()):
        if isinstance(instance, (OutboxMessage, OutboxAttachment)):
            db.session.expire(instance)


@sa_event.listens_for(Session, "after_commit")
def _delete_files(session: Session) -> None:
    for path in session.info.pop(_FILES_KEY, set()):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass  # removed by hand already: the goal is reached


@sa_event.listens_for(Session, "after_rollback")
def _keep_files(session: Session) -> None:
    session.info.pop(_FILES_KEY, None)


def _on_contact_erasing(sender: Any, *, contact: Contact, delete: bool) -> dict[str, int]:
    reason = ("Zurückgezogen: Die Ansprechperson wurde gelöscht." if delete
              else "Zurückgezogen: Die Ansprechperson wurde anonymisiert.")
    return erase_messages(contact, reason)


def _on_messages_returned(sender: Any, *, message_ids: list[int], **_: Any) -> None:
    withdraw_messages(and_(OutboxMessage.id.in_(message_ids), OutboxMessage.to_email == ANONYMISED_ADDRESS),
                      "Zurückgezogen: Die Ansprechperson wurde anonymisiert oder gelöscht, während die Nachricht unterwegs war.")


def connect() -> None:
    """Register the receivers (once per process; connecting again changes nothing)."""
    contact_erasing.connect(_on_contact_erasing)
    messages_returned.connect(_on_messages_returned)

