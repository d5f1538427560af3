from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import db
from ..states import LabelledEnum, state_column



class EventState(LabelledEnum):
    ENTWURF = "entwurf", "Entwurf"
    VEROEFFENTLICHT = "veroeffentlicht", "veröffentlicht"
    ABGESAGT = "abgesagt", "abgesagt"


class InvitationState(LabelledEnum):
    """Where one invited person stands; the label is what they and the staff read."""

    OFFEN = "offen", "offen"
    ZUGESAGT = "zugesagt", "Zusage"
    ABGESAGT = "abgesagt", "Absage"
    VORLAEUFIG = "vorlaeufig", "vorläufig"
    WARTELISTE = "warteliste", "Warteliste"


# What a person (or the staff for them) can answer; an acceptance beyond capacity becomes WARTELISTE.
InvitationState.ANSWERS = frozenset({InvitationState.ZUGESAGT, InvitationState.ABGESAGT, InvitationState.VORLAEUFIG})
# Shown as "Ich nehme teil" on the personal answer page: accepted, or waiting for a seat.
InvitationState.WANTS_TO_COME = frozenset({InvitationState.ZUGESAGT, InvitationState.WARTELISTE})
# Before this version the codes were English; personal answer links with ``?antwort=accepted`` may sit in
# mailboxes, and the answer form may be posted from a page loaded before the upgrade.
InvitationState.FORMER_CODES = {"open": InvitationState.OFFEN, "accepted": InvitationState.ZUGESAGT,
                                "declined": InvitationState.ABGESAGT, "tentative": InvitationState.VORLAEUFIG,
                                "waiting": InvitationState.WARTELISTE}


class Channel(LabelledEnum):
    """How an answer came in (None on an invitation not answered yet)."""

    LINK = "link", "persönlicher Link"
    KALENDER = "kalender", "Kalenderantwort"
    TELEFON = "telefon", "Telefon"
    BRIEF = "brief", "Brief"
    SACHBEARBEITUNG = "sachbearbeitung", "Sachbearbeitung"


# Answers the staff records: these may override the deadline on purpose (never the personal link).
Channel.STAFF = frozenset({Channel.TELEFON, Channel.BRIEF, Channel.SACHBEARBEITUNG, Channel.KALENDER})


class ReplyStatus(LabelledEnum):
    """What became of a calendar reply (iTIP REPLY) the functional mailbox received."""

    UEBERNOMMEN = "uebernommen", "übernommen"
    VERALTET = "veraltet", "veraltete Version"
    IGNORIERT = "ignoriert", "ignoriert"
    UNZUGEORDNET = "unzugeordnet", "nicht zugeordnet"
    ZUGEORDNET = "zugeordnet", "manuell zugeordnet"
    VERSPAETET = "verspaetet", "nach Ablauf der Antwortfrist"
    VERWORFEN = "verworfen", "verworfen"


# Replies a person looks at: no invitation found, or arrived after the answer deadline.
ReplyStatus.REVIEW = frozenset({ReplyStatus.UNZUGEORDNET, ReplyStatus.VERSPAETET})

# The answers of calendar programs (iCalendar PARTSTAT), as people read them.
PARTSTAT_LABELS = {
    "ACCEPTED": "Zusage",
    "DECLINED": "Absage",
    "TENTATIVE": "vorläufig",
    "DELEGATED": "weitergeleitet (gilt als Absage)",
    "NEEDS-ACTION": "noch keine Antwort",
}


class Event(db.Model):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place_name: Mapped[str] = mapped_column(String(200), default="")
    place_address: Mapped[str] = mapped_column(String(300), default="")
    room: Mapped[str] = mapped_column(String(100), default="")
    # The functional mailbox that sends invitations and receives calendar replies.
    organizer_email: Mapped[str] = mapped_column(String(254), default="")
    organizer_name: Mapped[str] = mapped_column(String(200), default="")
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Seats for persons (invitee + companions); None = unlimited.
    capacity: Mapped[int | None] = mapped_column(Integer)
    companions_allowed: Mapped[int] = mapped_column(Integer, default=0)
    ask_remarks: Mapped[bool] = mapped_column(default=True)
    ask_dietary: Mapped[bool] = mapped_column(default=False)
    state: Mapped[EventState] = mapped_column(state_column(EventState), default=EventState.ENTWURF, index=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    # Raised with every change a calendar shows (title, time, place, description) and on cancelling.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # Why the event was cancelled; told to the invited in the cancellation and on the answer page.
    cancel_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Automatic reminders (events/automation.py): days before the deadline (to those without an answer)
    # and before the start (to those who accepted); None = off.
    remind_open_days: Mapped[int | None] = mapped_column(Integer)
    remind_participants_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    invitations: Mapped[list[Invitation]] = relationship(back_populates="event", cascade="all, delete-orphan",
                                                         order_by="Invitation.id")

    @property
    def state_label(self) -> str:
        return EventState.label_of(self.state)

    @property
    def location(self) -> str:
        return ", ".join(part for part in (self.place_name, self.room, self.place_address) if part)


class Invitation(db.Model):
    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("event_id", "email", name="uq_invitations_event_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    # Copies, so that lists stay complete when a contact is deleted or anonymised; brought up to date
    # when the contact changes (mails always use the contact's data at the moment they are written).
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(254))
    organisation_name: Mapped[str] = mapped_column(String(200), default="")
    # secrets.token_urlsafe(32): 256 random bits; kept so that reminders can repeat the link.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[InvitationState] = mapped_column(state_column(InvitationState), default=InvitationState.OFFEN,
                                                   index=True)
    companions: Mapped[int] = mapped_column(Integer, default=0)
    remark: Mapped[str] = mapped_column(Text, default="")
    dietary: Mapped[str] = mapped_column(Text, default="")
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channel: Mapped[Channel | None] = mapped_column(state_column(Channel))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sequence_answered: Mapped[int | None] = mapped_column(Integer)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When an invitation mail was last queued for this person (whether it went out, the outbox knows).
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship(back_populates="invitations")

    @property
    def state_label(self) -> str:
        return InvitationState.label_of(self.state)

    @property
    def channel_label(self) -> str:
        return Channel.label_of(self.channel)

    @property
    def seats(self) -> int:
        return 1 + (self.companions or 0)


class CalendarReply(db.Model):
    """One iTIP REPLY seen in the functional mailbox; unmatched ones form the review list."""

    __tablename__ = "calendar_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    # RPLY-08: (UID, attendee, SEQUENCE, DTSTAMP) makes processing idempotent.
    key: Mapped[str] = mapped_column(String(500), unique=True)
    message_id: Mapped[str] = mapped_column(String(500), default="", index=True)
    from_email: Mapped[str] = mapped_column(String(254), default="")
    uid: Mapped[str] = mapped_column(String(255), default="", index=True)
    attendee_email: Mapped[str] = mapped_column(String(254), default="")
    attendee_name: Mapped[str] = mapped_column(String(300), default="")
    partstat: Mapped[str] = mapped_column(String(30), default="")
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    dtstamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ReplyStatus] = mapped_column(state_column(ReplyStatus), default=ReplyStatus.UNZUGEORDNET, index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def partstat_label(self) -> str:
        return PARTSTAT_LABELS.get(self.partstat, f"unbekannte Antwort ({self.partstat or 'leer'})")


class ReminderKind(LabelledEnum):
    """The two automatic reminders of an event."""

    OFFENE = "offene", "an alle ohne Antwort"
    TEILNEHMENDE = "teilnehmende", "an alle mit Zusage"


class AutomaticReminder(db.Model):
    """One automatic reminder that ran (events/automation.py); the unique key lets it run once only,
    however many workers look for due reminders at the same moment."""

    __tablename__ = "event_automatic_reminders"
    __table_args__ = (UniqueConstraint("event_id", "kind", name="uq_event_automatic_reminders_event_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ReminderKind] = mapped_column(state_column(ReminderKind))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_mailings.id", ondelete="SET NULL"))
    # Why nothing went out although people qualified (e.g. the mail template lacks the personal link).
    problem: Mapped[str] = mapped_column(Text, default="")
