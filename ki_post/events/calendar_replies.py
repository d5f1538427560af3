"""Calendar replies (iTIP REPLY mails): matching to invitations, manual assignment, ingesting files."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from ..auth.services import audit
from ..formatting import anzahl
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..recipients.addresses import address_forms
from .answers import answer, deadline_passed
from .delivery import delivery_of
from .models import CalendarReply, Channel, Event, EventState, Invitation, InvitationState, ReplyStatus
from .replies import ParsedReply, parse_mail


# iCalendar PARTSTAT (as on the wire) → the answer it records.
PARTSTAT_TO_STATE = {"ACCEPTED": InvitationState.ZUGESAGT, "DECLINED": InvitationState.ABGESAGT,
                     "TENTATIVE": InvitationState.VORLAEUFIG, "DELEGATED": InvitationState.ABGESAGT}


def _apply_one(reply: ParsedReply, message_id: str, from_email: str) -> CalendarReply | None:
    """Records one REPLY and applies it to the invitation it belongs to: the event by UID, the person
    by the attendee's address (the sender's only if it is the same mailbox). Never to another event."""
    if db.session.scalar(select(CalendarReply.id).where(CalendarReply.key == reply.key)) is not None:
        return None  # seen before: processing is idempotent
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
        # However the calendar spelled the address (xn-- or Unicode domain, upper case): the bounce
        # matcher and the erasure look for copies the same way.
        spellings = address_forms([reply.attendee_email]) or {reply.attendee_email}
        invitation = db.session.scalar(select(Invitation).where(Invitation.event_id == event.id,
                                                                func.lower(Invitation.email).in_(spellings))
                                       .order_by(Invitation.id).limit(1))
    if event is None or invitation is None:
        record.status = ReplyStatus.UNZUGEORDNET
        db.session.flush()
        audit("kalenderantwort.unzugeordnet", record)
        return record
    record.invitation_id = invitation.id
    sent_sequence = delivery_of(invitation).told_sequence or 0
    if reply.partstat not in PARTSTAT_TO_STATE or event.state != EventState.VEROEFFENTLICHT:
        record.status = ReplyStatus.IGNORIERT
    elif reply.sequence < sent_sequence:
        # An answer to a version older than the last one sent to this person: they have not seen the
        # change yet (a version prepared but not sent does not make a reply stale).
        record.status = ReplyStatus.VERALTET
    elif (invitation.channel == Channel.KALENDER and invitation.sequence_answered == reply.sequence
          and _newer_reply_exists(invitation.id, reply)):
        record.status = ReplyStatus.IGNORIERT
    elif deadline_passed(event):
        record.status = ReplyStatus.VERSPAETET  # the same deadline as for the link; staff may take it over explicitly
    else:
        try:
            answer(invitation, PARTSTAT_TO_STATE[reply.partstat], companions=invitation.companions,
                   remark=reply.comment or invitation.remark, dietary=invitation.dietary, channel=Channel.KALENDER,
                   sequence=reply.sequence)
            record.status = ReplyStatus.UEBERNOMMEN
        except ValidationError:
            record.status = ReplyStatus.IGNORIERT
    db.session.flush()
    audit(f"kalenderantwort.{record.status}", record, invitation_id=invitation.id, event_id=event.id)
    return record


def _newer_reply_exists(invitation_id: int, reply: ParsedReply) -> bool:
    """Among replies to the same SEQUENCE the newer DTSTAMP wins."""
    if reply.dtstamp is None:
        return False
    newer = select(CalendarReply.id).where(
        CalendarReply.invitation_id == invitation_id, CalendarReply.status == ReplyStatus.UEBERNOMMEN,
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
    """Replies for a person to look at: not matched to an invitation, or after the deadline."""
    return list(db.session.scalars(select(CalendarReply).where(CalendarReply.status.in_(ReplyStatus.REVIEW))
                                   .order_by(CalendarReply.received_at, CalendarReply.id)))


def _open_reply(reply_id: int) -> CalendarReply:
    record = db.session.get(CalendarReply, reply_id)
    if record is None or record.status not in ReplyStatus.REVIEW:
        raise NotFound("Diese Kalenderantwort ist nicht (mehr) offen.")
    return record


def assign_reply(reply_id: int, invitation_id: int | None, *, override_deadline: bool = False) -> Invitation:
    """A person assigns a reply to an invitation of the reply's own event (chosen by name)."""
    record = _open_reply(reply_id)
    if record.event_id is None:
        raise ValidationError("Zu dieser Antwort gibt es keine Veranstaltung (unbekannte UID); sie lässt sich "
                              "niemandem zuordnen.", "invitation_id")
    invitation = db.session.get(Invitation, invitation_id) if invitation_id else None
    if invitation is None:
        raise ValidationError("Bitte wählen Sie die eingeladene Person.", "invitation_id")
    if invitation.event_id != record.event_id:
        raise ValidationError("Diese Person ist zu der Veranstaltung der Antwort nicht eingeladen.", "invitation_id")
    state = PARTSTAT_TO_STATE.get(record.partstat)
    if state is None:
        raise ValidationError("Diese Antwort enthält weder Zusage noch Absage.")
    answer(invitation, state, companions=invitation.companions, remark=record.comment or invitation.remark,
           dietary=invitation.dietary, channel=Channel.KALENDER, sequence=record.sequence, override_deadline=override_deadline)
    record.status = ReplyStatus.ZUGEORDNET
    record.invitation_id = invitation.id
    db.session.flush()
    audit("kalenderantwort.zugeordnet", record, invitation_id=invitation.id, frist_uebergangen=override_deadline)
    return invitation


def dismiss_reply(reply_id: int) -> CalendarReply:
    """A person decided the reply needs nothing (e.g. for an unknown event)."""
    record = _open_reply(reply_id)
    record.status = ReplyStatus.VERWORFEN
    db.session.flush()
    audit("kalenderantwort.verworfen", record)
    return record


def assignable(record: CalendarReply) -> list[Invitation]:
    """The invitations of the reply's event to choose from, by name."""
    if record.event_id is None:
        return []
    return sorted(db.session.scalars(select(Invitation).where(Invitation.event_id == record.event_id)),
                  key=lambda i: ((i.name or i.email).lower(), i.id))


# How a mailbox run's summary names what became of the calendar replies it read.
REPLY_SUMMARY_LABELS = {ReplyStatus.UEBERNOMMEN: "übernommen", ReplyStatus.VERALTET: "veraltet",
                        ReplyStatus.IGNORIERT: "ignoriert", ReplyStatus.UNZUGEORDNET: "zur Prüfung",
                        ReplyStatus.VERSPAETET: "nach Fristende zur Prüfung"}


@dataclass
class IngestResult:
    """Counts of a mailbox run (``mailbox.MailboxResult`` adds the delivery reports)."""

    mails: int = 0
    statuses: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"{anzahl(self.mails, 'Mail', 'Mails')} gelesen"]
        parts += [f"{self.statuses[key]} {label}" for key, label in REPLY_SUMMARY_LABELS.items() if self.statuses[key]]
        return ", ".join(parts) + "."
