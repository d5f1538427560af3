"""The worker against a real aiosmtpd server on 127.0.0.1 (both backends)."""
from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import Attachment, create_mailing, enqueue, mailing_counts, mailing_progress, start_mailing
from ki_post.outbox.steering import cancel_mailing, pause_mailing, resume_mailing, retry_failed
from ki_post.outbox.worker import Worker
from tests.helpers import claim


def make_mailing(count: int, *, start: bool = True, prefix: str = "person") -> Mailing:
    mailing = create_mailing("rundschreiben", "Rundschreiben 1/2017")
    for number in range(count):
        enqueue(mailing, to_email=f"{prefix}{number}@kreis.example", to_name=f"Person {number}",
                subject="Rundschreiben: Förderung", text=f"Hallo Person {number}\n",
                attachments=[Attachment("rundschreiben.pdf", "application/pdf", b"%PDF-1.7 " + b"x" * 2000)])
    if start:
        start_mailing(mailing)
    db.session.commit()
    return mailing


def states(mailing_id: int) -> dict[str, int]:
    db.session.expire_all()
    return {k: v for k, v in mailing_counts(mailing_id).items() if v}


def test_batch_sent_once_each(smtp_app, smtp):
    mailing = make_mailing(12)
    summary = Worker(smtp_app).run(once=True)
    assert summary.sent == 12
    assert Counter(smtp.recipients()) == Counter(f"person{n}@kreis.example" for n in range(12))
    assert states(mailing.id) == {"gesendet": 12}
    first = smtp.messages()[0]
    assert first["Subject"] == "Rundschreiben: Förderung"
    assert [p.get_filename() for p in first.iter_attachments()] == ["rundschreiben.pdf"]
    # Exactly what the row holds went out (render at enqueue): same Message-ID.
    ids = {m["Message-ID"] for m in smtp.messages()}
    assert ids == set(db.session.scalars(select(OutboxMessage.message_id)))
    # One SMTP connection carried the whole batch, with TCP_NODELAY (no ~40 ms Nagle wait per message).
    assert len({r.peer for r in smtp.handler.received}) == 1
    # A second run finds nothing to do and sends nothing again.
    assert Worker(smtp_app).run(once=True).sent == 0
    assert len(smtp.handler.received) == 12


def test_date_header_is_the_moment_of_sending_not_of_enqueueing(smtp_app, smtp):
    mailing = make_mailing(2, start=False)
    three_days_ago = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=3)
    db.session.execute(update(OutboxMessage).values(date=three_days_ago))  # a draft that waited
    start_mailing(mailing)
    db.session.commit()
    Worker(smtp_app).run(once=True)
    db.session.expire_all()
    rows = {m.message_id: m for m in db.session.scalars(select(OutboxMessage))}
    for received in smtp.messages():
        date = parsedate_to_datetime(received["Date"])
        assert abs((datetime.now(timezone.utc) - date).total_seconds()) < 60
        assert rows[received["Message-ID"]].date == date  # the row still shows what went out


def test_draft_and_paused_mailings_are_not_sent(smtp_app, smtp):
    draft = make_mailing(2, start=False, prefix="entwurf")
    paused = make_mailing(2, prefix="pause")
    pause_mailing(paused)
    db.session.commit()
    assert Worker(smtp_app).run(once=True).sent == 0
    assert smtp.handler.received == []
    resume_mailing(paused)
    start_mailing(draft)
    db.session.commit()
    assert Worker(smtp_app).run(once=True).sent == 4
    assert sorted(smtp.recipients()) == sorted(["entwurf0@kreis.example", "entwurf1@kreis.example",
                                                "pause0@kreis.example", "pause1@kreis.example"])


def test_4xx_is_retried_then_sent(smtp_app, smtp):
    smtp.handler.temporary_failures["person1@kreis.example"] = 2
    mailing = make_mailing(3)
    Worker(smtp_app).run(once=True)
    assert Counter(smtp.recipients()) == Counter({f"person{n}@kreis.example": 1 for n in range(3)})
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == "person1@kreis.example"))
    assert message.state == "gesendet" and message.attempts == 3
    assert states(mailing.id) == {"gesendet": 3}


def test_4xx_beyond_retry_window_fails(smtp_app, smtp):
    smtp_app.config["MAIL_RETRY_HOURS"] = 0
    smtp.handler.temporary_failures["person0@kreis.example"] = 99
    mailing = make_mailing(1)
    Worker(smtp_app).run(once=True)
    message = db.session.scalar(select(OutboxMessage))
    assert message.state == "fehlgeschlagen" and message.server_reply.startswith("451 4.3.0")
    assert states(mailing.id) == {"fehlgeschlagen": 1}


def test_5xx_fails_with_reply_shown(smtp_app, smtp):
    smtp.handler.rcpt_replies["person1@kreis.example"] = "550 5.1.1 Postfach unbekannt"
    mailing = make_mailing(3)
    summary = Worker(smtp_app).run(once=True)
    assert (summary.sent, summary.failed) == (2, 1)
    assert "person1@kreis.example" not in smtp.recipients()
    failed = db.session.scalar(select(OutboxMessage).where(OutboxMessage.state == "fehlgeschlagen"))
    assert failed.to_email == "person1@kreis.example"
    assert failed.server_reply == "550 5.1.1 Postfach unbekannt"
    # shown per recipient on the mailing page
    from ki_post.auth.services import create_user
    from tests.helpers import PASSWORD

    create_user("lesen@ministerium.example", "Lesen", "lesen", PASSWORD)
    db.session.commit()
    client = smtp_app.test_client()
    client.login("lesen@ministerium.example")
    page = client.get(f"/postausgang/{mailing.id}").get_data(as_text=True)
    assert "550 5.1.1 Postfach unbekannt" in page
    # retry failed: the server now accepts
    del smtp.handler.rcpt_replies["person1@kreis.example"]
    assert retry_failed(db.session.get(Mailing, mailing.id)) == 1
    db.session.commit()
    Worker(smtp_app).run(once=True)
    assert Counter(smtp.recipients())["person1@kreis.example"] == 1
    assert states(mailing.id) == {"gesendet": 3}


def test_mailing_pauses_itself_after_failures_in_a_row(smtp_app, smtp):
    smtp_app.config["MAIL_PAUSE_AFTER_FAILURES"] = 3
    for n in range(4):
        smtp.handler.rcpt_replies[f"person{n}@kreis.example"] = "550 5.7.1 Abgelehnt"
    mailing = make_mailing(8)
    Worker(smtp_app).run(once=True)
    db.session.expire_all()
    mailing = db.session.get(Mailing, mailing.id)
    assert mailing.state == "pausiert"
    assert "3 Fehlern in Folge" in mailing.pause_reason and "550 5.7.1 Abgelehnt" in mailing.pause_reason
    assert states(mailing.id) == {"fehlgeschlagen": 3, "wartend": 5}
    assert smtp.handler.received == []


def test_server_down_waits_and_resumes(smtp_app, smtp):
    smtp.stop()
    mailing = make_mailing(3)
    summary = Worker(smtp_app).run(once=True)
    assert summary.sent == 0 and summary.stopped_because == "SMTP-Server nicht erreichbar"
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.attempts > 0))
    assert message.state == "wartend" and "nicht erreichbar" in message.server_reply
    assert states(mailing.id) == {"wartend": 3}
    smtp.start()
    time.sleep(0.2)  # the first retry is due after MAIL_RETRY_BASE_SECONDS (0.05 s in tests)
    Worker(smtp_app).run(once=True)
    assert Counter(smtp.recipients()) == Counter({f"person{n}@kreis.example": 1 for n in range(3)})
    assert states(mailing.id) == {"gesendet": 3}


def test_rate_limit_spaces_messages(smtp_app, smtp):
    smtp_app.config["MAIL_RATE_PER_MINUTE"] = 120  # one every 0.5 s
    mailing = make_mailing(4)
    Worker(smtp_app).run(once=True)
    assert states(mailing.id) == {"gesendet": 4}
    assert len(smtp.handler.received) == 4
    # Each claim (the moment a send may begin) is at least 60/120 s after the previous one,
    # measured by the database clock the limit itself uses; this holds across workers.
    claims = sorted(db.session.scalars(select(OutboxMessage.claimed_at)))
    assert all((b - a).total_seconds() >= 0.5 for a, b in zip(claims, claims[1:])), claims


def test_daily_cap(smtp_app, smtp):
    smtp_app.config["MAIL_DAILY_CAP"] = 2
    mailing = make_mailing(4)
    summary = Worker(smtp_app).run(once=True)
    assert summary.sent == 2 and summary.stopped_because == "Tageslimit erreicht"
    assert states(mailing.id) == {"gesendet": 2, "wartend": 2}


def test_claim_commit_failing_after_the_envelope_began_sends_nothing(smtp_app, smtp):
    """The SMTP envelope (MAIL, RCPT, DATA) is exchanged while the claim commits; when that commit
    fails, the data must not follow: the transaction is abandoned and the message stays waiting."""
    mailing = make_mailing(2)
    worker = Worker(smtp_app)
    begin = worker.transport.begin
    failing = {"armed": False}

    def begin_and_arm(envelope):
        failing["armed"] = True
        return begin(envelope)

    def fail_the_claim_commit(session):
        if failing["armed"]:
            failing["armed"] = False
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    worker.transport.begin = begin_and_arm
    event.listen(Session, "before_commit", fail_the_claim_commit)
    try:
        with pytest.raises(OperationalError):
            worker.run(once=True)
    finally:
        event.remove(Session, "before_commit", fail_the_claim_commit)
    assert smtp.handler.received == []
    assert states(mailing.id) == {"wartend": 2}
    assert Worker(smtp_app).run(once=True).sent == 2
    assert Counter(smtp.recipients()) == Counter({"person0@kreis.example": 1, "person1@kreis.example": 1})


def test_pause_while_a_message_is_in_flight_stops_the_one_read_ahead(smtp_app, smtp):
    """While the server digests a message the worker reads and builds the next one; the commit that
    claims it re-checks the mailing, so a pause in that moment sends nothing more."""
    mailing = make_mailing(5)

    def pause_during_first(rcpt: str) -> None:
        if rcpt == "person0@kreis.example":
            time.sleep(0.3)  # the worker reads ahead meanwhile (it has sent the data, the reply waits)
            with smtp_app.app_context():
                pause_mailing(db.session.get(Mailing, mailing.id))
                db.session.commit()

    smtp.handler.on_data = pause_during_first
    summary = Worker(smtp_app).run(once=True)
    assert smtp.recipients() == ["person0@kreis.example"]
    assert summary.sent == 1
    assert states(mailing.id) == {"gesendet": 1, "wartend": 4}


def test_claim_walks_the_due_index_even_with_statistics_from_before_the_mailing(smtp_app, backend):
    """PostgreSQL plans the claim once per connection (generic plan). With statistics taken while
    nothing waited, it sorted every waiting row for each claim: quadratic in the mailing's size.
    Two things keep the plan on the due index (either alone suffices, checked by removing each):
    no other index on ``state``, and start_mailing refreshing the statistics."""
    if backend != "postgresql":
        pytest.skip("Abfragepläne: nur PostgreSQL")

    def copies(of: Mailing, count: int, state: str) -> None:
        db.session.execute(text(
            "INSERT INTO outbox_messages (mailing_id, from_header, reply_to, to_email, to_name, subject, message_id, date,"
            " text, state, attempts, next_attempt_at, server_reply, eml_file, created_at)"
            " SELECT mailing_id, from_header, reply_to, to_email, to_name, subject, '<' || g || message_id, date, text,"
            " :state, 0, next_attempt_at, '', '', created_at"
            " FROM outbox_messages, generate_series(1, :count) AS g WHERE mailing_id = :mailing"),
            {"state": state, "count": count, "mailing": of.id})

    old = make_mailing(1, prefix="alt")
    copies(old, 3000, "gesendet")
    mailing = make_mailing(1, start=False)
    copies(mailing, 3000, "gesendet")
    db.session.execute(text("ANALYZE outbox_messages"))  # statistics: nothing waiting
    # The new mailing's rows become due without new statistics, as after enqueueing.
    db.session.execute(update(OutboxMessage).where(OutboxMessage.mailing_id == mailing.id).values(state="wartend"))
    start_mailing(mailing)
    db.session.commit()

    compiled = Worker(smtp_app)._due_statement.compile(dialect=db.engine.dialect)
    sql = compiled.string
    for name, value in compiled.params.items():
        sql = sql.replace(f"%({name})s", "$1" if name == "now" else f"'{value}'")
    db.session.execute(text("SET plan_cache_mode = force_generic_plan"))
    db.session.execute(text(f"PREPARE due_probe(timestamp) AS {sql}"))
    plan = "\n".join(db.session.scalars(text("EXPLAIN EXECUTE due_probe(now() AT TIME ZONE 'UTC')")))
    db.session.rollback()
    db.session.execute(text("DEALLOCATE ALL"))
    db.session.execute(text("RESET plan_cache_mode"))
    assert "ix_outbox_messages_due" in plan, plan
    assert "Sort" not in plan, plan


def test_cancel_stops_waiting_messages(smtp_app, smtp):
    mailing = make_mailing(3)
    assert cancel_mailing(mailing) == 3
    db.session.commit()
    assert Worker(smtp_app).run(once=True).sent == 0
    assert states(mailing.id) == {"abgebrochen": 3}


def test_dead_worker_claim_becomes_unklar_and_can_be_resolved(smtp_app, smtp):
    from ki_post.outbox.models import OutboxWorker
    from ki_post.outbox.steering import mark_message_sent, resend_message

    mailing = make_mailing(3)
    # A worker on this host whose process is gone claimed one message and never confirmed it.
    dead = Worker(smtp_app, worker_id="toter-worker")
    dead.pid = 2 ** 22 + 12345  # beyond pid_max on Linux: certainly not running
    dead.heartbeat(force=True)
    db.session.get(OutboxWorker, "toter-worker").pid = dead.pid
    db.session.commit()
    claimed = claim(dead)
    summary = Worker(smtp_app).run(once=True)
    assert summary.sent == 2 and summary.recovered_unklar == 1
    message = db.session.get(OutboxMessage, claimed)
    assert message.state == "unklar" and "unklar" in message.server_reply
    assert message.to_email not in smtp.recipients()
    assert mailing_progress(db.session.get(Mailing, mailing.id))["unklar"] == 1
    resend_message(message)
    db.session.commit()
    Worker(smtp_app).run(once=True)
    assert Counter(smtp.recipients())[message.to_email] == 1
    with pytest.raises(Exception, match="Nur unklare"):
        mark_message_sent(db.session.get(OutboxMessage, claimed))


def test_live_worker_claim_is_left_alone(smtp_app, smtp):
    make_mailing(2)
    other = Worker(smtp_app, worker_id="anderer-lebender-worker")
    other.heartbeat(force=True)
    claimed = claim(other)
    Worker(smtp_app).run(once=True)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, claimed).state == "in_arbeit"


def test_file_transport_writes_eml_marked_not_sent(app, tmp_path):
    from ki_post.outbox.services import eml_files, read_eml

    app.config["MAIL_RATE_PER_MINUTE"] = 0
    mailing = make_mailing(2)
    summary = Worker(app).run(once=True)
    assert summary.sent == 2
    files = eml_files()
    assert len(files) == 2
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
    assert message.eml_file and "nicht versendet" in message.server_reply
    assert message.state_label == "nicht versendet (als Datei abgelegt)"
    assert read_eml(message.eml_file).startswith(b"From: ")
    assert states(mailing.id) == {"gesendet": 2}


def test_smtp_socket_has_tcp_nodelay(smtp_app, smtp):
    import socket

    from ki_post.outbox.worker import SmtpTransport

    transport = SmtpTransport(smtp_app)
    try:
        assert transport._host().sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        transport.close()


def test_withdrawn_and_skipped_messages_are_never_sent(smtp_app, smtp):
    """A message withdrawn before it was claimed and a recipient skipped at enqueue stay unsent; the
    rest of the mailing goes out, and the progress counts them apart from cancelled ones."""
    from ki_post.outbox.services import mailing_progress, skip_recipient, withdraw_messages

    mailing = create_mailing("rundschreiben", "Rundschreiben")
    kept = [enqueue(mailing, to_email=f"p{i}@kreis.example", subject="Betreff", text="Text\n") for i in range(3)]
    withdrawn = enqueue(mailing, to_email="erased@kreis.example", subject="Betreff", text="Text\n")
    skip_recipient(mailing, to_email="kaputt@@kreis.example", to_name="Kaputt\r\nBcc: x", reason="Adresse ungültig")
    start_mailing(mailing)
    db.session.flush()
    assert withdraw_messages(OutboxMessage.to_email == "erased@kreis.example", "gelöscht") == 1
    db.session.commit()

    Worker(smtp_app).run(once=True)

    assert sorted(smtp.recipients()) == sorted(m.to_email for m in kept)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, withdrawn.id).state == "zurueckgezogen"
    progress = mailing_progress(mailing)
    assert (progress["sent"], progress["withdrawn"], progress["skipped"], progress["cancelled"]) == (3, 1, 1, 0)
    assert progress["finished"]
    skipped = db.session.scalar(select(OutboxMessage).where(OutboxMessage.state == "uebersprungen"))
    assert skipped.server_reply == "Adresse ungültig" and "\n" not in skipped.to_name
    # A withdrawn message is beyond a resend; claimed ones are beyond a withdrawal.
    assert withdraw_messages(OutboxMessage.mailing_id == mailing.id, "zu spät") == 0


def test_mailing_of_only_skipped_recipients_cannot_start(app):
    from ki_post.outbox.services import skip_recipient

    mailing = create_mailing("rundschreiben", "Rundschreiben")
    skip_recipient(mailing, to_email="x@", reason="Adresse ungültig")
    with pytest.raises(ValidationError, match="keine Nachrichten, die gesendet werden können"):
        start_mailing(mailing)


def test_a_slow_server_raises_the_staleness_threshold(app):
    """A living worker waiting on a slow server (MAIL_TIMEOUT) is not taken for dead."""
    app.config.update(OUTBOX_WORKER_STALE_SECONDS=120, MAIL_TIMEOUT=30)
    assert Worker(app).stale_seconds == 120
    app.config["MAIL_TIMEOUT"] = 60
    assert Worker(app).stale_seconds == 240


def test_background_work_goes_on_while_a_message_waits_for_its_retry(smtp_app, smtp):
    """A message due in ten minutes (a retry) must not hold up automatic reminders or letter jobs."""
    import threading

    from ki_post.outbox import background

    mailing = make_mailing(1)
    db.session.execute(update(OutboxMessage).where(OutboxMessage.mailing_id == mailing.id)
                       .values(next_attempt_at=datetime.now(timezone.utc) + timedelta(minutes=10)))
    db.session.commit()
    worker = Worker(smtp_app)
    ran = threading.Event()

    def task() -> bool:
        ran.set()
        worker.stop_event.set()
        return False

    background.register_background_task(task)
    try:
        def run() -> None:
            with smtp_app.app_context():
                worker.run(poll_seconds=0.2)

        thread = threading.Thread(target=run)
        thread.start()
        finished = ran.wait(5)
        worker.stop_event.set()
        thread.join(10)
    finally:
        background._tasks.remove(task)
    assert finished, "the background task never ran while a message waited for its retry"
    assert smtp.recipients() == []
