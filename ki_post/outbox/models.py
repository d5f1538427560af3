"""Outbox tables: a mailing (Aussendung) holds one rendered message per recipient.

A message row holds exactly what will be sent (headers, bodies, calendar part; attachments by
sha256 in the blob store), so the preview is the truth and the archive shows what went out.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import db
from ..states import LabelledEnum, state_column
from .bounces import REPORT_KIND_LABELS, ReportKind


class MailingState(LabelledEnum):
    ENTWURF = "entwurf", "Entwurf"
    AKTIV = "aktiv", "wird gesendet"
    PAUSIERT = "pausiert", "pausiert"
    ABGEBROCHEN = "abgebrochen", "abgebrochen"


# A mailing whose messages may still go out once it runs (again).
MailingState.NOT_CANCELLED = frozenset({MailingState.ENTWURF, MailingState.AKTIV, MailingState.PAUSIERT})
# Released: its waiting messages go out now, or when it is resumed.
MailingState.RELEASED = frozenset({MailingState.AKTIV, MailingState.PAUSIERT})


class MessageState(LabelledEnum):
    """Where one message stands (also the lines of ``outbox status``)."""

    WARTEND = "wartend", "wartend"
    IN_ARBEIT = "in_arbeit", "in Arbeit"
    GESENDET = "gesendet", "gesendet"
    FEHLGESCHLAGEN = "fehlgeschlagen", "fehlgeschlagen"
    UNKLAR = "unklar", "unklar"
    ABGEBROCHEN = "abgebrochen", "abgebrochen"
    # Superseded before it went out (event cancelled, person erased …): never sent, counted apart
    # from "abgebrochen" (a person stopped the mailing) because nobody decided against this mail.
    ZURUECKGEZOGEN = "zurueckgezogen", "zurückgezogen"
    # Never built: a problem with this one recipient (address, data, letter) that must not block the
    # others; ``server_reply`` holds the German reason.
    UEBERSPRUNGEN = "uebersprungen", "übersprungen"
    # Sent, but a delivery status notification said it will never arrive (5.x.x): the server's words
    # are in ``server_reply``, the report in ``outbox_bounces``. In none of the groups below: it went
    # out, and nobody has it.
    UNZUSTELLBAR = "unzustellbar", "unzustellbar"


# Still to be sent by a worker (waiting, or claimed and on its way).
MessageState.LEFT_TO_SEND = frozenset({MessageState.WARTEND, MessageState.IN_ARBEIT})
# Not claimed by any worker: may still change or be withdrawn (failed ones wait for a person's retry).
MessageState.UNSENT = frozenset({MessageState.WARTEND, MessageState.FEHLGESCHLAGEN})
# Claimed, sent or in doubt: the recipient may have it.
MessageState.MAY_HAVE_ARRIVED = frozenset({MessageState.IN_ARBEIT, MessageState.GESENDET, MessageState.UNKLAR})
# Will never go out (unless a person sends it again as a new message).
MessageState.GONE = frozenset({MessageState.ZURUECKGEZOGEN, MessageState.UEBERSPRUNGEN, MessageState.ABGEBROCHEN})
# A person decides: send again or record as sent.
MessageState.NEEDS_DECISION = frozenset({MessageState.UNKLAR, MessageState.FEHLGESCHLAGEN})


class MailingKind(LabelledEnum):
    RUNDSCHREIBEN = "rundschreiben", "Rundschreiben"
    EINLADUNG = "einladung", "Einladung"
    AKTUALISIERUNG = "aktualisierung", "Aktualisierung"
    ABSAGE = "absage", "Absage"
    ERINNERUNG = "erinnerung", "Erinnerung"
    BESTAETIGUNG = "bestaetigung", "Bestätigung"
    NACHRUECKER = "nachruecker", "Nachrücker"
    TESTVERSAND = "testversand", "Testversand"
    ALLGEMEIN = "allgemein", "Mitteilung"


class Mailing(db.Model):
    """An Aussendung: what × to whom; its messages are sent once it is ``aktiv``."""

    __tablename__ = "outbox_mailings"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MailingKind] = mapped_column(state_column(MailingKind, length=30), index=True)
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[MailingState] = mapped_column(state_column(MailingState), default=MailingState.ENTWURF, index=True)
    # Why the mailing is paused (by a person or by itself after failures in a row).
    pause_reason: Mapped[str] = mapped_column(Text, default="")
    failures_in_a_row: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Plain integer: the events package owns its table; the outbox must not depend on it.
    event_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    messages: Mapped[list[OutboxMessage]] = relationship(back_populates="mailing", order_by="OutboxMessage.id")

    @property
    def state_label(self) -> str:
        return self.state_label_for()

    def state_label_for(self, counts: Mapping[str, int] | None = None) -> str:
        """The German state; a released mailing with nothing left to send reads "abgeschlossen".

        Derived from the messages rather than stored, so no worker or migration has to set it and a
        retry of failed messages turns it back into "wird gesendet" by itself. Pages that already
        hold the counts per state (lists, progress) pass them instead of a query per mailing.
        """
        if self.state == MailingState.AKTIV and self.id is not None:
            if counts is not None:
                left = sum(counts.get(state, 0) for state in MessageState.LEFT_TO_SEND)
            else:
                left = db.session.scalar(select(OutboxMessage.id).where(
                    OutboxMessage.mailing_id == self.id, OutboxMessage.state.in_(MessageState.LEFT_TO_SEND)).limit(1))
            if not left:
                return "abgeschlossen"
        return MailingState.label_of(self.state)

    @property
    def kind_label(self) -> str:
        return MailingKind.label_of(self.kind)


class OutboxMessage(db.Model):
    """One rendered mail to one recipient."""

    __tablename__ = "outbox_messages"
    # Due rows in claim order: the worker's "next due" lookup stops at the first match. It also serves
    # every lookup by state. No separate index on state or claimed_by: with statistics taken while
    # the table held no waiting rows, PostgreSQL's generic plans picked those indexes and scanned
    # every row a worker had ever claimed, for each message.
    __table_args__ = (Index("ix_outbox_messages_due", "state", "next_attempt_at", "id"),
                      Index("ix_outbox_messages_topic", "topic", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("outbox_mailings.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    # Headers, fixed at enqueue.
    from_header: Mapped[str] = mapped_column(String(400))
    reply_to: Mapped[str] = mapped_column(String(400), default="")
    to_email: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    # Sent as header X-KI-Post-Nachricht: finds the message from a bounce whose Message-ID was rewritten
    # on the way. Random, never the row id (a forged report must not be able to name any message).
    bounce_token: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    # Set at enqueue (for the preview) and again by the worker's claim: the moment of sending.
    date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bodies.
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    calendar_method: Mapped[str | None] = mapped_column(String(20))
    calendar_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    # What the message is about for this one recipient, named by the package that queued it (e.g. one
    # invitation). Messages with the same topic go out one after another, in the order they were
    # queued: a cancellation never overtakes the invitation still in flight. Opaque to the outbox.
    topic: Mapped[str | None] = mapped_column(String(100))
    # What the message tells, as the queueing package described it (JSON), so that it can later say
    # what a recipient was last told without the outbox understanding a word of it.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Bumped whenever the content is written anew before it went out: a worker claims a message only
    # with the revision whose bytes it built, never stale bytes read ahead before the rewrite.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Not sent after this moment (withdrawn instead), e.g. a reminder once the event has begun.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Delivery.
    state: Mapped[MessageState] = mapped_column(state_column(MessageState), default=MessageState.WARTEND)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The server's words of the last attempt ("550 5.1.1 User unknown"), shown per recipient.
    server_reply: Mapped[str] = mapped_column(Text, default="")
    # Set when the file transport wrote it instead of SMTP: not sent.
    eml_file: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    mailing: Mapped[Mailing] = relationship(back_populates="messages")
    attachments: Mapped[list[OutboxAttachment]] = relationship(
        order_by="OutboxAttachment.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def state_label(self) -> str:
        if self.state == MessageState.GESENDET and self.eml_file:
            return "nicht versendet (als Datei abgelegt)"  # no SMTP server configured
        return MessageState.label_of(self.state)


class OutboxAttachment(db.Model):
    """A file attached to a message; the bytes live once in the blob store."""

    __tablename__ = "outbox_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(255))
    mimetype: Mapped[str] = mapped_column(String(120))
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    size: Mapped[int] = mapped_column(Integer, default=0)


class OutboxBounce(db.Model):
    """A report about a sent message read from the functional mailbox: a bounce (permanent or temporary,
    per failed recipient) or an automatic reply (recorded, nothing changes). ``message_id`` is None when
    no sent message matched; ``note`` says why (German)."""

    __tablename__ = "outbox_bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 of the report's Message-ID (or its bytes) and the recipient: the same report read twice
    # (IMAP poll and file upload, or a poll interrupted before marking it read) is recorded once.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # bounces.ReportKind
    source: Mapped[str] = mapped_column(String(60), default="")  # which mail system wrote it
    recipient: Mapped[str] = mapped_column(String(254), default="")
    status: Mapped[str] = mapped_column(String(20), default="")  # "5.1.1"
    diagnostic: Mapped[str] = mapped_column(Text, default="")  # the server's words
    matched_by: Mapped[str] = mapped_column(String(20), default="")  # message_id, token, recipient, ""
    note: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def kind_label(self) -> str:
        try:
            return REPORT_KIND_LABELS[ReportKind(self.kind)]
        except ValueError:
            return self.kind


class OutboxWorker(db.Model):
    """A running worker's heartbeat: rows claimed by a worker that stopped beating become ``unklar``."""

    __tablename__ = "outbox_workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
