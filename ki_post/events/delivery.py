"""What each invited person was told, derived from the outbox (which knows nothing of events): the
facts each queued message recorded, and where each message stands.

- *told*: the last calendar version (REQUEST) that may have reached the person: claimed, sent or in
  doubt. Updates compare with it; a person never told gets a plain invitation instead.
- *may have the event*: such a REQUEST exists. Exactly these people get a cancellation.
- *invitation went out*: a REQUEST was sent. Only these people get reminders.
- *unsent*: messages nobody claimed yet; they are rewritten or withdrawn when things change.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update

from ..extensions import db
from ..outbox.models import Mailing, MessageState, OutboxMessage
from ..outbox.topics import TopicMessage, topic_messages
from .mails import EventFacts, invitation_id_of, topic_for
from .models import Event, Invitation


@dataclass
class Delivery:
    told: EventFacts | None = None
    told_sequence: int | None = None
    may_have_event: bool = False
    went_out: bool = False
    # Outbox state of the newest invitation or update (for the event page), None before any.
    request_state: str | None = None
    unsent: list[TopicMessage] = field(default_factory=list)

    @property
    def request_label(self) -> str:
        return MessageState.label_of(self.request_state, "keine Einladung") if self.request_state else "keine Einladung"

    def unsent_of(self, kind: str) -> list[TopicMessage]:
        return [row for row in self.unsent if kind_of(row) == kind]


def kind_of(row: TopicMessage) -> str:
    return (row.facts or {}).get("kind") or row.mailing_kind


def deliveries(event: Event, invitations: Iterable[Invitation] | None = None) -> dict[int, Delivery]:
    """One query for all (or the given) invitations of ``event``."""
    condition = Mailing.event_id == event.id
    wanted = None
    if invitations is not None:
        wanted = {invitation.id for invitation in invitations}
        condition = OutboxMessage.topic.in_([topic_for(invitation) for invitation in invitations])
    result: dict[int, Delivery] = {}
    for row in topic_messages(condition):
        invitation_id = invitation_id_of(row.topic)
        if invitation_id is None or (wanted is not None and invitation_id not in wanted):
            continue
        delivery = result.setdefault(invitation_id, Delivery())
        if row.state in MessageState.UNSENT:
            delivery.unsent.append(row)
        if row.calendar_method != "REQUEST":
            continue
        delivery.request_state = row.state
        if row.state in MessageState.MAY_HAVE_ARRIVED:
            delivery.may_have_event = True
            facts = EventFacts.from_json(row.facts)
            if facts is not None:
                delivery.told = facts
                delivery.told_sequence = int((row.facts or {}).get("sequence", 0))
        if row.state == MessageState.GESENDET:
            delivery.went_out = True
    return result


def delivery_of(invitation: Invitation) -> Delivery:
    return deliveries(invitation.event, [invitation]).get(invitation.id, Delivery())


def lock_event(event_id: int) -> None:
    """Serialises everything that changes one event's invitations and their mails (answers, seats,
    changes, cancelling), so that each decides on what the others committed."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Event.id).where(Event.id == event_id).with_for_update())
    else:
        # SQLite has no row locks: a write takes the database's write lock (busy_timeout waits for it).
        db.session.execute(
            update(Event).where(Event.id == event_id).values(sequence=Event.sequence),
            execution_options={"synchronize_session": False},
        )
