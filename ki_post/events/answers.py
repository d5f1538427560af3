"""Answers and seats: the personal link, staff entries, capacity, waiting list and moving up."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import db
from .mails import _enqueue_for, _mailing, _start
from .models import CHANNELS, Event, Invitation

ANSWER_STATES = ("accepted", "declined", "tentative")


def invitation_by_token(token: str) -> Invitation:
    if not token or len(token) > 64:
        raise NotFound("Dieser Link ist ungültig.")
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.token == token).options(joinedload(Invitation.event))
    )
    if invitation is None:
        raise NotFound("Dieser Link ist ungültig.")
    return invitation


def deadline_passed(event: Event, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (event.deadline is not None and now > event.deadline) or now > event.end_at


def _lock_event(event_id: int) -> None:
    """Serialises all answers of one event so that seats are counted exactly once."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Event.id).where(Event.id == event_id).with_for_update())
    else:
        # SQLite has no row locks: a write takes the database's write lock (busy_timeout waits for it).
        db.session.execute(
            update(Event).where(Event.id == event_id).values(sequence=Event.sequence),
            execution_options={"synchronize_session": False},
        )


def seats_taken(event_id: int, exclude_id: int | None = None) -> int:
    query = select(func.coalesce(func.sum(1 + Invitation.companions), 0)).where(
        Invitation.event_id == event_id, Invitation.state == "accepted"
    )
    if exclude_id is not None:
        query = query.where(Invitation.id != exclude_id)
    return int(db.session.scalar(query) or 0)


@dataclass
class AnswerResult:
    state: str
    moved_up: list[Invitation] = field(default_factory=list)


def answer(invitation: Invitation, state: str, *, companions: int = 0, remark: str = "", dietary: str = "",
           channel: str = "link", sequence: int | None = None, notify: bool = True) -> AnswerResult:
    """Sets an answer. Acceptances beyond the capacity go to the waiting list; freed seats move people up."""
    if state not in ANSWER_STATES:
        raise ValidationError("Bitte wählen Sie Zusage oder Absage.", "answer")
    if channel not in CHANNELS:
        raise ValidationError("Unbekannter Antwortweg.", "channel")
    event = invitation.event
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist abgesagt.")
    if event.state != "published":
        raise ValidationError("Die Veranstaltung ist noch nicht veröffentlicht.")
    if channel == "link" and deadline_passed(event):
        raise ValidationError("Die Antwortfrist ist abgelaufen. Bitte wenden Sie sich an das Veranstaltungsteam.")
    try:
        companions = int(companions or 0)
    except (TypeError, ValueError):
        raise ValidationError("Die Zahl der Begleitpersonen muss eine ganze Zahl sein.", "companions") from None
    if state != "accepted":
        companions = 0
    if companions < 0 or companions > event.companions_allowed:
        raise ValidationError(
            f"Sie können höchstens {event.companions_allowed} Begleitperson(en) anmelden." if event.companions_allowed
            else "Begleitpersonen sind bei dieser Veranstaltung nicht vorgesehen.",
            "companions",
        )
    remark = (remark or "").replace("\r\n", "\n").strip()
    dietary = (dietary or "").replace("\r\n", "\n").strip()
    if len(remark) > 2000 or len(dietary) > 500:
        raise ValidationError("Die Bemerkung ist zu lang (höchstens 2.000 Zeichen).", "remark")

    _lock_event(event.id)
    db.session.refresh(invitation)  # the state as of the lock, not as of the page load
    previous = invitation.state
    new_state = state
    if state == "accepted" and event.capacity is not None:
        free = event.capacity - seats_taken(event.id, exclude_id=invitation.id)
        if 1 + companions > free:
            if previous == "accepted":
                raise ValidationError(
                    f"Für weitere Begleitpersonen ist kein Platz mehr frei (frei: {max(free - 1, 0)}).", "companions"
                )
            new_state = "waiting"
    now = utcnow()
    if new_state == "waiting" and previous != "waiting":
        invitation.waiting_since = now
    elif new_state != "waiting":
        invitation.waiting_since = None
    invitation.state = new_state
    invitation.companions = companions
    invitation.remark = remark
    invitation.dietary = dietary
    invitation.channel = channel
    invitation.answered_at = now
    invitation.sequence_answered = event.sequence if sequence is None else sequence
    db.session.flush()
    audit(f"antwort.{new_state}", invitation, event_id=event.id, begleitpersonen=companions, kanal=channel)
    moved = _move_up(event) if previous == "accepted" else []
    if notify and invitation.email:
        mailing = _mailing("bestaetigung", f"Bestätigung: {event.title}", event)
        _enqueue_for(mailing, "bestaetigung", event, invitation)
        _start(mailing)
    if moved:
        mailing = _mailing("nachruecker", f"Nachrücker: {event.title}", event)
        for person in moved:
            _enqueue_for(mailing, "nachruecker", event, person)
        _start(mailing)
    db.session.flush()
    return AnswerResult(new_state, moved)


def _move_up(event: Event) -> list[Invitation]:
    """First come, first served: stops at the first waiting person who does not fit."""
    waiting_query = select(Invitation).where(Invitation.event_id == event.id, Invitation.state == "waiting")
    waiting = list(db.session.scalars(waiting_query.order_by(Invitation.waiting_since, Invitation.id)))
    moved = []
    for person in waiting:
        if event.capacity is not None and seats_taken(event.id) + person.seats > event.capacity:
            break
        person.state = "accepted"
        person.waiting_since = None
        db.session.flush()
        audit("antwort.nachgerueckt", person, event_id=event.id)
        moved.append(person)
    return moved
