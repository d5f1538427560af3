"""The events' part of a handover (``recipients.signals.contact_handed_over``): an officer said "Ich bin
nicht mehr zuständig" and the secretariat accepted her successor.

For every coming event (published, not over) where the predecessor has not answered yet, the successor
is invited through the normal invite service (his own link, his own calendar invitation), and whatever
still waits in the outbox for the predecessor about that event is withdrawn. An answer she already gave
stays hers: she may still come, and the secretariat sees it. Draft events only get the successor's
invitation row; their mails go out when the event is sent as always.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..auth.services import audit
from ..db_types import utcnow
from ..extensions import db
from ..outbox import topics
from ..outbox.models import MailingState, OutboxMessage
from ..recipients.models import Contact
from ..recipients.signals import contact_handed_over
from .delivery import delivery_of, lock_event
from .invitations import add_invitations, invite
from .mails import release
from .models import Event, EventState, Invitation, InvitationState


def hand_over(predecessor: Contact, successor: Contact) -> dict[str, int]:
    now = utcnow()
    open_invitations = list(db.session.scalars(
        select(Invitation).join(Event, Event.id == Invitation.event_id)
        .where(Invitation.contact_id == predecessor.id, Invitation.state == InvitationState.OFFEN,
               Event.state != EventState.ABGESAGT, Event.end_at > now)
        .order_by(Invitation.id)))
    invited = withdrawn = 0
    reason = f"Zurückgezogen: Die Zuständigkeit ist an {successor.full_name or successor.email} übergegangen."
    for invitation in open_invitations:
        event = invitation.event
        lock_event(event.id)
        unsent = [row.id for row in delivery_of(invitation).unsent]
        withdrawn += len(topics.withdraw_unsent(unsent, reason))
        if event.state == EventState.ENTWURF:
            add_invitations(event, [successor])
            continue
        result = invite(event, contact_ids=[successor.id])
        invited += result.invited
        if result.mailing_id is not None:
            _send_if_only_this(result.mailing_id)
        audit("veranstaltung.uebergeben", event, vorgaenger_id=predecessor.id, nachfolge_id=successor.id,
              eingeladen=result.invited, zurueckgezogen=len(unsent))
    return {"einladungen": invited, "zurueckgezogen": withdrawn}


def _send_if_only_this(mailing_id: int) -> None:
    """The successor's invitation goes out at once when the handover made its mailing; joined to a draft
    the secretariat is still preparing, it goes out with that draft."""
    from ..outbox.models import Mailing

    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None or mailing.state != MailingState.ENTWURF:
        return
    count = db.session.query(OutboxMessage.id).filter(OutboxMessage.mailing_id == mailing_id).count()
    if count == 1:
        release(mailing)


def _on_handed_over(sender: Any, *, predecessor: Contact, successor: Contact, **_: Any) -> dict[str, int]:
    return hand_over(predecessor, successor)


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contact_handed_over.connect(_on_handed_over)
