"""Automatic reminders: "N Tage vor der Antwortfrist an alle ohne Antwort" and "N Tage vor Beginn an
alle mit Zusage", two optional settings per event (off by default), sent by the outbox worker.

Rules (the same as for a reminder the staff prepares, plus these):

- *Due* is the deadline (or the start) minus N days, computed from the event as it is now: moving
  the deadline or the start moves the due time, as long as the reminder has not run. A due time in
  the evening (AUTO_REMINDER_EVENING_HOUR, 18:00) moves to 9:00 the same day: nobody is reminded at
  23:59 because the deadline is "bis 23:59 Uhr".
- A reminder runs once. ``AutomaticReminder`` keeps one row per event and kind (unique key); the row,
  the queued mails and the audit entry commit together, so two workers never both send it and a
  crash between leaves nothing half-done. Once it ran, it never runs again (not after the event
  moved, not after the setting was switched off and on).
- Only for a published event; a cancelled one never reminds. It runs at the first worker turn at or
  after the due time while the event is still ahead of its limit: the deadline for those without an
  answer (a reminder to answer after the deadline helps nobody), the start for those who accepted.
  Switched on (or published) after the due time, it runs at the next worker turn if that limit is
  still ahead, else never ("entfällt").
- Non-responders are the open invitations whose invitation mail went out, and that was queued before
  the due time (someone invited an hour ago is not reminded at once); participants are those with
  Zusage. Erased or deactivated people, and anyone with a reminder still waiting in the outbox, are
  left out (``invitations.reminder_recipients``).
- Sent through the normal outbox road without a draft: a mailing of kind ``erinnerung`` started at
  once; each mail lapses at the event's start, is rewritten on a change and withdrawn on cancelling.

The worker runs ``run_due_reminders`` when nothing is due to be sent (``outbox.background``, wired by
``connect`` at app start).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app, has_app_context
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from .. import config as default_config
from ..auth.services import audit
from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from ..formatting import BERLIN
from ..outbox import services as outbox
from ..outbox.background import register_background_task
from .delivery import lock_event
from .invitations import reminder_recipients
from .mails import RECIPIENT_PROBLEMS, TemplateProblem, queue, render
from .models import AutomaticReminder, Event, EventState, Invitation, InvitationState, ReminderKind

log = logging.getLogger(__name__)

MAX_DAYS = 365
MORNING_HOUR = 9  # where a reminder due in the evening goes instead (AUTO_REMINDER_EVENING_HOUR)
# The event's setting for each kind, and the answer a reminder of that kind is meant for.
SETTING = {ReminderKind.OFFENE: "remind_open_days", ReminderKind.TEILNEHMENDE: "remind_participants_days"}
AUDIENCE = {ReminderKind.OFFENE: (InvitationState.OFFEN,), ReminderKind.TEILNEHMENDE: (InvitationState.ZUGESAGT,)}


@dataclass(frozen=True)
class Plan:
    """Where one automatic reminder of an event stands (for the event page and the worker)."""

    kind: ReminderKind
    days: int | None
    due_at: datetime | None
    run: AutomaticReminder | None
    status: str  # aus · ohne_frist · abgesagt · geplant · faellig · gesendet · entfaellt

    @property
    def label(self) -> str:
        return self.kind.label

    @property
    def sendable(self) -> bool:
        return self.status == "faellig"


def _limit(event: Event, kind: ReminderKind) -> datetime | None:
    if kind == ReminderKind.TEILNEHMENDE:
        return event.start_at
    return min(event.deadline, event.start_at) if event.deadline else None


def due_at(event: Event, kind: ReminderKind) -> datetime | None:
    """When the reminder is due: N days before the deadline (non-responders) or the start (participants)."""
    days = getattr(event, SETTING[kind])
    anchor = event.start_at if kind == ReminderKind.TEILNEHMENDE else event.deadline
    if days is None or anchor is None:
        return None
    # Calendar days in German time: the same clock time N days earlier, also across a change of daylight saving.
    local = anchor.astimezone(BERLIN) - timedelta(days=days)
    if local.hour >= _evening_hour():
        local = local.replace(hour=MORNING_HOUR, minute=0, second=0, microsecond=0)  # earlier, never later
    return local.astimezone(timezone.utc)


def _evening_hour() -> int:
    return int(current_app.config.get("AUTO_REMINDER_EVENING_HOUR", default_config.AUTO_REMINDER_EVENING_HOUR)) \
        if has_app_context() else default_config.AUTO_REMINDER_EVENING_HOUR


def _runs(event: Event) -> dict[str, AutomaticReminder]:
    if event.id is None:
        return {}
    return {run.kind: run for run in db.session.scalars(select(AutomaticReminder).where(AutomaticReminder.event_id == event.id))}


def plan(event: Event, kind: ReminderKind, *, now: datetime | None = None,
         runs: dict[str, AutomaticReminder] | None = None) -> Plan:
    now = now or utcnow()
    run = (runs if runs is not None else _runs(event)).get(kind)
    days, due, limit = getattr(event, SETTING[kind]), due_at(event, kind), _limit(event, kind)
    if run is not None:
        status = "gesendet"
    elif days is None:
        status = "aus"
    elif event.state == EventState.ABGESAGT:
        status = "abgesagt"
    elif due is None:
        status = "ohne_frist"
    elif now >= limit:
        status = "entfaellt"
    elif now < due:
        status = "geplant"
    else:
        # Due; a draft event waits for its publication (while the limit is ahead).
        status = "faellig" if event.state == EventState.VEROEFFENTLICHT else "geplant"
    return Plan(kind, days, due, run, status)


def plans(event: Event, now: datetime | None = None) -> list[Plan]:
    runs = _runs(event)
    return [plan(event, kind, now=now, runs=runs) for kind in ReminderKind]


def _days(value: int | None, label: str, field: str) -> int | None:
    if value is None:
        return None
    if not 1 <= int(value) <= MAX_DAYS:
        raise ValidationError(f"{label}: 1 bis {MAX_DAYS} Tage (leer = keine automatische Erinnerung).", field)
    return int(value)


def set_automatic_reminders(event: Event, open_days: int | None, participants_days: int | None) -> None:
    """Switch the two automatic reminders on (days) or off (None). One that already ran stays done."""
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt; es werden keine Erinnerungen versendet.")
    event.remind_open_days = _days(open_days, "Erinnerung an alle ohne Antwort", "remind_open_days")
    event.remind_participants_days = _days(participants_days, "Erinnerung an alle mit Zusage", "remind_participants_days")
    db.session.flush()
    audit("veranstaltung.erinnerung-automatik", event, offene=event.remind_open_days,
          teilnehmende=event.remind_participants_days)


def recipients_for(event: Event, kind: ReminderKind, due: datetime) -> list[Invitation]:
    """Who the reminder goes to (see the module's rules)."""
    if kind == ReminderKind.TEILNEHMENDE:
        return [i for i in reminder_recipients(event, include_accepted=True) if i.state == InvitationState.ZUGESAGT]
    return [i for i in reminder_recipients(event) if i.invited_at is None or i.invited_at <= due]


# --- The worker's part -----------------------------------------------------------------------------------

def due_reminders(now: datetime | None = None) -> list[tuple[int, ReminderKind]]:
    """(event id, kind) of every automatic reminder that should run now (one query for events, one for runs)."""
    now = now or utcnow()
    events = db.session.scalars(select(Event).where(
        Event.state == EventState.VEROEFFENTLICHT, Event.start_at > now,
        or_(Event.remind_open_days.is_not(None), Event.remind_participants_days.is_not(None)))).all()
    if not events:
        return []
    done = set(tuple(row) for row in db.session.execute(select(AutomaticReminder.event_id, AutomaticReminder.kind).where(
        AutomaticReminder.event_id.in_([event.id for event in events]))))
    return [(event.id, kind) for event in events for kind in ReminderKind
            if (event.id, kind) not in done and plan(event, kind, now=now, runs={}).sendable]


def send_automatic(event_id: int, kind: ReminderKind) -> AutomaticReminder | None:
    """Run one due reminder and commit it with its mails; None if it is not (or no longer) due,
    e.g. because another worker ran it a moment ago or the event was cancelled meanwhile."""
    lock_event(event_id)  # waits for a cancel or change of the event in progress, and for another worker
    db.session.expire_all()
    event = db.session.get(Event, event_id)
    now = utcnow()
    current = plan(event, kind, now=now) if event is not None else None
    if current is None or not current.sendable:
        db.session.rollback()
        return None
    run = AutomaticReminder(event_id=event.id, kind=kind, due_at=current.due_at, sent_at=now, recipients=0, skipped=0,
                            problem="")
    db.session.add(run)
    try:
        db.session.flush()  # the unique key: a second worker that got this far stops here
    except IntegrityError:
        db.session.rollback()
        return None
    recipients = recipients_for(event, kind, current.due_at)
    audience = AUDIENCE[kind]
    if recipients:
        try:
            render("erinnerung", event, recipients[0], audience=audience)
        except TemplateProblem as problem:
            run.problem = str(problem)
            recipients = []
        except RECIPIENT_PROBLEMS:
            pass  # this one person's problem: ``queue`` records it and the others get theirs
    if recipients:
        mailing = outbox.create_mailing("erinnerung", f"Automatische Erinnerung ({kind.label}): {event.title}",
                                        event_id=event.id)
        for invitation in recipients:
            if queue(mailing, "erinnerung", event, invitation, audience=audience) is None:
                run.skipped += 1
            else:
                run.recipients += 1
        outbox.start_mailing(mailing, allow_empty=True)
        run.mailing_id = mailing.id
    db.session.flush()
    audit("veranstaltung.erinnerung-automatisch", event, actor="worker", art=str(kind), anzahl=run.recipients,
          uebersprungen=run.skipped, mailing_id=run.mailing_id)
    db.session.commit()
    return run


def run_due_reminders() -> bool:
    """The background task: send every due automatic reminder; True if one ran."""
    due = due_reminders()
    db.session.rollback()  # end the read; each reminder is its own transaction
    worked = False
    for event_id, kind in due:
        run = send_automatic(event_id, kind)
        if run is not None:
            worked = True
            log.info("Automatische Erinnerung (%s) für Veranstaltung %s: %s Nachrichten", kind.label, event_id,
                     run.recipients)
    return worked


def connect() -> None:
    """Let the outbox worker loop send due automatic reminders when it is idle (once per process)."""
    register_background_task(run_due_reminders)
