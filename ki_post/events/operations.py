"""Event operations: create, change, publish, cancel. Functions flush, never commit; callers commit."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..auth.services import audit
from ..core.formatting import BERLIN
from ..errors import NotFound, ValidationError
from ..extensions import db
from . import ical
from .models import Event

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
    organizer_email, organizer_name = ical.organizer_from_sender(current_app.config["MAIL_DEFAULT_SENDER"])
    event = Event(**values, organizer_email=organizer_email, organizer_name=organizer_name, uid=ical.new_uid(), sequence=0)
    db.session.add(event)
    db.session.flush()
    audit("veranstaltung.angelegt", event)
    return event


SIGNIFICANT = ("start_at", "end_at", "place_name", "place_address", "room")


def update_event(event: Event, data: EventData) -> bool:
    """Returns True when a published event changed time or place: an update mail is then offered."""
    if event.state == "cancelled":
        raise ValidationError("Eine abgesagte Veranstaltung kann nicht mehr geändert werden.")
    values = _validated(data)
    significant = any(getattr(event, name) != values[name] for name in SIGNIFICANT)
    for name, value in values.items():
        setattr(event, name, value)
    if significant and event.state == "published" and any(i.invited_at for i in event.invitations):
        event.update_pending = True
    db.session.flush()
    audit("veranstaltung.geaendert", event, wesentlich=significant)
    return event.update_pending


def get_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None:
        raise NotFound("Diese Veranstaltung gibt es nicht.")
    return event


def list_events() -> list[Event]:
    return list(db.session.scalars(select(Event).order_by(Event.start_at.desc())))


def publish_event(event: Event) -> None:
    if event.state == "cancelled":
        raise ValidationError("Die Veranstaltung ist abgesagt.")
    event.state = "published"
    db.session.flush()
    audit("veranstaltung.veroeffentlicht", event)
