"""A real worker process (`flask --app app outbox work`) against a real SMTP server (aiosmtpd) sends an
automatic reminder exactly once at its due time: nothing before, one per qualifying person after,
nothing more on the following turns. Both databases."""
from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from ki_post.events import automation, services
from ki_post.events.models import AutomaticReminder
from ki_post.extensions import db
from ki_post.formatting import BERLIN
from ki_post.outbox.models import OutboxWorker
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact, Organisation
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401,F811  (fixtures)
from tests.outbox.test_crash import start_worker, wait_for
from tests.smtp_server import parse

DUE_IN = 3.0  # seconds from switching the reminders on to their due time


def reminder_counts(smtp) -> Counter:
    """Reminders received per address (by subject: "Erinnerung: …")."""
    counts: Counter = Counter()
    for received in list(smtp.handler.received):
        if str(parse(received.content)["Subject"]).startswith("Erinnerung:"):
            counts.update(received.rcpt_tos)
    return counts


def test_automatic_reminder_sent_exactly_once_at_its_due_time_by_a_running_worker(smtp_app, smtp, tmp_path: Path,
                                                                                    monkeypatch):
    # Exact due times (no move of evening reminders to the morning), in this process and the worker's.
    smtp_app.config["AUTO_REMINDER_EVENING_HOUR"] = 24
    monkeypatch.setenv("KI_POST_AUTO_REMINDER_EVENING_HOUR", "24")
    organisation = Organisation(name="Kreis Erinnerung", kind="kreis")
    people = [Contact(anrede="frau", first_name="Erika", last_name=name, email=f"{name.lower()}@kreis.example",
                      organisation=organisation) for name in ("Offen", "Auchoffen", "Zusage", "Absage")]
    db.session.add_all([organisation, *people])
    start = datetime.now(timezone.utc) + timedelta(days=30)
    event = services.create_event(services.EventData(title="Fachtag Integration", start=start,
                                                     end=start + timedelta(hours=2), place_name="Ministerium"))
    services.invite(event, contact_ids=[p.id for p in people], start=True)
    db.session.commit()
    Worker(smtp_app).run(once=True)  # the invitations go out
    db.session.expire_all()
    by_email = {i.email: i for i in event.invitations}
    services.answer(by_email["zusage@kreis.example"], "zugesagt", channel="telefon")
    services.answer(by_email["absage@kreis.example"], "abgesagt", channel="telefon")
    for invitation in event.invitations:
        invitation.invited_at -= timedelta(days=5)  # invited well before the reminders' due time
    db.session.commit()

    worker = start_worker(smtp_app, smtp.port)
    try:
        wait_for(lambda: db.session.scalar(select(func.count()).select_from(OutboxWorker)) > 0
                 or worker.poll() is not None, timeout=60)
        db.session.rollback()
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        time.sleep(1.5)  # the worker sends the confirmations and goes idle
        assert reminder_counts(smtp) == Counter()

        # The settings are in days: move deadline and start so that both reminders fall due DUE_IN s from now.
        due = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=int(DUE_IN) + 1)
        local = due.astimezone(BERLIN)  # calendar days in German time (as the reminders count them)
        services.update_event(event, services.change_fields(event, start=local + timedelta(days=2),
                                                            end=local + timedelta(days=2, hours=2),
                                                            deadline=local + timedelta(days=1)), start=True)
        automation.set_automatic_reminders(event, 1, 2)
        db.session.commit()
        assert {p.due_at for p in automation.plans(event)} == {due}

        due_epoch = due.timestamp()
        while time.time() < due_epoch - 0.2:
            assert reminder_counts(smtp) == Counter(), "Erinnerung vor ihrem Zeitpunkt versendet"
            assert worker.poll() is None
            time.sleep(0.1)
        expected = Counter({"offen@kreis.example": 1, "auchoffen@kreis.example": 1, "zusage@kreis.example": 1})
        wait_for(lambda: sum(reminder_counts(smtp).values()) >= 3, timeout=60)
        arrivals = [r.at for r in smtp.handler.received if str(parse(r.content)["Subject"]).startswith("Erinnerung:")]
        assert min(arrivals) >= due_epoch
        print(f"erste automatische Erinnerung {min(arrivals) - due_epoch:.2f} s nach Fälligkeit angekommen")
        time.sleep(3.5)  # several more turns of the worker (it looks every second when idle)
        assert reminder_counts(smtp) == expected
        db.session.expire_all()
        runs = db.session.scalars(select(AutomaticReminder)).all()
        assert sorted((r.kind, r.recipients) for r in runs) == [("offene", 2), ("teilnehmende", 1)]
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err[-3000:]
