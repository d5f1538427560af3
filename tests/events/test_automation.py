"""Automatic reminders (events/automation.py) on both databases: when they are due, to whom they go,
that a cancelled event never reminds, and that each runs exactly once, also with two workers at once."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ki_post.auth.models import AuditEntry
from ki_post.errors import ValidationError
from ki_post.events import automation, services
from ki_post.events.models import AutomaticReminder, Event, Invitation, ReminderKind
from ki_post.extensions import db
from ki_post.formatting import BERLIN
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact

OFFENE, TEILNEHMENDE = ReminderKind.OFFENE, ReminderKind.TEILNEHMENDE


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def days_before(moment: datetime, days: int) -> datetime:
    """The same German clock time ``days`` calendar days earlier."""
    return (moment.astimezone(BERLIN) - timedelta(days=days)).astimezone(timezone.utc)


def send(app) -> None:
    db.session.commit()
    Worker(app).run(once=True)  # file transport: "gesendet"
    db.session.expire_all()


def invited_event(app, make_event, make_contacts, n: int = 4, *, deadline: datetime | None = None,
                  start: datetime | None = None, open_days: int | None = None, participants_days: int | None = None,
                  invited_days_ago: int = 10, prefix: str = "person") -> Event:
    """A published event whose invitations to ``n`` people went out (queued ``invited_days_ago`` days ago)."""
    start = start or now() + timedelta(days=30)
    event = make_event(start=start, end=start + timedelta(hours=2), deadline=deadline)
    people = make_contacts(n, prefix)
    services.invite(event, contact_ids=[p.id for p in people], start=True)
    send(app)
    for invitation in event.invitations:
        invitation.invited_at = now() - timedelta(days=invited_days_ago)
    event.remind_open_days, event.remind_participants_days = open_days, participants_days
    db.session.commit()
    return event


@pytest.fixture(autouse=True)
def exact_due_times(app):
    """The tests here count from now: exact due times, whatever the hour they run at (the move of evening
    reminders to the morning has its own test)."""
    app.config["AUTO_REMINDER_EVENING_HOUR"] = 24


def reminders(event: Event | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).join(Mailing).where(Mailing.kind == "erinnerung").order_by(OutboxMessage.id)
    if event is not None:
        query = query.where(Mailing.event_id == event.id)
    return list(db.session.scalars(query))


def test_due_time_is_days_before_deadline_and_start_and_moves_with_the_event(app, make_event):
    start = now() + timedelta(days=20)
    deadline = now() + timedelta(days=10)
    event = make_event(start=start, end=start + timedelta(hours=2), deadline=deadline)
    assert [p.status for p in automation.plans(event)] == ["aus", "aus"]  # off by default
    event.remind_open_days, event.remind_participants_days = 3, 2
    assert automation.due_at(event, OFFENE) == days_before(deadline, 3)
    assert automation.due_at(event, TEILNEHMENDE) == days_before(start, 2)
    # A draft waits; published, the status follows the clock.
    services.publish_event(event)
    at = {p.kind: p for p in automation.plans(event, now=days_before(deadline, 3) - timedelta(seconds=1))}
    assert at[OFFENE].status == "geplant" and at[TEILNEHMENDE].status == "geplant"
    assert automation.plan(event, OFFENE, now=days_before(deadline, 3)).status == "faellig"
    assert automation.plan(event, OFFENE, now=deadline).status == "entfaellt"  # never after the deadline
    assert automation.plan(event, TEILNEHMENDE, now=start - timedelta(seconds=1)).status == "faellig"
    assert automation.plan(event, TEILNEHMENDE, now=start).status == "entfaellt"
    # Moving the event moves the due times.
    result = services.update_event(event, services.change_fields(event, start=start + timedelta(days=7),
                                                                 end=start + timedelta(days=7, hours=2),
                                                                 deadline=deadline + timedelta(days=5)))
    assert result.changed
    assert automation.due_at(event, OFFENE) == days_before(deadline + timedelta(days=5), 3)
    assert automation.due_at(event, TEILNEHMENDE) == days_before(start + timedelta(days=7), 2)
    # Days are calendar days in German time: across the change to summer time the clock time stays.
    event.deadline = datetime(2037, 3, 31, 7, tzinfo=timezone.utc)  # 09:00 CEST
    assert automation.due_at(event, OFFENE) == datetime(2037, 3, 28, 8, tzinfo=timezone.utc)  # 09:00 CET
    # Without a deadline there is no reminder to answer; a cancelled event reminds nobody.
    event.deadline = None
    assert automation.plan(event, OFFENE).status == "ohne_frist"
    services.cancel_event(event, "Raum nicht verfügbar")
    assert {p.status for p in automation.plans(event)} == {"abgesagt"}


def test_a_reminder_due_in_the_evening_goes_in_the_morning_of_that_day(app, make_event):
    """A deadline "bis 23:59 Uhr" does not remind people at 23:59; 9:00 the same day is still N days ahead."""
    app.config["AUTO_REMINDER_EVENING_HOUR"] = 18
    start = datetime(2037, 6, 20, 8, tzinfo=timezone.utc)
    event = make_event(start=start, end=start + timedelta(hours=2),
                       deadline=datetime(2037, 6, 10, 21, 59, tzinfo=timezone.utc))  # 23:59 CEST
    event.remind_open_days, event.remind_participants_days = 3, 2
    assert automation.due_at(event, OFFENE) == datetime(2037, 6, 7, 7, tzinfo=timezone.utc)  # 09:00 CEST
    assert automation.due_at(event, TEILNEHMENDE) == datetime(2037, 6, 18, 8, tzinfo=timezone.utc)  # 10:00 stays
    event.deadline = datetime(2037, 6, 10, 15, 59, tzinfo=timezone.utc)  # 17:59 CEST: not yet evening
    assert automation.due_at(event, OFFENE) == datetime(2037, 6, 7, 15, 59, tzinfo=timezone.utc)
    app.config["AUTO_REMINDER_EVENING_HOUR"] = 24
    event.deadline = datetime(2037, 6, 10, 21, 59, tzinfo=timezone.utc)
    assert automation.due_at(event, OFFENE) == datetime(2037, 6, 7, 21, 59, tzinfo=timezone.utc)


def test_settings_are_checked_and_audited(app, make_event):
    event = make_event()
    automation.set_automatic_reminders(event, 3, None)
    assert (event.remind_open_days, event.remind_participants_days) == (3, None)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "veranstaltung.erinnerung-automatik")).one()
    assert entry.details["offene"] == 3 and entry.details["teilnehmende"] is None
    for wrong in (0, -1, 366):
        with pytest.raises(ValidationError, match="1 bis 365 Tage"):
            automation.set_automatic_reminders(event, None, wrong)


def test_only_qualifying_people_are_reminded_and_without_a_draft(app, make_event, make_contacts):
    """Non-responders: open, invitation sent and queued before the due time. Participants: Zusage."""
    deadline = now() + timedelta(days=2)
    event = invited_event(app, make_event, make_contacts, 5, deadline=deadline, open_days=3, participants_days=40)
    open_, accepted, declined, late, erased = event.invitations
    services.answer(accepted, "zugesagt", channel="telefon")
    services.answer(declined, "abgesagt", channel="telefon")
    late.invited_at = now()  # invited after the due time (deadline - 3 days): just got the invitation
    db.session.get(Contact, erased.contact_id).anonymised_at = now()
    # One more person whose invitation never went out.
    never = services.add_invitations(event, make_contacts(1, "nachzuegler"))[0]
    never.invited_at = now() - timedelta(days=10)
    db.session.commit()

    assert automation.run_due_reminders() is True
    db.session.expire_all()
    sent = {m.to_email: m for m in reminders(event)}
    assert set(sent) == {open_.email, accepted.email}
    assert sent[open_.email].facts["audience"] == ["offen"]
    assert sent[accepted.email].facts["audience"] == ["zugesagt"]
    # Through the outbox road at once: running mailings, no draft for anyone to release.
    mailings = db.session.scalars(select(Mailing).where(Mailing.kind == "erinnerung")).all()
    assert {m.state for m in mailings} == {"aktiv"} and len(mailings) == 2
    # Each reminder lapses when the event begins.
    assert {m.expires_at for m in sent.values()} == {event.start_at}
    runs = {r.kind: r for r in db.session.scalars(select(AutomaticReminder))}
    assert runs[OFFENE].recipients == 1 and runs[TEILNEHMENDE].recipients == 1
    assert runs[OFFENE].due_at == days_before(deadline, 3)
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "veranstaltung.erinnerung-automatisch")).all()
    assert len(entries) == 2 and {e.actor for e in entries} == {"worker"}
    # Ran once: nothing more, now or after the event moved.
    assert automation.run_due_reminders() is False
    services.update_event(event, services.change_fields(event, deadline=deadline + timedelta(days=5)))
    db.session.commit()
    assert automation.run_due_reminders() is False
    assert len(reminders(event)) == 2
    assert {p.status for p in automation.plans(event)} == {"gesendet"}


def test_switched_on_late_sends_at_the_next_turn_while_the_deadline_is_ahead_else_never(app, make_event, make_contacts):
    ahead = invited_event(app, make_event, make_contacts, 2, deadline=now() + timedelta(days=1))
    passed = invited_event(app, make_event, make_contacts, 2, deadline=now() - timedelta(hours=1), prefix="spaet")
    # Switched on 3 days before a deadline that is 1 day (or -1 hour) away: the due time has passed.
    automation.set_automatic_reminders(ahead, 3, None)
    automation.set_automatic_reminders(passed, 3, None)
    db.session.commit()
    assert automation.plan(ahead, OFFENE).status == "faellig"
    assert automation.plan(passed, OFFENE).status == "entfaellt"
    send(app)  # the worker's turn (its idle loop runs the background task)
    assert len(reminders(ahead)) == 2 and {m.state for m in reminders(ahead)} == {"gesendet"}
    assert reminders(passed) == []


def test_cancelled_event_never_reminds_and_queued_reminders_are_withdrawn(app, make_event, make_contacts):
    cancelled = invited_event(app, make_event, make_contacts, 2, deadline=now() + timedelta(days=1), open_days=3)
    services.cancel_event(cancelled, "Ausfall")
    db.session.commit()
    assert automation.due_reminders() == []
    assert automation.send_automatic(cancelled.id, OFFENE) is None  # even when asked directly
    assert automation.run_due_reminders() is False
    assert reminders(cancelled) == []
    # Queued before the cancellation, not sent yet: withdrawn with everything else that waits.
    other = invited_event(app, make_event, make_contacts, 2, deadline=now() + timedelta(days=1), open_days=3,
                          prefix="andere")
    assert automation.run_due_reminders() is True
    assert {m.state for m in reminders(other)} == {"wartend"}
    services.cancel_event(other, "Ausfall")
    db.session.commit()
    send(app)
    assert {m.state for m in reminders(other)} == {"zurueckgezogen"}


def test_exactly_once_when_two_workers_run_the_task_at_the_same_moment(app, make_event, make_contacts):
    event = invited_event(app, make_event, make_contacts, 3, deadline=now() + timedelta(days=1), open_days=3)
    event_id = event.id
    db.session.remove()
    both_saw_it_due = threading.Barrier(2)
    outcomes: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with app.app_context():
            try:
                due = automation.due_reminders()
                db.session.rollback()
                both_saw_it_due.wait(timeout=30)
                outcomes.append([automation.send_automatic(*item) is not None for item in due])
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(outcomes) == [[False], [True]]  # both found it due; one sent it
    assert db.session.scalar(select(func.count(AutomaticReminder.id)).where(AutomaticReminder.event_id == event_id)) == 1
    event = db.session.get(Event, event_id)
    assert sorted(m.to_email for m in reminders(event)) == sorted(i.email for i in event.invitations)


def test_a_second_run_row_is_refused_by_the_database(app, make_event):
    """The last guard under the lock: the unique key (event, kind)."""
    event = make_event()
    for _ in range(2):
        db.session.add(AutomaticReminder(event_id=event.id, kind=OFFENE, due_at=now(), recipients=0, skipped=0, problem=""))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_invitation_rows_without_sent_invitation_get_nothing(app, published):
    event = published(3, deadline=(now() + timedelta(days=1)))
    event.remind_open_days = 3
    for invitation in event.invitations:
        invitation.invited_at = now() - timedelta(days=5)
    db.session.commit()
    assert automation.run_due_reminders() is True  # the run happens, to nobody
    run = db.session.scalars(select(AutomaticReminder)).one()
    assert run.recipients == 0 and run.mailing_id is None
    assert reminders(event) == [] and db.session.scalar(select(func.count(Invitation.id))) == 3


def test_event_page_shows_and_switches_the_automatic_reminders(app, client, make_user, make_event, make_contacts):
    make_user("admin", "admin@ministerium.example")
    event = invited_event(app, make_event, make_contacts, 2, deadline=now() + timedelta(days=10))
    detail, url = f"/veranstaltungen/{event.id}", f"/veranstaltungen/{event.id}/automatische-erinnerungen"
    reader = make_user("lesen")
    client.login(reader.email)
    page = client.get(detail).get_data(as_text=True)
    assert "Automatische Erinnerungen" in page and "an alle ohne Antwort</strong>:\n    aus." in page
    assert url not in page  # a reader sees the plan, not the switch
    client.post("/abmelden", data={"csrf_token": client.csrf_token(detail)})
    client.login(make_user("sachbearbeitung").email)
    saved = client.submit(url, {"remind_open_days": "3", "remind_participants_days": ""}, form_url=detail,
                          follow_redirects=True)
    page = saved.get_data(as_text=True)
    assert "Die automatischen Erinnerungen sind gespeichert." in page
    db.session.expire_all()
    assert (event.remind_open_days, event.remind_participants_days) == (3, None)
    due = automation.due_at(event, OFFENE)
    from ki_post.formatting import datum_zeit

    assert f"geplant für {datum_zeit(due)}; Stand jetzt an 2 Personen" in page
    assert 'name="remind_open_days" type="number" value="3"' in page
    refused = client.submit(url, {"remind_open_days": "0"}, form_url=detail, follow_redirects=True)
    assert "1 bis 365 Tage (leer = aus)." in refused.get_data(as_text=True)
    db.session.expire_all()
    assert event.remind_open_days == 3
    # Sent: the page says when and to how many.
    event.deadline = now() + timedelta(days=1)
    db.session.commit()
    assert automation.run_due_reminders() is True
    page = client.get(detail).get_data(as_text=True)
    assert re.search(r"an alle ohne Antwort</strong> \(3 Tage vor der Antwortfrist\):\s+am .+ versendet an 2 Personen", page)


def test_cli_switches_and_shows_the_automatic_reminders(runner, make_event):
    event = make_event(deadline=now() + timedelta(days=10))
    shown = runner.invoke(args=["events", "auto-remind", str(event.id), "--offene", "3"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.strip().splitlines()
    assert lines[0].startswith("offene\t3\tgeplant, fällig ") and lines[1] == "teilnehmende\taus\taus"
    db.session.expire_all()
    assert event.remind_open_days == 3
    off = runner.invoke(args=["events", "auto-remind", str(event.id), "--offene", "0", "--teilnehmende", "2"])
    assert off.exit_code == 0 and off.output.splitlines()[0] == "offene\taus\taus"
    db.session.expire_all()
    assert (event.remind_open_days, event.remind_participants_days) == (None, 2)
    wrong = runner.invoke(args=["events", "auto-remind", str(event.id), "--teilnehmende", "400"])
    assert wrong.exit_code == 1 and "1 bis 365 Tage" in wrong.output
