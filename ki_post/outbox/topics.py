"""Messages that have not gone out yet are still a promise that can change: rewrite, skip or withdraw
them, and read back what was told on a topic.

The outbox does not understand topics or facts (the package that queued the messages does); it only
keeps the rules that make changing them safe:

- Only messages nobody has claimed (``UNSENT``: waiting, or failed and waiting for a person's retry)
  are changed, each with a conditional UPDATE. A message a worker claimed meanwhile is on its way as
  it was; the functions return False for it, and the caller decides what that person needs now.
- A rewrite bumps ``revision``: a worker that built the old bytes ahead of its claim no longer
  claims them (its claim names the revision it built).
- ``topic_messages`` reads what was queued on topics, so that the queueing package can derive from
  the ``facts`` it stored what a recipient may have been told (``MAY_HAVE_ARRIVED``).

None of these functions commits; the caller commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update

from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from .models import Mailing, MessageState, OutboxMessage
from .services import CalendarPart, _calendar_method, _check_address, _check_header

# The groups of message states these rules use (see ``MessageState``).
UNSENT = MessageState.UNSENT
MAY_HAVE_ARRIVED = MessageState.MAY_HAVE_ARRIVED
GONE = MessageState.GONE


@dataclass(frozen=True)
class TopicMessage:
    """One queued message as the queueing package needs it: where it stands and what it said."""

    id: int
    topic: str
    mailing_id: int
    mailing_kind: str
    mailing_state: str
    state: str
    calendar_method: str | None
    facts: dict[str, Any] | None
    revision: int
    to_email: str
    to_name: str


def topic_messages(condition: Any) -> list[TopicMessage]:
    """Messages with a topic matching ``condition`` (an SQL expression on OutboxMessage or Mailing), in
    the order they were queued."""
    m = OutboxMessage
    rows = db.session.execute(
        select(m.id, m.topic, m.mailing_id, Mailing.kind, Mailing.state, m.state, m.calendar_method, m.facts,
               m.revision, m.to_email, m.to_name)
        .join(Mailing, Mailing.id == m.mailing_id)
        .where(m.topic.is_not(None), condition)
        .order_by(m.id)
    )
    return [TopicMessage(*row) for row in rows]


def _forget_loaded(message_ids: Iterable[int]) -> None:
    """Loaded ORM copies of rows changed by a Core UPDATE would show the old content until expired."""
    wanted = set(message_ids)
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, OutboxMessage) and obj.id in wanted:
            db.session.expire(obj)


def rewrite_message(message_id: int, *, to_email: str, to_name: str, subject: str, text: str, html: str | None,
                    calendar: CalendarPart | None, facts: dict[str, Any] | None,
                    expires_at: datetime | None = None) -> bool:
    """Write a message that has not gone out anew (what it says now; attachments stay). Returns
    False if a worker claimed it meanwhile. Raises ``ValidationError`` like ``enqueue`` for content that
    cannot be sent (the caller then skips this recipient with ``skip_message``)."""
    to_email = _check_address(to_email)
    to_name = _check_header((to_name or "").strip(), "Der Name des Empfängers", "to_name")
    subject = _check_header((subject or "").strip(), "Der Betreff", "subject")
    if not subject or not (text or "").strip():
        raise ValidationError("Die Nachricht braucht Betreff und Text.", "text")
    method = _calendar_method(calendar)
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.state.in_(UNSENT))
        .values(to_email=to_email, to_name=to_name, subject=subject, text=text, html=html, calendar_method=method,
                calendar_data=calendar.data if calendar is not None else None, facts=facts, expires_at=expires_at,
                date=utcnow().replace(microsecond=0), revision=OutboxMessage.revision + 1),
        execution_options={"synchronize_session": False},
    )
    _forget_loaded([message_id])
    return result.rowcount == 1


def skip_message(message_id: int, reason: str) -> bool:
    """A message that has not gone out and can no longer be built for its recipient (e.g. the address
    became invalid): never sent, shown with ``reason``. False if a worker claimed it meanwhile."""
    result = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.state.in_(UNSENT))
        .values(state=MessageState.UEBERSPRUNGEN, server_reply=reason, revision=OutboxMessage.revision + 1),
        execution_options={"synchronize_session": False},
    )
    _forget_loaded([message_id])
    return result.rowcount == 1


def withdraw_unsent(message_ids: Iterable[int], reason: str) -> list[int]:
    """Withdraw these messages if nobody claimed them (waiting, or failed and only waiting for a
    person's retry, which must not send them anymore either). Returns the ids withdrawn."""
    ids = list(message_ids)
    if not ids:
        return []
    withdrawn = list(db.session.scalars(
        update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.state.in_(UNSENT))
        .values(state=MessageState.ZURUECKGEZOGEN, server_reply=reason, revision=OutboxMessage.revision + 1)
        .returning(OutboxMessage.id),
        execution_options={"synchronize_session": False},
    ))
    _forget_loaded(ids)
    return withdrawn


def overtaken(message: OutboxMessage) -> bool:
    """Whether a later calendar message on the same topic (an update or cancellation) was queued and not
    given up: sending this older one again would put an outdated version after it."""
    if message.topic is None:
        return False
    later = OutboxMessage.__table__.alias("later")
    return bool(db.session.scalar(select(exists().where(
        later.c.topic == message.topic, later.c.id > message.id, later.c.calendar_method.is_not(None),
        later.c.state.not_in(GONE)))))
