"""Calendar replies (iTIP REPLY mails): matching to invitations, manual assignment, ingesting files."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from ..auth.services import audit
from ..core.formatting import anzahl
from ..errors import NotFound, ValidationError
from ..extensions import db
from .answers import answer
from .models import CalendarReply, Event, Invitation
from .replies import ParsedReply, parse_mail


PARTSTAT_TO_STATE = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative", "DELEGATED": "declined"}


def _apply_one(reply: ParsedReply, message_id: str, from_email: str) -> CalendarReply | None:
    if db.session.scalar(select(CalendarReply.id).where(CalendarReply.key == reply.key)) is not None:
        return None  # RPLY-08: seen before
    record = CalendarReply(
        key=reply.key, message_id=message_id, from_email=from_email, uid=reply.uid[:255],
        attendee_email=reply.attendee_email[:254], attendee_name=reply.attendee_name[:300],
        partstat=reply.partstat[:30], sequence=reply.sequence, dtstamp=reply.dtstamp, comment=reply.comment[:2000],
    )
    db.session.add(record)
    event = db.session.scalar(select(Event).where(Event.uid == reply.uid))
    invitation = None
    if event is not None:
        record.event_id = event.id
        by_email = {i.email: i for i in event.invitations}
        invitation = by_email.get(reply.attendee_email)
        if invitation is None and from_email and from_email == reply.attendee_email:
            invitation = by_email.get(from_email)
    if event is None or invitation is None:
        record.status = "unmatched"
        db.session.flush()
        audit("kalenderantwort.unzugeordnet", record)
        return record
    record.invitation_id = invitation.id
    if reply.partstat not in PARTSTAT_TO_STATE:  # RPLY-05
        record.status = "ignored"
    elif reply.sequence < event.sequence:  # RPLY-06
        record.status = "stale"
    elif (invitation.channel == "calendar" and invitation.sequence_answered == reply.sequence
          and _newer_reply_exists(invitation.id, reply)):
        record.status = "ignored"
    else:
        try:
            answer(invitation, PARTSTAT_TO_STATE[reply.partstat], companions=invitation.companions,
                   remark=reply.comment or invitation.remark, dietary=invitation.dietary, channel="calendar",
                   sequence=reply.sequence)
            record.status = "applied"
        except ValidationError:
            record.status = "ignored"
    db.session.flush()
    audit(f"kalenderantwort.{record.status}", record, invitation_id=invitation.id, event_id=event.id)
    return record


def _newer_reply_exists(invitation_id: int, reply: ParsedReply) -> bool:
    """Among replies to the same SEQUENCE the newer DTSTAMP wins (RPLY-06)."""
    if reply.dtstamp is None:
        return False
    newer = select(CalendarReply.id).where(
        CalendarReply.invitation_id == invitation_id, CalendarReply.status == "applied",
        CalendarReply.sequence == reply.sequence, CalendarReply.dtstamp > reply.dtstamp,
    )
    return db.session.scalar(newer) is not None


def apply_reply_mail(raw: bytes) -> list[CalendarReply]:
    """Parses one mail and records each REPLY in it; returns the new records (duplicates are skipped)."""
    parsed = parse_mail(raw)
    records = []
    for reply in parsed.replies:
        record = _apply_one(reply, parsed.message_id, parsed.from_email)
        if record is not None:
            records.append(record)
    return records


def unmatched_replies() -> list[CalendarReply]:
    return list(db.session.scalars(select(CalendarReply).where(CalendarReply.status == "unmatched").order_by(CalendarReply.received_at)))


def assign_reply(reply_id: int, invitation_id: int) -> Invitation:
    record = db.session.get(CalendarReply, reply_id)
    invitation = db.session.get(Invitation, invitation_id)
    if record is None or record.status != "unmatched":
        raise NotFound("Diese Kalenderantwort ist nicht (mehr) offen.")
    if invitation is None:
        raise ValidationError("Bitte wählen Sie eine Einladung.", "invitation_id")
    state = PARTSTAT_TO_STATE.get(record.partstat)
    if state is None:
        raise ValidationError("Diese Antwort enthält weder Zusage noch Absage.")
    answer(invitation, state, companions=invitation.companions, remark=record.comment or invitation.remark,
           dietary=invitation.dietary, channel="calendar", sequence=record.sequence)
    record.status = "assigned"
    record.invitation_id = invitation.id
    record.event_id = invitation.event_id
    db.session.flush()
    audit("kalenderantwort.zugeordnet", record, invitation_id=invitation.id)
    return invitation


@dataclass
class IngestResult:
    mails: int = 0
    statuses: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"{anzahl(self.mails, 'Mail', 'Mails')} gelesen"]
        labels = {"applied": "übernommen", "stale": "veraltet", "ignored": "ignoriert", "unmatched": "zur Prüfung"}
        parts += [f"{self.statuses[key]} {label}" for key, label in labels.items() if self.statuses[key]]
        return ", ".join(parts) + "."


def ingest_mails(raw_mails) -> IngestResult:
    result = IngestResult()
    for raw in raw_mails:
        result.mails += 1
        for record in apply_reply_mail(raw):
            result.statuses[record.status] += 1
    return result


def ingest_path(path: str) -> IngestResult:
    """One .eml file, an mbox file, a Maildir directory or a folder of .eml files (RPLY-01…09)."""
    import os

    from .replies import iter_mail_source

    if not os.path.exists(path):
        raise ValidationError(f"Die Datei oder der Ordner „{path}“ existiert nicht.")
    return ingest_mails(iter_mail_source(path))
