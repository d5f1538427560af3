"""Copying an event for its next date: "Kopieren" on the event page, ``flask events copy``.

The copy takes every setting of the source (title, description, place, room, organizer, capacity,
companions, the ask_* flags, the automatic reminders) and the per-event questions, with new dates: the deadline moves by as much as the start. It takes
nothing of what happened: no invitations or answers, state Entwurf, a new UID, SEQUENCE 0.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from ..formatting import BERLIN
from .models import Event
from .operations import create_event, event_data, parse_local
from .questions import copy_questions

# Settings that ``EventData`` does not carry; copied as they are.
COPIED_FIELDS = ("organizer_email", "organizer_name", "remind_open_days", "remind_participants_days")


def next_title(source: Event, new_start: datetime) -> str:
    """The source's title with its year moved along ("Fachtag 2026" → "Fachtag 2027"), so that the list of
    events does not show two identical titles."""
    old, new = source.start_at.astimezone(BERLIN).year, new_start.astimezone(BERLIN).year
    return re.sub(rf"(?<!\d){old}(?!\d)", str(new), source.title) if old != new else source.title


def copy_event(source: Event, start: str | datetime, end: str | datetime, title: str | None = None) -> Event:
    """A new draft event with the source's settings and questions at the new start and end (read as
    Europe/Berlin when naive); the title given, else the source's with its year moved along."""
    new_start = parse_local(start, "start")
    new_end = parse_local(end, "end")
    if new_start <= utcnow():
        raise ValidationError("Der Beginn der Kopie muss in der Zukunft liegen.", "start")
    shift = new_start - source.start_at
    deadline = source.deadline + shift if source.deadline else None
    target = create_event(replace(event_data(source), start=new_start, end=new_end, deadline=deadline,
                                  title=title if title is not None else next_title(source, new_start)))
    for name in COPIED_FIELDS:
        setattr(target, name, getattr(source, name))
    db.session.flush()
    copy_questions(source, target)
    db.session.flush()
    audit("veranstaltung.kopiert", target, quelle_id=source.id)
    return target
