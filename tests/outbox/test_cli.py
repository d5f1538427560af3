"""`flask outbox …` commands (thin wrappers over the services)."""
from __future__ import annotations

from sqlalchemy import select

from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing


def make_mailing(count: int = 3, start: bool = True) -> int:
    mailing = create_mailing("rundschreiben", "Rundschreiben CLI")
    for number in range(count):
        enqueue(mailing, to_email=f"p{number}@kreis.example", subject="Betreff", text="Text\n")
    if start:
        start_mailing(mailing)
    db.session.commit()
    return mailing.id


def test_status_lines_per_state(runner):
    mailing_id = make_mailing()
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
    message.state = "unklar"
    db.session.commit()
    result = runner.invoke(args=["outbox", "status", str(mailing_id)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "unklar: 1" in lines and "wartend: 2" in lines and "gesendet: 0" in lines
    assert runner.invoke(args=["outbox", "status"]).output.count("unklar: 1") == 1
    result = runner.invoke(args=["outbox", "status", "999"])
    assert result.exit_code != 0 and "gibt es nicht" in result.output


def test_pause_resume_cancel_retry(runner):
    mailing_id = make_mailing()
    assert "pausiert" in runner.invoke(args=["outbox", "pause", str(mailing_id)]).output
    db.session.expire_all()
    assert db.session.get(Mailing, mailing_id).state == "pausiert"
    result = runner.invoke(args=["outbox", "pause", str(mailing_id)])
    assert result.exit_code != 0 and "Nur eine laufende" in result.output
    runner.invoke(args=["outbox", "resume", str(mailing_id)])
    db.session.expire_all()
    assert db.session.get(Mailing, mailing_id).state == "aktiv"
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
    message.state = "fehlgeschlagen"
    db.session.commit()
    assert "1 fehlgeschlagene" in runner.invoke(args=["outbox", "retry-failed", str(mailing_id)]).output
    result = runner.invoke(args=["outbox", "cancel", str(mailing_id)])
    assert "3 Nachrichten nicht gesendet" in result.output
    db.session.expire_all()
    assert {m.state for m in db.session.scalars(select(OutboxMessage))} == {"abgebrochen"}


def test_work_once_with_file_transport(runner, app):
    app.config["MAIL_RATE_PER_MINUTE"] = 0
    mailing_id = make_mailing(2)
    result = runner.invoke(args=["outbox", "work", "--once"])
    assert result.exit_code == 0, result.output
    assert "gesendet: 2" in result.output
    assert "unklar: 0" in runner.invoke(args=["outbox", "status", str(mailing_id)]).output


def test_unklar_resend_and_mark_sent(runner):
    make_mailing(2)
    first, second = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    first.state = second.state = "unklar"
    db.session.commit()
    listing = runner.invoke(args=["outbox", "unklar"]).output
    assert "p0@kreis.example" in listing and "p1@kreis.example" in listing
    runner.invoke(args=["outbox", "resend", str(first.id)])
    runner.invoke(args=["outbox", "mark-sent", str(second.id)])
    db.session.expire_all()
    assert db.session.get(OutboxMessage, first.id).state == "wartend"
    assert db.session.get(OutboxMessage, second.id).state == "gesendet"
    from ki_post.auth.models import AuditEntry

    # Decisions about messages are audited on the command line as in the browser (in the service).
    assert {(entry.action, entry.object_id) for entry in db.session.scalars(select(AuditEntry))} >= {
        ("nachricht.erneut-gesendet", first.id), ("nachricht.als-gesendet-markiert", second.id)}
    result = runner.invoke(args=["outbox", "mark-sent", str(second.id)])
    assert result.exit_code != 0 and "Nur unklare" in result.output
