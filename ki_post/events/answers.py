"""Answers and seats: the personal link, calendar replies, staff entries, capacity, waiting list and
moving up. One deadline rule holds for every channel; staff may override it explicitly."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..formatting import anzahl
from .attendance import fit_code
from .delivery import delivery_of, lock_event
from .mails import queue_running, reachable
from .models import Channel, Event, EventState, Invitation, InvitationState
from .questions import check_option_seats, fits_options, questions_of, validate_responses
from .superseding import supersede

ANSWER_STATES = InvitationState.ANSWERS


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
    """The one deadline rule for every channel: after the answer deadline, or once the event is over."""
    now = now or utcnow()
    return (event.deadline is not None and now > event.deadline) or now > event.end_at


def seats_taken(event_id: int, exclude_id: int | None = None) -> int:
    query = select(func.coalesce(func.sum(1 + Invitation.companions), 0)).where(
        Invitation.event_id == event_id, Invitation.state == InvitationState.ZUGESAGT
    )
    if exclude_id is not None:
        query = query.where(Invitation.id != exclude_id)
    return int(db.session.scalar(query) or 0)


@dataclass
class AnswerResult:
    state: InvitationState
    moved_up: list[Invitation] = field(default_factory=list)
    changed: bool = True  # False: the same answer again (no second confirmation)
    previous: InvitationState | None = None  # the state before (a change within the same state: new details)


def answer(invitation: Invitation, state: str, *, companions: int = 0, remark: str = "", dietary: str = "",
           channel: Channel | str = Channel.LINK, sequence: int | None = None, notify: bool = True,
           override_deadline: bool = False, responses: Mapping[int, list[str]] | None = None,
           keep_unanswered: bool = False) -> AnswerResult:
    """Sets an answer. Acceptances beyond the capacity go to the waiting list; freed seats move people up.

    A confirmation goes out only when something the person said changed: the answer, the number of
    companions, an answer to the event's questions, the remark or the dietary wishes; one still waiting
    in the outbox is written anew instead of adding a second. ``override_deadline``: a staff
    member records an answer after the deadline on purpose (never for the personal link).
    ``responses``: the form values for the event's own questions (None: their answers stay as they are);
    ``keep_unanswered``: a question left empty keeps the earlier answer (see ``questions.validate_responses``).
    """
    state = InvitationState.FORMER_CODES.get(state, state)  # a form loaded before the codes became German
    if state not in InvitationState.ANSWERS:
        raise ValidationError("Bitte wählen Sie Zusage oder Absage.", "answer")
    event = invitation.event
    _check_answerable(event, channel, override_deadline)
    companions = _companions(event, state, companions)
    remark = (remark or "").replace("\r\n", "\n").strip()
    dietary = (dietary or "").replace("\r\n", "\n").strip()
    if len(remark) > 2000 or len(dietary) > 500:
        raise ValidationError("Die Bemerkung ist zu lang (höchstens 2.000 Zeichen).", "remark")

    lock_event(event.id)
    db.session.refresh(invitation)  # the state as of the lock, not as of the page load
    previous, previous_companions = invitation.state, invitation.companions
    previous_answers = dict(invitation.answers or {})
    new_answers = previous_answers if responses is None else validate_responses(
        questions_of(event.id), responses, accepting=state == InvitationState.ZUGESAGT, previous=previous_answers,
        keep_unanswered=keep_unanswered)
    new_state = _seat_state(event, invitation, InvitationState(state), companions, previous)
    if new_state == InvitationState.ZUGESAGT:  # only a Zusage holds an option's seat
        check_option_seats(invitation, new_answers, 1 + companions, previous_state=previous,
                           previous_answers=previous_answers, previous_seats=invitation.seats)
    now = utcnow()
    if new_state == InvitationState.WARTELISTE and previous != InvitationState.WARTELISTE:
        invitation.waiting_since = now
    elif new_state != InvitationState.WARTELISTE:
        invitation.waiting_since = None
    changed = ((new_state, companions, new_answers, remark, dietary)
               != (previous, previous_companions, previous_answers, invitation.remark or "", invitation.dietary or ""))
    invitation.state = new_state
    invitation.companions = companions
    invitation.remark = remark
    invitation.dietary = dietary
    if new_answers != previous_answers:
        invitation.answers = new_answers
    invitation.channel = Channel(channel)
    invitation.answered_at = now
    invitation.sequence_answered = event.sequence if sequence is None else sequence
    db.session.flush()
    audit(f"antwort.{new_state}", invitation, event_id=event.id, begleitpersonen=companions, kanal=channel,
          geaendert=changed)
    moved = _move_up(event) if previous == InvitationState.ZUGESAGT else []
    supersede(event, [invitation, *moved])  # what waits for them (reminder, confirmation) says the new answer
    waiting = delivery_of(invitation).unsent_of("bestaetigung")
    fit_code(invitation, waiting)  # the check-in code goes with a Zusage, also in a confirmation rewritten above
    if changed and notify and reachable(invitation) and not waiting:
        queue_running("bestaetigung", event, invitation)
    _notify_moved(event, moved)
    db.session.flush()
    return AnswerResult(new_state, moved, changed, InvitationState(previous) if previous else None)


def _check_answerable(event: Event, channel: Channel | str, override_deadline: bool) -> None:
    """The event takes answers on this channel now (published, not cancelled, deadline unless staff override)."""
    if not Channel.parse(channel):
        raise ValidationError("Unbekannter Antwortweg.", "channel")
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt.")
    if event.state != EventState.VEROEFFENTLICHT:
        raise ValidationError("Die Veranstaltung ist noch nicht veröffentlicht.")
    if deadline_passed(event) and not (override_deadline and channel in Channel.STAFF):
        if channel == Channel.LINK:
            raise ValidationError("Die Antwortfrist ist abgelaufen. Bitte wenden Sie sich an das Veranstaltungsteam.")
        raise ValidationError("Die Antwortfrist ist abgelaufen. Um die Antwort trotzdem zu übernehmen, bestätigen Sie "
                              "bitte „Trotz abgelaufener Frist übernehmen“.", "override_deadline")


def _companions(event: Event, state: str, value: Any) -> int:
    """The number of companions as given (0 unless accepting), within what the event allows."""
    try:
        companions = int(value or 0)
    except (TypeError, ValueError):
        raise ValidationError("Die Zahl der Begleitpersonen muss eine ganze Zahl sein.", "companions") from None
    if state != InvitationState.ZUGESAGT:
        return 0
    if companions < 0 or companions > event.companions_allowed:
        raise ValidationError(
            f"Sie können höchstens {anzahl(event.companions_allowed, 'Begleitperson', 'Begleitpersonen')} anmelden."
            if event.companions_allowed
            else "Begleitpersonen sind bei dieser Veranstaltung nicht vorgesehen.",
            "companions",
        )
    return companions


def _seat_state(event: Event, invitation: Invitation, state: InvitationState, companions: int,
                previous: str | None) -> InvitationState:
    """A Zusage beyond the free seats goes to the waiting list; someone already in may not add companions
    beyond them. Under the event lock."""
    if state != InvitationState.ZUGESAGT or event.capacity is None:
        return state
    free = event.capacity - seats_taken(event.id, exclude_id=invitation.id)
    if 1 + companions <= free:
        return state
    if previous == InvitationState.ZUGESAGT:
        raise ValidationError(f"Für weitere Begleitpersonen ist kein Platz mehr frei (frei: {max(free - 1, 0)}).",
                              "companions")
    return InvitationState.WARTELISTE


def _notify_moved(event: Event, moved: list[Invitation]) -> None:
    for person in moved:
        if reachable(person) and not delivery_of(person).unsent_of("nachruecker"):
            queue_running("nachruecker", event, person)


def _move_up(event: Event) -> list[Invitation]:
    """First come, first served: stops at the first waiting person who does not fit; one whose chosen
    option (workshop) is full is passed over and keeps waiting."""
    waiting_query = select(Invitation).where(Invitation.event_id == event.id, Invitation.state == InvitationState.WARTELISTE)
    waiting = list(db.session.scalars(waiting_query.order_by(Invitation.waiting_since, Invitation.id)))
    moved = []
    for person in waiting:
        if event.capacity is not None and seats_taken(event.id) + person.seats > event.capacity:
            break
        if not fits_options(person):
            continue  # their workshop is full: they keep waiting, the next one may fit
        person.state = InvitationState.ZUGESAGT
        person.waiting_since = None
        db.session.flush()
        audit("antwort.nachgerueckt", person, event_id=event.id)
        moved.append(person)
    return moved


def move_up_and_notify(event: Event) -> list[Invitation]:
    """After more seats: the waiting list moves up, and those who got a seat are told."""
    moved = _move_up(event)
    if moved:
        supersede(event, moved)
        _notify_moved(event, moved)
    return moved
