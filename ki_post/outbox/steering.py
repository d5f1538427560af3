"""What people decide about mailings and messages: release, pause, resume, cancel, send again, mark
as arrived, test send. Each decision is audited here; the views and commands only ask and report.

A message sent again may have been overtaken: when a later update or cancellation on its topic was
queued, it is never resent (``outbox.topics.overtaken``); otherwise the package that queued it hears of
it (``messages_returned``) before the worker tries again.
"""
from __future__ import annotations

from sqlalchemy import func, select, update

from ..auth.services import audit
from ..blobs import load_blob
from ..db_types import utcnow
from ..errors import ValidationError
from ..extensions import db
from .models import Mailing, MailingState, MessageState, OutboxMessage
from .services import Attachment, CalendarPart, create_mailing, enqueue, start_mailing
from .signals import messages_returned
from .topics import overtaken

OVERTAKEN_REASON = ("Nicht erneut gesendet: Eine neuere Kalendernachricht zum selben Anlass (Aktualisierung oder "
                    "Absage) ist schon unterwegs und enthält alles Nötige.")


def release(mailing: Mailing) -> None:
    """"Senden": a draft goes to the worker."""
    start_mailing(mailing)
    audit("aussendung.freigegeben", mailing)


def pause_mailing(mailing: Mailing, reason: str = "von Hand pausiert") -> None:
    if mailing.state != MailingState.AKTIV:
        raise ValidationError("Nur eine laufende Aussendung kann pausiert werden.")
    mailing.state = MailingState.PAUSIERT
    mailing.pause_reason = reason
    db.session.flush()
    audit("aussendung.pausiert", mailing, grund=reason)


def resume_mailing(mailing: Mailing) -> None:
    if mailing.state != MailingState.PAUSIERT:
        raise ValidationError("Nur eine pausierte Aussendung kann fortgesetzt werden.")
    mailing.state = MailingState.AKTIV
    mailing.pause_reason = ""
    mailing.failures_in_a_row = 0
    db.session.flush()
    audit("aussendung.fortgesetzt", mailing)


def cancel_mailing(mailing: Mailing) -> int:
    """Stop for good; waiting messages become ``abgebrochen``. Returns how many were cancelled."""
    if mailing.state == MailingState.ABGEBROCHEN:
        raise ValidationError("Die Aussendung ist bereits abgebrochen.")
    mailing.state = MailingState.ABGEBROCHEN
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.mailing_id == mailing.id, OutboxMessage.state == MessageState.WARTEND)
        .values(state=MessageState.ABGEBROCHEN)
    )
    db.session.flush()
    audit("aussendung.abgebrochen", mailing, anzahl=result.rowcount or 0)
    return result.rowcount or 0


def retry_failed(mailing: Mailing) -> int:
    """Queue failed messages again (same Message-ID). Returns how many."""
    if mailing.state == MailingState.ABGEBROCHEN:
        raise ValidationError("Eine abgebrochene Aussendung kann nicht erneut gesendet werden.")
    ids = list(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.mailing_id == mailing.id, OutboxMessage.state == MessageState.FEHLGESCHLAGEN)))
    if ids:
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.state == MessageState.FEHLGESCHLAGEN)
            .values(state=MessageState.WARTEND, next_attempt_at=utcnow(), first_failure_at=None, attempts=0),
            execution_options={"synchronize_session": "fetch"},
        )
    mailing.failures_in_a_row = 0
    db.session.flush()
    if ids:
        messages_returned.send(None, message_ids=ids)
    audit("aussendung.fehlgeschlagene-erneut", mailing, anzahl=len(ids))
    return len(ids)


def resend_message(message: OutboxMessage) -> None:
    """A person decided: the message in doubt did not arrive, send it again."""
    if message.state not in MessageState.NEEDS_DECISION:
        raise ValidationError("Nur unklare oder fehlgeschlagene Nachrichten können erneut gesendet werden.")
    if message.mailing.state == MailingState.ABGEBROCHEN:
        raise ValidationError("Die Aussendung ist abgebrochen.")
    if overtaken(message):
        raise ValidationError("Nach dieser Nachricht ging schon eine neuere Kalendernachricht zum selben Anlass an "
                              f"{message.to_email} (Aktualisierung oder Absage); sie enthält alles Nötige. Die ältere "
                              "Nachricht wird deshalb nicht erneut gesendet.")
    message.state = MessageState.WARTEND
    message.next_attempt_at = utcnow()
    message.first_failure_at = None
    message.claimed_by = None
    db.session.flush()
    messages_returned.send(None, message_ids=[message.id])
    audit("nachricht.erneut-gesendet", message)


def mark_message_sent(message: OutboxMessage) -> None:
    """A person decided: the message in doubt did arrive."""
    if message.state != MessageState.UNKLAR:
        raise ValidationError("Nur unklare Nachrichten können als gesendet markiert werden.")
    message.state = MessageState.GESENDET
    message.sent_at = message.claimed_at or utcnow()
    message.server_reply = (message.server_reply + " · als gesendet markiert").strip(" ·")
    db.session.flush()
    audit("nachricht.als-gesendet-markiert", message)


def _unklar_of(mailing: Mailing):
    return (OutboxMessage.mailing_id == mailing.id) & (OutboxMessage.state == MessageState.UNKLAR)


def count_unklar(mailing: Mailing) -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(_unklar_of(mailing))) or 0


def _check_unklar_count(mailing: Mailing, expected: int | None) -> None:
    """The decision was made for the number of messages shown; if more became unklar meanwhile
    (the worker still ran), ask again rather than decide for messages nobody looked at."""
    found = count_unklar(mailing)
    if not found:
        raise ValidationError("Die Aussendung hat keine unklaren Nachrichten.")
    if expected is not None and expected != found:
        raise ValidationError(f"Inzwischen sind {found} statt {expected} Nachrichten unklar. "
                              "Bitte prüfen Sie die Liste erneut und bestätigen Sie dann.")


def resend_unklar(mailing: Mailing, expected: int | None = None) -> int:
    """A person decided for every message in doubt of a mailing: they did not arrive, send them
    again (same Message-ID, so a mail client that has one already can tell). Returns how many.

    As with one message: a message a later update or cancellation on its topic has overtaken is not
    sent again (it is withdrawn, the later one says everything), and the package that queued the rest
    hears of them (``messages_returned``) so that what they say is brought up to date first."""
    if mailing.state == MailingState.ABGEBROCHEN:
        raise ValidationError("Die Aussendung ist abgebrochen.")
    _check_unklar_count(mailing, expected)
    doubtful = list(db.session.scalars(select(OutboxMessage).where(_unklar_of(mailing)).order_by(OutboxMessage.id)))
    stale = [message.id for message in doubtful if overtaken(message)]
    again = [message.id for message in doubtful if message.id not in stale]
    if stale:
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(stale))
            .values(state=MessageState.ZURUECKGEZOGEN, server_reply=OVERTAKEN_REASON),
            execution_options={"synchronize_session": "fetch"})
    if again:
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(again))
            .values(state=MessageState.WARTEND, next_attempt_at=utcnow(), first_failure_at=None, claimed_by=None),
            execution_options={"synchronize_session": "fetch"})
    db.session.flush()
    if again:
        messages_returned.send(None, message_ids=again)
    audit("aussendung.unklare-erneut", mailing, anzahl=len(again), zurueckgezogen=len(stale))
    return len(again)


def mark_unklar_sent(mailing: Mailing, expected: int | None = None) -> int:
    """A person decided for every message in doubt of a mailing: they did arrive. Returns how many."""
    _check_unklar_count(mailing, expected)
    result = db.session.execute(
        update(OutboxMessage).where(_unklar_of(mailing))
        .values(state=MessageState.GESENDET, sent_at=func.coalesce(OutboxMessage.claimed_at, utcnow()),
                server_reply=OutboxMessage.server_reply + " · als gesendet markiert"),
        execution_options={"synchronize_session": "fetch"},
    )
    db.session.flush()
    audit("aussendung.unklare-als-gesendet", mailing, anzahl=result.rowcount or 0)
    return result.rowcount or 0


def send_test(mailing: Mailing, email: str, name: str = "", message: OutboxMessage | None = None) -> Mailing:
    """Send one message of ``mailing`` (the first unless given) to a staff member, as its own mailing."""
    source = message or db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.mailing_id == mailing.id, OutboxMessage.state != MessageState.UEBERSPRUNGEN)
        .order_by(OutboxMessage.id).limit(1)
    )
    if source is None:
        raise ValidationError("Die Aussendung enthält keine Nachricht, die getestet werden könnte.")
    test = create_mailing("testversand", f"Test: {mailing.title}"[:300], created_by_id=mailing.created_by_id)
    enqueue(
        test,
        to_email=email,
        to_name=name,
        subject=f"[Test] {source.subject}"[:500],
        text=source.text,
        html=source.html,
        attachments=[Attachment(a.filename, a.mimetype, load_blob(a.blob_sha256)) for a in source.attachments],
        calendar=CalendarPart(source.calendar_method, source.calendar_data) if source.calendar_data is not None else None,
    )
    start_mailing(test)
    audit("aussendung.testversand", mailing, test_mailing=test.id)
    return test
