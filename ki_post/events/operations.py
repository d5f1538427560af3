"""Event operations: create, change, publish, cancel. Functions flush, never commit; callers commit.

Changing or cancelling an event makes every mail of it that has not gone out true again at once
(``superseding``); what goes to people who may already have the event (an update, a cancellation)
is prepared as a draft mailing to check and send in the Postausgang, or sent at once with ``start``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..auth.services import audit
from .. import settings
from ..formatting import BERLIN
from ..db_types import utcnow
from ..errors import NotFound, ValidationError
from ..extensions import db
from . import ical
from .answers import move_up_and_notify
from .delivery import deliveries, lock_event
from .mails import draft_mailing, queue, reachable, release
from .models import Event, EventState
from .superseding import supersede

MAX_COMPANIONS = 20


# (nominative, accusative) for the messages "Der Beginn ist …" and "Bitte geben Sie den Beginn an."
_TIME_LABELS = {"start": ("Der Beginn", "den Beginn"), "end": ("Das Ende", "das Ende"),
                "deadline": ("Die Antwortfrist", "die Antwortfrist")}


def parse_local(value: str | datetime | None, field_name: str, *, required: bool = True) -> datetime | None:
    """'2017-02-08T11:00', '08.02.2017 11:00' or a datetime, read as Europe/Berlin, returned UTC."""
    nominative, accusative = _TIME_LABELS[field_name]
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"Bitte geben Sie {accusative} an.", field_name)
        return None
    if isinstance(value, datetime):
        local = value
    else:
        text = value.strip()
        local = None
        for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M", "%d.%m.%Y, %H:%M", "%Y-%m-%dT%H:%M:%S"):
            try:
                local = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if local is None:
            raise ValidationError(f"{nominative} ist kein gültiger Zeitpunkt "
                                  "(Beispiel: 2017-02-08T11:00 oder 08.02.2017 11:00).", field_name)
    if local.tzinfo is None:
        local = local.replace(tzinfo=BERLIN)
    utc = local.astimezone(timezone.utc)
    # zoneinfo silently shifts a wall-clock time inside the spring gap by an hour; say so instead.
    if local.tzinfo is BERLIN and utc.astimezone(BERLIN).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValidationError(f"Die Uhrzeit {local:%H:%M} Uhr gibt es am {local:%d.%m.%Y} nicht: An diesem Tag wird die Uhr "
                              "für die Sommerzeit eine Stunde vorgestellt (Zeitumstellung). "
                              f"Bitte wählen Sie für {accusative} eine andere Uhrzeit.", field_name)
    return utc


@dataclass
class EventData:
    title: str
    start: str | datetime
    end: str | datetime
    place_name: str = ""
    place_address: str = ""
    room: str = ""
    description: str = ""
    deadline: str | datetime | None = None
    capacity: int | None = None
    companions_allowed: int = 0
    ask_remarks: bool = True
    ask_dietary: bool = False


def _clean(value: str | None, limit: int, field_name: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationError(f"{label} darf höchstens {limit} Zeichen lang sein.", field_name)
    return value


def _validated(data: EventData) -> dict[str, Any]:
    title = _clean(data.title, 200, "title", "Der Titel")
    if not title:
        raise ValidationError("Bitte geben Sie einen Titel an.", "title")
    if "\n" in title or "\r" in title:
        raise ValidationError("Der Titel darf keinen Zeilenumbruch enthalten.", "title")
    start = parse_local(data.start, "start")
    end = parse_local(data.end, "end")
    if end <= start:
        raise ValidationError("Das Ende muss nach dem Beginn liegen.", "end")
    deadline = parse_local(data.deadline, "deadline", required=False)
    if deadline and deadline > end:
        raise ValidationError("Die Antwortfrist muss vor dem Ende der Veranstaltung liegen.", "deadline")
    capacity = data.capacity
    if capacity is not None and (capacity < 1 or capacity > 100000):
        raise ValidationError("Die Zahl der Plätze muss zwischen 1 und 100.000 liegen (leer = unbegrenzt).", "capacity")
    companions = int(data.companions_allowed or 0)
    if companions < 0 or companions > MAX_COMPANIONS:
        raise ValidationError(f"Begleitpersonen: 0 bis {MAX_COMPANIONS}.", "companions_allowed")
    return {
        "title": title,
        "start_at": start,
        "end_at": end,
        "place_name": _clean(data.place_name, 200, "place_name", "Der Ort"),
        "place_address": _clean(data.place_address, 300, "place_address", "Die Anschrift"),
        "room": _clean(data.room, 100, "room", "Der Raum"),
        "description": _clean(data.description, 10000, "description", "Die Beschreibung"),
        "deadline": deadline,
        "capacity": capacity,
        "companions_allowed": companions,
        "ask_remarks": bool(data.ask_remarks),
        "ask_dietary": bool(data.ask_dietary),
    }


def create_event(data: EventData) -> Event:
    values = _validated(data)
    settings.refresh()  # the functional mailbox as set in Verwaltung → Einstellungen, also from the CLI
    organizer_email, organizer_name = ical.organizer_from_sender(current_app.config["MAIL_DEFAULT_SENDER"])
    event = Event(**values, organizer_email=organizer_email, organizer_name=organizer_name, uid=ical.new_uid(), sequence=0)
    db.session.add(event)
    db.session.flush()
    audit("veranstaltung.angelegt", event)
    return event


def event_data(event: Event) -> EventData:
    """The event as it is, to change single fields with ``dataclasses.replace``."""
    return EventData(title=event.title, start=event.start_at, end=event.end_at, place_name=event.place_name,
                     place_address=event.place_address, room=event.room, description=event.description,
                     deadline=event.deadline, capacity=event.capacity, companions_allowed=event.companions_allowed,
                     ask_remarks=event.ask_remarks, ask_dietary=event.ask_dietary)


# What an invited person's calendar shows: a change raises SEQUENCE and may need an update mail.
CALENDAR_FIELDS = {"title": "Titel", "start_at": "Beginn", "end_at": "Ende", "place_name": "Ort",
                   "place_address": "Anschrift", "room": "Raum", "description": "Beschreibung"}


@dataclass
class UpdateResult:
    changed: list[str] = field(default_factory=list)  # German names of what changed in the calendar
    rewritten: int = 0  # unsent mails written anew
    withdrawn: int = 0
    skipped: int = 0
    updates: int = 0  # update mails for people who may have the old version
    mailing_id: int | None = None  # the (draft) mailing holding the updates
    moved_up: int = 0


def update_event(event: Event, data: EventData, *, created_by_id: int | None = None, start: bool = False) -> UpdateResult:
    """Change an event. Every unsent mail of it is written anew at once; everyone who may have an
    older version gets an update saying what changed for them (in a draft mailing, or sent with ``start``)."""
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Eine abgesagte Veranstaltung kann nicht mehr geändert werden.")
    values = _validated(data)
    lock_event(event.id)
    changed = [label for name, label in CALENDAR_FIELDS.items() if getattr(event, name) != values[name]]
    more_seats = event.capacity is not None and (values["capacity"] is None or values["capacity"] > event.capacity)
    for name, value in values.items():
        setattr(event, name, value)
    if changed:
        event.sequence += 1
    db.session.flush()
    mailing = None

    def updates():
        nonlocal mailing
        mailing = mailing or draft_mailing(event, "aktualisierung", created_by_id)
        return mailing

    outcome = supersede(event, updates=updates)
    result = UpdateResult(changed, outcome.rewritten, outcome.withdrawn, outcome.skipped, len(outcome.updates),
                          mailing.id if mailing else None)
    if more_seats and event.state == EventState.VEROEFFENTLICHT:
        result.moved_up = len(move_up_and_notify(event))
    if start:
        release(mailing)
    audit("veranstaltung.geaendert", event, geaendert=changed, sequence=event.sequence, neu_erstellt=result.rewritten,
          zurueckgezogen=result.withdrawn, aktualisierungen=result.updates)
    return result


def get_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None:
        raise NotFound("Diese Veranstaltung gibt es nicht.")
    return event


def list_events() -> list[Event]:
    """Newest first, with their invitations (the list counts answers per event: one query, not one each)."""
    return list(db.session.scalars(select(Event).options(selectinload(Event.invitations)).order_by(Event.start_at.desc())))


def publish_event(event: Event) -> None:
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt.")
    event.state = EventState.VEROEFFENTLICHT
    db.session.flush()
    audit("veranstaltung.veroeffentlicht", event)


def cancel_recipients(event: Event) -> list:
    """Exactly those who may have the event in their calendar: an invitation or update was sent, is on
    its way or in doubt. Nobody else hears of the cancellation, and nobody whose data was erased."""
    found = deliveries(event)
    return [i for i in event.invitations if found.get(i.id) is not None and found[i.id].may_have_event and reachable(i)]


@dataclass
class CancelResult:
    recipients: int = 0
    withdrawn: int = 0
    skipped: int = 0
    mailing_id: int | None = None


_REASON_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\u2028\u2029]")


def cancel_event(event: Event, reason: str = "", *, created_by_id: int | None = None, start: bool = False) -> CancelResult:
    """Cancel: every unsent mail of the event is withdrawn, and those who may have it in their calendar
    get METHOD:CANCEL (STATUS:CANCELLED, SEQUENCE + 1) with the reason, in a draft or sent with ``start``."""
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist bereits abgesagt.")
    reason = _REASON_CONTROL.sub(" ", (reason or "").replace("\r\n", "\n")).strip()
    if len(reason) > 1000:
        raise ValidationError("Der Grund darf höchstens 1.000 Zeichen lang sein.", "reason")
    lock_event(event.id)
    event.state = EventState.ABGESAGT
    event.cancel_reason = reason
    event.cancelled_at = utcnow()
    event.sequence += 1
    db.session.flush()
    outcome = supersede(event)  # withdraws; what a worker claimed meanwhile counts below as on its way
    recipients = cancel_recipients(event)
    result = CancelResult(len(recipients), outcome.withdrawn)
    if recipients:
        mailing = draft_mailing(event, "absage", created_by_id)
        for invitation in recipients:
            if queue(mailing, "absage", event, invitation) is None:
                result.skipped += 1
        result.mailing_id = mailing.id
        if start:
            release(mailing)
    db.session.flush()
    audit("veranstaltung.abgesagt", event, anzahl=len(recipients), zurueckgezogen=outcome.withdrawn,
          sequence=event.sequence)
    return result


def change_fields(event: Event, **changes: Any) -> EventData:
    """The event's data with some fields replaced (the CLI's ``events update --title …``)."""
    return replace(event_data(event), **{name: value for name, value in changes.items() if value is not None})
