"""A message waiting in the outbox is a promise about the present: when the event, the answer or the
person it talks about changes, every message of the event that has not gone out is written anew or
withdrawn, and whoever may already have the old version gets an update saying what changed for them.

``supersede`` is the one place that applies this; it runs when an event changes or is cancelled,
when an answer changes, when a contact changes (``contacts_changed``) and when the outbox reports a
message back after a failure (``messages_returned``).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from ..db_types import utcnow
from ..extensions import db
from ..outbox import topics
from ..outbox.models import Mailing, OutboxMessage
from ..recipients.models import Contact
from ..outbox.signals import messages_returned
from ..recipients.signals import contacts_changed
from .delivery import Delivery, deliveries, kind_of
from .mails import (RECIPIENT_PROBLEMS, EventFacts, TemplateProblem, changes, invitation_id_of, problem_text, queue,
                    reachable, render)
from .models import Event, EventState, Invitation, InvitationState

log = logging.getLogger(__name__)
# A claim can beat a rewrite by a moment; the person's plan is then made again with that message in flight.
_ATTEMPTS = 3


@dataclass
class Superseded:
    rewritten: int = 0
    withdrawn: int = 0
    skipped: int = 0
    updates: list[int] = field(default_factory=list)  # invitation ids that got a new update mail


def _started(event: Event) -> bool:
    return utcnow() >= event.start_at


def _withdraw_reason(event: Event, kind: str) -> str:
    if event.state == EventState.ABGESAGT:
        return "Zurückgezogen: Die Veranstaltung ist abgesagt."
    if kind == "erinnerung":
        return "Zurückgezogen: Die Erinnerung passt nicht mehr (inzwischen beantwortet oder Veranstaltung begonnen)."
    if kind == "nachruecker":
        return "Zurückgezogen: Die Person hat inzwischen abgesagt."
    if kind == "aktualisierung":
        return "Zurückgezogen: Es gibt nichts mehr mitzuteilen (die Person kennt den aktuellen Stand oder erhält eine Einladung)."
    return "Zurückgezogen: durch eine neuere Nachricht derselben Art ersetzt."


def _plan_one(event: Event, invitation: Invitation, delivery: Delivery, result: Superseded,
              updates: Callable[[], Mailing] | None) -> bool:
    """Bring one person's unsent messages up to date. False if a worker claimed one meanwhile."""
    current = EventFacts.of(event)
    told = delivery.told
    erased = not reachable(invitation)
    seen_kinds: set[str] = set()
    for row in delivery.unsent:
        kind = kind_of(row)
        keep = kind not in seen_kinds  # one unsent mail of each kind is enough; it says what is true now
        if erased or (event.state == EventState.ABGESAGT and kind != "absage"):
            keep = False
        elif kind == "aktualisierung" and (told is None or not changes(told, current)):
            keep = False
        elif kind == "erinnerung":
            audience = tuple((row.facts or {}).get("audience") or (InvitationState.OFFEN,))
            keep = keep and invitation.state in audience and not _started(event)
        elif kind == "nachruecker":
            keep = keep and invitation.state == InvitationState.ZUGESAGT  # moved up, then declined before the mail left
        seen_kinds.add(kind)
        if not keep:
            reason = "Zurückgezogen: Die Person wurde gelöscht oder anonymisiert." if erased else _withdraw_reason(event, kind)
            if topics.withdraw_unsent([row.id], reason):
                result.withdrawn += 1
                continue
            return False
        audience = tuple((row.facts or {}).get("audience") or ()) if kind == "erinnerung" else ()
        try:
            mail = render(kind, event, invitation, told=told if kind == "aktualisierung" else None, audience=audience)
        except TemplateProblem:
            raise
        except RECIPIENT_PROBLEMS as error:
            if topics.skip_message(row.id, problem_text(error)):
                result.skipped += 1
                continue
            return False
        if mail.facts == row.facts and mail.to_name == row.to_name and mail.to_email == row.to_email and \
                mail.text == db.session.scalar(select(OutboxMessage.text).where(OutboxMessage.id == row.id)):
            continue  # says exactly this already (the text only read when nothing cheaper differs)
        try:
            done = topics.rewrite_message(row.id, to_email=mail.to_email, to_name=mail.to_name, subject=mail.subject,
                                          text=mail.text, html=mail.html, calendar=mail.calendar, facts=mail.facts,
                                          expires_at=mail.expires_at)
        except RECIPIENT_PROBLEMS as error:
            done = topics.skip_message(row.id, problem_text(error))
            if done:
                result.skipped += 1
                continue
        if not done:
            return False
        result.rewritten += 1
    if (updates is not None and event.state == EventState.VEROEFFENTLICHT and not erased and told is not None
            and changes(told, current) and "aktualisierung" not in seen_kinds):
        if queue(updates(), "aktualisierung", event, invitation, told=told) is not None:
            result.updates.append(invitation.id)
    return True


def supersede(event: Event, invitations: Iterable[Invitation] | None = None, *,
              updates: Callable[[], Mailing] | None = None) -> Superseded:
    """Make every unsent message of these invitations (default: all of the event) say what is true now.

    ``updates`` gives the mailing for new update mails; without it none are created (a contact's new
    name or a changed answer changes what waits, not what was said). The caller holds the event lock
    (``delivery.lock_event``) where other changes of the event may run at the same time.
    """
    chosen = list(event.invitations if invitations is None else invitations)
    result = Superseded()
    pending = chosen
    for _ in range(_ATTEMPTS):
        db.session.flush()
        current = deliveries(event) if invitations is None and pending is chosen else deliveries(event, pending)
        again = [invitation for invitation in pending
                 if not _plan_one(event, invitation, current.get(invitation.id, Delivery()), result, updates)]
        if not again:
            break
        pending = again
    else:
        log.warning("Veranstaltung %s: %s Einladung(en) wiederholt beansprucht, nicht alles neu erstellt",
                    event.id, len(pending))
    db.session.flush()
    return result


# --- Receivers --------------------------------------------------------------------------------------------

def _by_event(invitations: Iterable[Invitation]) -> dict[Event, list[Invitation]]:
    grouped: dict[Event, list[Invitation]] = defaultdict(list)
    for invitation in invitations:
        grouped[invitation.event].append(invitation)
    return grouped


def refresh_contacts(sender, contact_ids: Iterable[int] = (), **_) -> None:
    """A contact's name, organisation or address changed: lists show the new data, and what still waits
    for them is written anew (already sent mails stay as they were)."""
    ids = list(contact_ids)
    if not ids:
        return
    invitations = list(db.session.scalars(select(Invitation).where(Invitation.contact_id.in_(ids))))
    for invitation in invitations:
        contact = db.session.get(Contact, invitation.contact_id)
        if contact is None or contact.anonymised_at is not None:
            continue
        invitation.name = contact.full_name or invitation.name
        if contact.organisation is not None:
            invitation.organisation_name = contact.organisation.name
        email = (contact.email or "").strip().lower()
        if email and email != invitation.email and not any(
                other.email == email for other in invitation.event.invitations if other.id != invitation.id):
            invitation.email = email
    db.session.flush()
    for event, chosen in _by_event(invitations).items():
        supersede(event, chosen)


def refresh_returned(sender, message_ids: Iterable[int] = (), **_) -> None:
    """Messages came back from a failure or a person's retry: what they say, and what was planned after
    them (an update assuming they had arrived), is made true again."""
    topics_of = db.session.scalars(select(OutboxMessage.topic).where(OutboxMessage.id.in_(list(message_ids))))
    invitation_ids = {invitation_id_of(topic) for topic in topics_of} - {None}
    if invitation_ids:
        invitations = list(db.session.scalars(select(Invitation).where(Invitation.id.in_(invitation_ids))))
        for event, chosen in _by_event(invitations).items():
            supersede(event, chosen)


def connect_receivers() -> None:
    """Called once by the app factory (blinker keeps a receiver only once)."""
    contacts_changed.connect(refresh_contacts)
    messages_returned.connect(refresh_returned)
