"""Invitations and their mails: who is invited, invite, update, remind."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from ..recipients.models import Contact
from .mails import _enqueue_for, _mailing, _start
from .models import Event, Invitation
from .operations import publish_event


def _contacts(verteiler_id: int | None, contact_ids: list[int] | None) -> list[Contact]:
    from ..recipients.services import resolve_recipients

    return list(resolve_recipients(verteiler_id=verteiler_id, contact_ids=contact_ids or ()))


def verteiler_id_by_name(name: str) -> int:
    from ..recipients.services import verteiler_by_name

    return verteiler_by_name(name).id


def add_invitations(event: Event, contacts: list[Contact]) -> list[Invitation]:
    """Creates missing invitations (one per e-mail address); existing ones are kept as they are."""
    existing = {i.email for i in event.invitations}
    created = []
    for contact in contacts:
        email = (contact.email or "").strip().lower()
        if not email or email in existing or contact.anonymised_at is not None:
            continue
        existing.add(email)
        invitation = Invitation(
            event=event,
            contact_id=contact.id,
            name=contact.full_name,
            email=email,
            organisation_name=contact.organisation.name if contact.organisation else "",
            token=secrets.token_urlsafe(32),
        )
        db.session.add(invitation)
        created.append(invitation)
    db.session.flush()
    return created


def _is_docx(data: bytes) -> bool:
    import io
    import zipfile

    try:
        return "word/document.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False


def circular_attachment(filename: str, data: bytes):
    """The optional circular attached to invitations: PDF or DOCX only, checked by content, not by name."""
    import re as _re

    from ..outbox.services import Attachment

    name = _re.sub(r"[\x00-\x1f\x7f/\\\"]", "", (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip()[:120]
    if data.startswith(b"%PDF-"):
        kind, mimetype = ".pdf", "application/pdf"
    elif _is_docx(data):
        kind, mimetype = ".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    else:
        raise ValidationError("Als Anhang sind nur PDF- oder Word-Dateien (.docx) möglich.", "attachment")
    if not name.lower().endswith(kind):
        name = (name.rsplit(".", 1)[0] if "." in name else name or "Rundschreiben") + kind
    return Attachment(filename=name, mimetype=mimetype, data=data)


@dataclass
class InviteResult:
    invited: int
    already: int
    mailing_id: int | None


def invite(event: Event, *, verteiler_id: int | None = None, contact_ids: list[int] | None = None,
           attachments=(), created_by_id: int | None = None) -> InviteResult:
    """Invites the contacts not yet invited: one invitation mail each with a REQUEST calendar part."""
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist abgesagt; es können keine Einladungen mehr versendet werden.")
    contacts = _contacts(verteiler_id, contact_ids)
    if not contacts:
        raise ValidationError("Der Verteiler enthält keine aktiven Kontakte.", "verteiler_id")
    if event.state == "draft":
        publish_event(event)
    add_invitations(event, contacts)
    # "Already invited" means an invitation went out before, not merely that a row exists (the
    # demo data and staff answers create rows without sending anything).
    chosen = {contact.id for contact in contacts}
    already = sum(1 for i in event.invitations if i.invited_at is not None and i.contact_id in chosen)
    pending = [i for i in event.invitations if i.invited_at is None]
    if not pending:
        return InviteResult(0, already, None)
    mailing = _mailing("einladung", f"Einladung: {event.title}", event, created_by_id)
    now = utcnow()
    for invitation in pending:
        _enqueue_for(mailing, "einladung", event, invitation, calendar="REQUEST", attachments=attachments, require_link=True)
        invitation.invited_at = now
    _start(mailing)
    audit("veranstaltung.eingeladen", event, anzahl=len(pending), mailing_id=mailing.id)
    return InviteResult(len(pending), already, mailing.id)


def _not_declined(event: Event) -> list[Invitation]:
    return [i for i in event.invitations if i.invited_at is not None and i.state != "declined"]


def send_update(event: Event, created_by_id: int | None = None) -> int:
    """Same UID, SEQUENCE + 1 (ICS-23) to everyone invited who has not declined."""
    if event.state != "published":
        raise ValidationError("Nur für veröffentlichte Veranstaltungen kann eine Aktualisierung versendet werden.")
    event.sequence += 1
    event.update_pending = False
    recipients = _not_declined(event)
    if recipients:
        mailing = _mailing("aktualisierung", f"Aktualisierung: {event.title}", event, created_by_id)
        for invitation in recipients:
            _enqueue_for(mailing, "aktualisierung", event, invitation, calendar="REQUEST", require_link=True)
        _start(mailing)
    db.session.flush()
    audit("veranstaltung.aktualisierung", event, anzahl=len(recipients), sequence=event.sequence)
    return len(recipients)


def cancel_recipients(event: Event) -> list[Invitation]:
    """Who gets a cancellation: nobody for a draft, else everyone invited who has not declined."""
    return _not_declined(event) if event.state == "published" else []


def cancel_event(event: Event, created_by_id: int | None = None) -> int:
    """METHOD:CANCEL, STATUS:CANCELLED, SEQUENCE + 1 (ICS-22) to everyone invited who has not declined."""
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist bereits abgesagt.")
    recipients = cancel_recipients(event)
    event.state = "cancelled"
    event.sequence += 1
    event.update_pending = False
    if recipients:
        mailing = _mailing("absage", f"Absage: {event.title}", event, created_by_id)
        for invitation in recipients:
            _enqueue_for(mailing, "absage", event, invitation, calendar="CANCEL")
        _start(mailing)
    db.session.flush()
    audit("veranstaltung.abgesagt", event, anzahl=len(recipients), sequence=event.sequence)
    return len(recipients)


def reminder_recipients(event: Event, include_accepted: bool = False) -> list[Invitation]:
    states = {"open"} | ({"accepted"} if include_accepted else set())
    return [i for i in event.invitations if i.invited_at is not None and i.state in states]


def send_reminders(event: Event, include_accepted: bool = False, created_by_id: int | None = None) -> int:
    if event.state != "published":
        raise ValidationError("Erinnerungen gibt es nur für veröffentlichte Veranstaltungen.")
    recipients = reminder_recipients(event, include_accepted)
    if not recipients:
        raise ValidationError("Es gibt niemanden zu erinnern.")
    mailing = _mailing("erinnerung", f"Erinnerung: {event.title}", event, created_by_id)
    for invitation in recipients:
        _enqueue_for(mailing, "erinnerung", event, invitation, require_link=True)
    _start(mailing)
    db.session.flush()
    audit("veranstaltung.erinnerung", event, anzahl=len(recipients))
    return len(recipients)
