"""The events' part of erasing a person (``recipients.signals.contact_erasing``).

Invitations keep their row, state, companions, answer channel and date, so the counts of past events
stay right; name, address, remark, dietary note (possibly health data) and the free-text answers to the
event's own questions go (yes/no and choices stay, so that a workshop's seats stay right), and the personal
link stops working (a fresh random token nobody knows), as does the check-in code; whether the person came
stays. Walk-ins entered at the door with one of the person's addresses lose name and address. Calendar replies keep what they did (answer,
SEQUENCE, status) and lose address, name, comment and the reply mail's Message-ID; their
de-duplication key, which holds the address, is replaced by its hash.

Works on the models directly: the event services stay free of erasure code.
"""
from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ..extensions import db
from ..recipients.addresses import ANONYMISED_ADDRESS, ANONYMISED_DOMAIN, ANONYMISED_NAME, address_forms
from ..recipients.models import Contact
from ..recipients.signals import contact_erasing
from .models import CalendarReply, Invitation
from .questions import clear_text_answers

ERASED_KEY_PREFIX = "geloescht:"


def _forms(contact: Contact) -> set[str]:
    known = db.session.scalars(select(Invitation.email).where(Invitation.contact_id == contact.id))
    return address_forms([contact.email, *known])


def person_addresses(contact: Contact) -> set[str]:
    """The person's address forms (contact and the copies in invitations), lower case."""
    return _forms(contact)


def person_invitations(contact: Contact) -> ColumnElement[bool]:
    """Invitations of this person: by contact id, and copies that carry only one of their addresses."""
    own = Invitation.contact_id == contact.id
    forms = _forms(contact)
    if not forms:
        return own
    return or_(own, and_(Invitation.contact_id.is_(None), func.lower(Invitation.email).in_(sorted(forms))))


def person_replies(contact: Contact) -> ColumnElement[bool]:
    """Calendar replies to this person's invitations, and any reply sent from or naming one of their addresses."""
    invitation_ids = select(Invitation.id).where(person_invitations(contact)).scalar_subquery()
    forms = sorted(_forms(contact))
    conditions = [CalendarReply.invitation_id.in_(invitation_ids)]
    if forms:
        conditions += [func.lower(CalendarReply.attendee_email).in_(forms), func.lower(CalendarReply.from_email).in_(forms)]
    return or_(*conditions)


def erase_invitations(contact: Contact) -> dict[str, int]:
    """Scrub the person's invitations and calendar replies (see the module docstring); flushes."""
    db.session.flush()
    replies = list(db.session.scalars(select(CalendarReply).where(person_replies(contact))))
    invitations = list(db.session.scalars(select(Invitation).where(person_invitations(contact))))
    for reply in replies:
        if not reply.key.startswith(ERASED_KEY_PREFIX):
            reply.key = ERASED_KEY_PREFIX + hashlib.sha256(reply.key.encode()).hexdigest()
        reply.from_email = ""
        reply.attendee_email = ANONYMISED_ADDRESS
        reply.attendee_name = ""
        reply.comment = ""
        reply.message_id = ""
    for invitation in invitations:
        invitation.name = ANONYMISED_NAME
        # Unique per event, like every invitation's address.
        invitation.email = f"anonymisiert-{invitation.id}@{ANONYMISED_DOMAIN}"
        invitation.remark = ""
        invitation.dietary = ""
        clear_text_answers(invitation)
        invitation.token = secrets.token_urlsafe(32)
    walk_ins = erase_attendance(contact, [invitation.id for invitation in invitations])
    db.session.flush()
    return {"einladungen": len(invitations), "kalenderantworten": len(replies), "vor_ort": walk_ins}


def erase_attendance(contact: Contact, invitation_ids: list[int]) -> int:
    """The check-in codes of the person's invitations stop working (whether they came stays); walk-ins entered
    with one of their addresses lose name and address. Returns the number of walk-ins scrubbed."""
    from .attendance import Attendance

    if invitation_ids:
        for row in db.session.scalars(select(Attendance).where(Attendance.invitation_id.in_(invitation_ids))):
            row.token = None
    forms = sorted(_forms(contact))
    walk_ins = list(db.session.scalars(select(Attendance).where(
        Attendance.invitation_id.is_(None), func.lower(Attendance.email).in_(forms)))) if forms else []
    for row in walk_ins:
        row.name = ANONYMISED_NAME
        row.email = f"anonymisiert-vor-ort-{row.id}@{ANONYMISED_DOMAIN}"
    return len(walk_ins)


def _on_contact_erasing(sender: Any, *, contact: Contact, **_: Any) -> dict[str, int]:
    return erase_invitations(contact)


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contact_erasing.connect(_on_contact_erasing)
