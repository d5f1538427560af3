"""Invitations and their mails: who is invited, inviting, and reminding those whose invitation went out."""
from __future__ import annotations

import io
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from ..outbox.models import Mailing, MessageState, OutboxMessage
from ..outbox.services import Attachment
from ..recipients.models import Contact
from .delivery import deliveries
from .mails import draft_mailing, queue, reachable, release
from .models import Event, EventState, Invitation, InvitationState
from .operations import publish_event


def _contacts(verteiler_id: int | None, contact_ids: list[int] | None) -> list[Contact]:
    """The active contacts of a Verteiler, the chosen ones, or (neither given) all active contacts."""
    from ..recipients.services import resolve_recipients

    if verteiler_id is None and not contact_ids:
        return list(resolve_recipients(filters={}))
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
    try:
        return "word/document.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return False


def circular_attachment(filename: str, data: bytes):
    """The optional circular attached to invitations: PDF or DOCX only, checked by content, not by name."""
    name = re.sub(r"[\x00-\x1f\x7f/\\\"]", "", (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip()[:120]
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
    invited: int  # invitation mails queued
    already: int  # chosen contacts whose invitation is queued, on its way or sent: no second one
    mailing_id: int | None
    skipped: int = 0  # recipients whose mail could not be built (reason in the mailing)


def invite(event: Event, *, verteiler_id: int | None = None, contact_ids: list[int] | None = None, attachments=(),
           created_by_id: int | None = None, start: bool = False) -> InviteResult:
    """Invites the chosen contacts (a Verteiler, single contacts, or all active contacts) not invited yet:
    one mail each with a REQUEST calendar part, in the event's draft invitation mailing (sent at once
    with ``start``). A person whose invitation mail failed, was skipped or withdrawn is invited anew."""
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt; es können keine Einladungen mehr versendet werden.")
    if utcnow() >= event.end_at:
        raise ValidationError("Die Veranstaltung ist vorbei; es können keine Einladungen mehr versendet werden.")
    contacts = _contacts(verteiler_id, contact_ids)
    if not contacts:
        raise ValidationError("Der Verteiler enthält keine aktiven Kontakte.", "verteiler_id")
    if event.state == EventState.ENTWURF:
        publish_event(event)
    add_invitations(event, contacts)
    chosen = {(contact.email or "").strip().lower() for contact in contacts}
    found = deliveries(event)
    already, pending = 0, []
    for invitation in event.invitations:
        if invitation.email not in chosen or not reachable(invitation):
            continue
        delivery = found.get(invitation.id)
        # "Already invited" means an invitation is queued, on its way or sent, not merely that a row
        # exists (demo data and staff answers create rows without sending anything).
        if delivery is not None and (delivery.may_have_event or delivery.unsent_of("einladung")):
            already += 1
        else:
            pending.append(invitation)
    if not pending:
        return InviteResult(0, already, None)
    mailing = draft_mailing(event, "einladung", created_by_id)
    queued = skipped = 0
    now = utcnow()
    for invitation in pending:
        if queue(mailing, "einladung", event, invitation, attachments=attachments) is None:
            skipped += 1
        else:
            queued += 1
            invitation.invited_at = now
    if start:
        release(mailing)
    db.session.flush()
    audit("veranstaltung.eingeladen", event, anzahl=queued, uebersprungen=skipped, mailing_id=mailing.id)
    return InviteResult(queued, already, mailing.id, skipped)


# --- Reminders ---------------------------------------------------------------------------------------------

def reminder_recipients(event: Event, include_accepted: bool = False) -> list[Invitation]:
    """Those whose invitation went out and who have not answered (optionally also those who accepted),
    before the event begins, and who have no reminder waiting already."""
    if event.state != EventState.VEROEFFENTLICHT or utcnow() >= event.start_at:
        return []
    states = {InvitationState.OFFEN} | ({InvitationState.ZUGESAGT} if include_accepted else set())
    found = deliveries(event)
    inactive = set(db.session.scalars(select(Contact.id).where(
        Contact.id.in_([i.contact_id for i in event.invitations if i.contact_id]), Contact.active.is_(False))))
    # A deactivated person (e.g. handed over to a successor) is no longer reminded.
    return [i for i in event.invitations
            if i.state in states and i.id in found and found[i.id].went_out and not found[i.id].unsent_of("erinnerung")
            and reachable(i) and i.contact_id not in inactive]


def last_reminder(event: Event) -> datetime | None:
    """When the latest reminder of this event was queued that is sent, on its way or waiting."""
    return db.session.scalar(
        select(func.max(OutboxMessage.created_at)).join(Mailing, Mailing.id == OutboxMessage.mailing_id)
        .where(Mailing.event_id == event.id, Mailing.kind == "erinnerung",
               OutboxMessage.state.in_(MessageState.MAY_HAVE_ARRIVED | {MessageState.WARTEND})))


def recent_reminder(event: Event) -> datetime | None:
    """The last reminder if it lies within REMINDER_WARN_HOURS: another one so soon needs a confirmation."""
    last = last_reminder(event)
    hours = float(current_app.config.get("REMINDER_WARN_HOURS", 72) or 0)
    if last is None or hours <= 0 or utcnow() - last >= timedelta(hours=hours):
        return None
    return last


@dataclass
class ReminderResult:
    reminded: int
    skipped: int
    mailing_id: int | None


def send_reminders(event: Event, include_accepted: bool = False, *, created_by_id: int | None = None,
                   start: bool = False, repeat_confirmed: bool = False) -> ReminderResult:
    """Reminders as a draft mailing (sent at once with ``start``); each lapses when the event begins."""
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt; es werden keine Erinnerungen versendet.")
    if event.state != EventState.VEROEFFENTLICHT:
        raise ValidationError("Erinnerungen gibt es nur für veröffentlichte Veranstaltungen.")
    if utcnow() >= event.start_at:
        raise ValidationError("Die Veranstaltung hat bereits begonnen; es werden keine Erinnerungen mehr versendet.")
    recent = recent_reminder(event)
    if recent is not None and not repeat_confirmed:
        from ..formatting import datum_zeit

        raise ValidationError(f"Am {datum_zeit(recent)} wurde bereits erinnert. Bitte bestätigen Sie, dass Sie "
                              "so bald erneut erinnern möchten.", "repeat")
    recipients = reminder_recipients(event, include_accepted)
    if not recipients:
        raise ValidationError("Es gibt niemanden zu erinnern: Erinnert wird nur, wessen Einladung versendet ist "
                              "und wer noch nicht geantwortet hat.")
    audience = ((InvitationState.OFFEN, InvitationState.ZUGESAGT) if include_accepted
                else (InvitationState.OFFEN,))
    mailing = draft_mailing(event, "erinnerung", created_by_id)
    reminded = skipped = 0
    for invitation in recipients:
        if queue(mailing, "erinnerung", event, invitation, audience=audience) is None:
            skipped += 1
        else:
            reminded += 1
    if start:
        release(mailing)
    db.session.flush()
    audit("veranstaltung.erinnerung", event, anzahl=reminded, uebersprungen=skipped, mailing_id=mailing.id)
    return ReminderResult(reminded, skipped, mailing.id)
