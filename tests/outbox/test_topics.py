"""Messages that have not gone out can change (outbox.topics), and the worker respects it: a rewrite
between read-ahead and claim never sends stale bytes; messages of one topic keep their order across
workers; expired messages lapse; returned messages are announced. Real aiosmtpd, both databases."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.helpers import claim
from sqlalchemy import select

from ki_post.db_types import utcnow
from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.outbox import topics
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import CalendarPart, create_mailing, enqueue, start_mailing
from ki_post.outbox.steering import mark_message_sent, resend_message, retry_failed
from ki_post.outbox.signals import messages_returned
from ki_post.outbox.worker import Worker


def queue(topic: str | None, subject: str, *, to: str = "erika@kreis.example", start: bool = True,
          calendar: str | None = None, expires_at=None, kind: str = "einladung") -> OutboxMessage:
    mailing = create_mailing(kind, subject)
    part = None
    if calendar:
        part = CalendarPart(calendar, f"BEGIN:VCALENDAR\r\nMETHOD:{calendar}\r\nEND:VCALENDAR\r\n".encode())
    message = enqueue(mailing, to_email=to, to_name="Erika Muster", subject=subject, text=f"{subject}\n", topic=topic,
                      facts={"gesagt": subject}, calendar=part, expires_at=expires_at)
    if start:
        start_mailing(mailing)
    db.session.commit()
    return message


def rewrite(message_id: int, subject: str) -> bool:
    return topics.rewrite_message(message_id, to_email="erika@kreis.example", to_name="Erika Muster", subject=subject,
                                  text=f"{subject}\n", html=None, calendar=None, facts={"gesagt": subject})


def subjects(smtp) -> list[str]:
    return [m["Subject"] for m in smtp.messages()]


def rewrite_elsewhere(app, message_id: int, subject: str, results: list) -> threading.Thread:
    """Another process's change (its own session), committed while the worker holds what it read."""
    def run() -> None:
        with app.app_context():
            results.append(rewrite(message_id, subject))
            db.session.commit()
            db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("path", ["read_ahead", "next_due"])
def test_rewrite_between_reading_and_claiming_never_sends_stale_bytes(smtp_app, smtp, backend, path):
    """The worker builds the next message before claiming it. A rewrite in between must not go out as
    the old bytes: either the claim sees the new revision (and builds anew), or the rewrite finds the
    message claimed and says so (PostgreSQL: the read row is locked until the claim commits).
    Without a message in flight the worker reads and claims in one go ("next_due"); on SQLite that
    window is open only before the transaction's first write, i.e. for the first message of a run."""
    first = queue("thema-1", "Erste Nachricht", to="anna@kreis.example") if path == "read_ahead" else None
    second = queue("thema-2", "Einladung: 10:00 Uhr")
    results: list[bool] = []
    threads: list[threading.Thread] = []

    class RacingWorker(Worker):
        def read_ahead(self) -> None:
            super().read_ahead()
            if path == "read_ahead" and self._ahead is not None and not threads:
                assert self._ahead.envelope.message_id == second.id
                threads.append(rewrite_elsewhere(smtp_app, second.id, "Einladung: 10:30 Uhr", results))
                if backend == "sqlite":
                    threads[0].join()  # committed before the claim (PostgreSQL: waits for the row lock)

        def _next_due(self):
            row = super()._next_due()
            if path == "next_due" and row is not None and row.id == second.id and not threads:
                threads.append(rewrite_elsewhere(smtp_app, second.id, "Einladung: 10:30 Uhr", results))
                if backend == "sqlite":
                    threads[0].join()
            return row

    worker = RacingWorker(smtp_app)
    if path == "next_due":
        worker.read_ahead = lambda: None  # the other road: read and claim in one transaction
    worker.run(once=True)
    for thread in threads:
        thread.join()
    assert results, "der Wettlauf fand nicht statt"
    db.session.expire_all()
    row = db.session.get(OutboxMessage, second.id)
    sent = {m["To"].addresses[0].addr_spec: m["Subject"] for m in smtp.messages()}
    assert row.state == "gesendet" and sent["erika@kreis.example"] == row.subject
    if results == [True]:
        assert row.subject == "Einladung: 10:30 Uhr" and row.revision == 1
    else:  # claimed first: the rewrite changed nothing, and the caller learned it
        assert backend == "postgresql" and row.subject == "Einladung: 10:00 Uhr" and row.revision == 0
    if backend == "sqlite":
        assert results == [True]  # no row locks: only the revision in the claim stands between
    if first is not None:
        assert db.session.get(OutboxMessage, first.id).state == "gesendet"


def test_later_message_of_a_topic_waits_for_the_earlier_in_flight(smtp_app, smtp):
    """A CANCEL queued while the REQUEST is in flight at another worker waits until that one is
    recorded; other topics go on meanwhile."""
    request = queue("einladung-1", "Einladung", calendar="REQUEST")
    other = queue("einladung-2", "Andere Einladung", to="max@kreis.example", calendar="REQUEST")
    busy = Worker(smtp_app, worker_id="langsamer-worker")
    busy.heartbeat(force=True)  # alive: its claim is in flight, not in doubt
    assert claim(busy) == request.id  # in flight at the slow worker, not yet recorded
    cancel = queue("einladung-1", "Absage", calendar="CANCEL", kind="absage")
    Worker(smtp_app).run(once=True)
    assert subjects(smtp) == ["Andere Einladung"]
    db.session.expire_all()
    assert db.session.get(OutboxMessage, cancel.id).state == "wartend"
    # The slow worker delivers and records its message; then the CANCEL may follow.
    envelope = busy_prepared_envelope(request.id)
    busy.transport.send(envelope, b"Subject: Einladung\r\n\r\nx\r\n")
    busy._record(envelope, "250 ok")
    db.session.commit()
    busy.transport.close()
    Worker(smtp_app).run(once=True)
    assert subjects(smtp) == ["Andere Einladung", "Einladung", "Absage"]
    assert db.session.get(OutboxMessage, other.id).state == "gesendet"


def busy_prepared_envelope(message_id: int):
    from email.utils import parseaddr

    from ki_post.outbox.worker import Envelope

    row = db.session.get(OutboxMessage, message_id)
    return Envelope(parseaddr(row.from_header)[1], row.to_email, row.mailing_id, row.id)


def test_order_holds_for_waiting_messages_of_released_mailings_only(smtp_app, smtp):
    """An earlier message waiting for its retry holds the later ones back; one in a draft does not
    (whoever queues the later one brings the earlier up to date or withdraws it)."""
    retrying = queue("thema-a", "A1")
    later = queue("thema-a", "A2")
    db.session.execute(OutboxMessage.__table__.update().where(OutboxMessage.id == retrying.id)
                       .values(next_attempt_at=utcnow() + timedelta(hours=1)))
    queue("thema-b", "B1", start=False)
    queue("thema-b", "B2")
    queue(None, "ohne Thema")
    db.session.commit()
    Worker(smtp_app).run(once=True)
    assert sorted(subjects(smtp)) == ["B2", "ohne Thema"]
    db.session.expire_all()
    assert db.session.get(OutboxMessage, later.id).state == "wartend"


def test_expired_messages_are_withdrawn_not_sent(smtp_app, smtp):
    late = queue("thema", "Erinnerung", expires_at=utcnow() - timedelta(minutes=1), kind="erinnerung")
    fine = queue("thema-2", "Einladung", expires_at=utcnow() + timedelta(days=1))
    Worker(smtp_app).run(once=True)
    assert subjects(smtp) == ["Einladung"]
    db.session.expire_all()
    withdrawn = db.session.get(OutboxMessage, late.id)
    assert withdrawn.state == "zurueckgezogen" and "vorbei" in withdrawn.server_reply
    assert db.session.get(OutboxMessage, fine.id).state == "gesendet"


def test_rewrite_skip_withdraw_only_unsent(smtp_app, smtp):
    waiting = queue("t", "alt")
    assert rewrite(waiting.id, "neu") is True
    with pytest.raises(ValidationError):
        topics.rewrite_message(waiting.id, to_email="kein-at-zeichen", to_name="", subject="x", text="x", html=None,
                               calendar=None, facts=None)
    db.session.commit()
    assert waiting.subject == "neu" and waiting.revision == 1 and waiting.facts == {"gesagt": "neu"}
    Worker(smtp_app).run(once=True)
    assert subjects(smtp) == ["neu"]
    assert rewrite(waiting.id, "zu spät") is False
    assert topics.skip_message(waiting.id, "x") is False and topics.withdraw_unsent([waiting.id], "x") == []
    failed = queue("t2", "gescheitert")
    db.session.execute(OutboxMessage.__table__.update().where(OutboxMessage.id == failed.id).values(state="fehlgeschlagen"))
    assert topics.withdraw_unsent([failed.id], "Veranstaltung abgesagt") == [failed.id]
    skipped = queue("t3", "kaputt")
    assert topics.skip_message(skipped.id, "Adresse ungültig") is True
    db.session.commit()
    db.session.expire_all()
    assert [db.session.get(OutboxMessage, i).state for i in (waiting.id, failed.id, skipped.id)] == [
        "gesendet", "zurueckgezogen", "uebersprungen"]
    rows = topics.topic_messages(OutboxMessage.topic.in_(["t", "t2"]))
    assert [(r.topic, r.state, r.facts) for r in rows] == [("t", "gesendet", {"gesagt": "neu"}),
                                                           ("t2", "zurueckgezogen", {"gesagt": "gescheitert"})]


def test_returned_messages_are_announced_and_receivers_may_rewrite(smtp_app, smtp):
    """Temporary failure (in the worker's own transaction), permanent failure, retry and resend."""
    seen: list[list[int]] = []

    def receiver(sender, message_ids) -> None:
        seen.append(list(message_ids))
        for message_id in message_ids:
            message = db.session.get(OutboxMessage, message_id)
            if message.state == "wartend":
                rewrite(message_id, f"{message.subject} (neu erstellt)")

    messages_returned.connect(receiver)
    try:
        flaky = queue("t1", "Einladung", to="wackelig@kreis.example")
        refused = queue("t2", "Einladung", to="abgelehnt@kreis.example")
        smtp.handler.temporary_failures["wackelig@kreis.example"] = 1
        smtp.handler.data_replies["abgelehnt@kreis.example"] = "550 5.1.1 Postfach unbekannt"
        Worker(smtp_app).run(once=True)
        assert sorted(map(sorted, seen)) == [[flaky.id], [refused.id]]
        assert subjects(smtp) == ["Einladung (neu erstellt)"]  # the retry went out as rewritten
        del smtp.handler.data_replies["abgelehnt@kreis.example"]
        seen.clear()
        db.session.expire_all()
        assert retry_failed(db.session.get(OutboxMessage, refused.id).mailing) == 1
        assert seen == [[refused.id]]
        db.session.commit()
        Worker(smtp_app).run(once=True)
        assert subjects(smtp)[-1] == "Einladung (neu erstellt)"
    finally:
        messages_returned.disconnect(receiver)


def test_resend_refused_when_a_later_calendar_message_overtook_it(smtp_app, smtp):
    request = queue("einladung-7", "Einladung", calendar="REQUEST")
    db.session.execute(OutboxMessage.__table__.update().where(OutboxMessage.id == request.id).values(state="unklar"))
    reminder = queue("einladung-7", "Erinnerung", kind="erinnerung")  # no calendar: does not overtake
    db.session.expire_all()
    assert topics.overtaken(db.session.get(OutboxMessage, request.id)) is False
    queue("einladung-7", "Absage", calendar="CANCEL", kind="absage")
    db.session.expire_all()
    message = db.session.get(OutboxMessage, request.id)
    with pytest.raises(ValidationError, match="neuere Kalendernachricht"):
        resend_message(message)
    mark_message_sent(message)  # deciding "it did arrive" stays possible
    db.session.commit()
    assert db.session.scalar(select(OutboxMessage.state).where(OutboxMessage.id == reminder.id)) == "wartend"


def test_resend_all_in_doubt_withdraws_the_overtaken_and_announces_the_rest(smtp_app, smtp):
    """The bulk decision follows the single one: an overtaken message is not sent again (it is
    withdrawn, saying why), the others return to the queue and their package hears of them."""
    from ki_post.outbox.steering import resend_unklar

    overtaken_request = queue("einladung-8", "Einladung", calendar="REQUEST")
    plain_request = queue("einladung-9", "Einladung", calendar="REQUEST", kind="einladung")
    db.session.execute(OutboxMessage.__table__.update().where(OutboxMessage.id.in_([overtaken_request.id, plain_request.id]))
                       .values(state="unklar", mailing_id=overtaken_request.mailing_id))
    queue("einladung-8", "Absage", calendar="CANCEL", kind="absage")
    seen: list[list[int]] = []

    def receiver(sender, message_ids) -> None:
        seen.append(list(message_ids))

    messages_returned.connect(receiver)
    try:
        db.session.expire_all()
        assert resend_unklar(db.session.get(OutboxMessage, overtaken_request.id).mailing, expected=2) == 1
    finally:
        messages_returned.disconnect(receiver)
    db.session.commit()
    assert seen == [[plain_request.id]]
    states = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.state)
                                     .where(OutboxMessage.id.in_([overtaken_request.id, plain_request.id]))).all())
    assert states == {overtaken_request.id: "zurueckgezogen", plain_request.id: "wartend"}
    assert "neuere Kalendernachricht" in db.session.get(OutboxMessage, overtaken_request.id).server_reply
