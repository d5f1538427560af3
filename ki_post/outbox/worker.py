"""The sending worker: claims due messages, sends them, records each result.

Crash safety: a message is committed as ``in_arbeit`` (with worker id and time) BEFORE its data go
to the server and as ``gesendet`` right after the server took them. A worker that dies in between
leaves its row ``in_arbeit``; the next worker sees that the claiming worker is gone (same host: its
process no longer exists; any host: its heartbeat is older than ``OUTBOX_WORKER_STALE_SECONDS``)
and marks the row ``unklar`` for a person to decide (resend or mark as sent) — never resent
silently.

Transports (SMTP, .eml files) live in ``transport.py``, the MIME bytes in ``mime.py``.

Read-ahead: while the server digests the message in flight, the worker finds the next due
message and builds its bytes, writing nothing; the commit that records the message in flight
claims it with a conditional UPDATE (still due, mailing still active, limits kept). During that
commit a helper thread already exchanges MAIL, RCPT and DATA (nothing is delivered before the data
and their final dot, which follow only after the commit). So between two messages only that one
commit remains, and a crash leaves at most the message in flight in doubt. On PostgreSQL the read-ahead row is locked (``FOR UPDATE SKIP LOCKED``) until that
commit, so parallel workers do not read the same row. No read-ahead under a rate limit.

Claiming: the due row is read (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), then claimed by id with a
conditional UPDATE; SQLite runs one writer at a time, so a row another worker took in between
simply is not claimed. Rate limit and daily cap are conditions of that UPDATE, evaluated against
the database, so they hold across any number of workers (PostgreSQL serialises limited claims with
a transaction-level advisory lock).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import cached_property
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError

from .. import health
from ..db_types import UTCDateTime, utcnow
from ..extensions import db
from . import services
from .models import Mailing, MailingState, MessageState, OutboxAttachment, OutboxMessage, OutboxWorker
from .following import SettingsFollowing
from .outage import OutageHandling, rollback as _rollback
from .background import run_background_tasks
from .recovery import Recovery
from .signals import messages_returned
from .transport import (  # noqa: F401  (re-exported: tests and callers import them from here)
    Envelope,
    FILE_REPLY, FileTransport,
    InDoubt,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    make_transport,
)

log = logging.getLogger(__name__)
BERLIN = ZoneInfo("Europe/Berlin")
_ADVISORY_LOCK = 0x4B49504F  # "KIPO": serialises rate-limited claims across PostgreSQL workers
_DB_WAIT_MAX = 5.0  # longest pause between two tries while the database is away (seconds)
_DB_WAIT_ONCE = 300.0  # ``--once`` gives up after the database was away this long



# The per-message statements run on the Core tables and are built once: the ORM's bulk-update
# machinery and rebuilding the expressions cost more CPU than the SMTP exchange itself.
_messages = OutboxMessage.__table__
_active_mailings = select(Mailing.__table__.c.id).where(Mailing.__table__.c.state == MailingState.AKTIV)
_MESSAGE_COLUMNS = [_messages.c[name] for name in (
    "id", "mailing_id", "from_header", "reply_to", "to_email", "to_name", "subject", "message_id", "date", "text",
    "html", "calendar_method", "calendar_data", "revision", "bounce_token",
)]
_ATTACHMENTS = (
    select(OutboxAttachment.__table__.c.filename, OutboxAttachment.__table__.c.mimetype, OutboxAttachment.__table__.c.blob_sha256)
    .where(OutboxAttachment.__table__.c.message_id == bindparam("row_id"))
    .order_by(OutboxAttachment.__table__.c.position)
)


def _ready(m, now):
    """Conditions besides "due" under which a message may be claimed now.

    Not expired. And, for a message with a topic, no earlier message on that topic still on its way:
    in flight (claimed) or waiting in a released mailing. A recipient thus gets the messages of one
    topic in the order they were queued, across any number of workers: a cancellation never
    overtakes the invitation still in flight (a calendar that sees CANCEL before REQUEST keeps the
    event). Waiting in a draft or paused mailing does not hold the later ones back: whoever queues a
    later message brings or withdraws the earlier unsent ones first (see ``outbox.topics``).
    """
    earlier = _messages.alias("earlier")
    on_its_way = or_(earlier.c.state == MessageState.IN_ARBEIT,
                     and_(earlier.c.state == MessageState.WARTEND, earlier.c.mailing_id.in_(_active_mailings)))
    blocked = exists().where(earlier.c.topic == m.topic, earlier.c.id < m.id, on_its_way)
    return [or_(m.expires_at.is_(None), m.expires_at > now), or_(m.topic.is_(None), ~blocked)]


_RECORD_SENT = (
    update(_messages).where(_messages.c.id == bindparam("row_id"))
    .values(state=MessageState.GESENDET, sent_at=bindparam("sent_now"), server_reply=bindparam("reply"),
            attempts=_messages.c.attempts + 1, eml_file=bindparam("eml"))
)


@dataclass
class _MessageData:
    """The columns of a claimed row, enough for build_mime (no ORM object per message)."""

    id: int
    mailing_id: int
    from_header: str
    reply_to: str
    to_email: str
    to_name: str
    subject: str
    message_id: str
    date: datetime
    text: str
    html: str | None
    calendar_method: str | None
    calendar_data: bytes | None
    revision: int
    bounce_token: str | None
    attachments: list


@dataclass(frozen=True)
class Prepared:
    envelope: Envelope
    data: bytes
    date: datetime  # the Date header in ``data``; the claim stores it in the row
    revision: int  # the content ``data`` was built from; rewritten meanwhile means not claimed


# --- Worker ------------------------------------------------------------------------------------

@dataclass
class Summary:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unklar: int = 0
    recovered_unklar: int = 0
    stopped_because: str = ""

    def line(self) -> str:
        text = (f"gesendet: {self.sent}, später erneut: {self.retry}, fehlgeschlagen: {self.failed}, "
                f"unklar: {self.unklar + self.recovered_unklar}")
        return text + (f" ({self.stopped_because})" if self.stopped_because else "")


def _header_date() -> datetime:
    return utcnow().replace(microsecond=0)


def _berlin_day_start(now: datetime) -> datetime:
    return now.astimezone(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)


class Worker(OutageHandling, Recovery, SettingsFollowing):
    def __init__(self, app: Flask, worker_id: str | None = None, transport=None):
        self.app = app
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.id = worker_id or f"{self.hostname}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._follow(transport)
        self._last_beat = 0.0
        self._last_recovery = 0.0
        self._encoded: dict[str, bytes] = {}  # base64 of shared attachments, per sha256
        self._mailings_reset: set[int] = set()
        self._ahead: Prepared | None = None  # read and built while the message before was in flight
        self._begun: Future | None = None  # SMTP transaction of the claimed message, started during its commit
        self.stop_event = threading.Event()

    # claiming
    @property
    def _rate_limited(self) -> bool:
        return int(self.app.config["MAIL_RATE_PER_MINUTE"] or 0) > 0

    @cached_property
    def _due_statement(self):
        """The next due row's columns (parameter: now); locked on PostgreSQL, other workers skip it."""
        m = _messages.c
        now = bindparam("now", type_=UTCDateTime)
        statement = (select(*_MESSAGE_COLUMNS)
                     .where(m.state == MessageState.WARTEND, m.next_attempt_at <= now, m.mailing_id.in_(_active_mailings),
                            *_ready(m, now))
                     .order_by(m.next_attempt_at, m.id).limit(1))
        if db.engine.dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True, of=_messages)
        return statement

    def _build_claim_statement(self):
        m = _messages.c
        now = bindparam("now", type_=UTCDateTime)
        conditions = [m.id == bindparam("row_id"), m.revision == bindparam("built_revision"), m.state == MessageState.WARTEND,
                      m.next_attempt_at <= now, m.mailing_id.in_(_active_mailings), *_ready(m, now)]
        if self._rate_limited:
            conditions.append(select(func.count()).select_from(_messages)
                              .where(m.claimed_at > bindparam("rate_since", type_=UTCDateTime)).scalar_subquery() == 0)
        cap = int(self.app.config["MAIL_DAILY_CAP"] or 0)
        if cap > 0:
            conditions.append(select(func.count()).select_from(_messages)
                              .where(or_(m.sent_at >= bindparam("day_start", type_=UTCDateTime), m.state == MessageState.IN_ARBEIT))
                              .scalar_subquery() < cap)
        # The Date header is the moment of sending, not of enqueueing (a draft may wait for days).
        return update(_messages).where(*conditions).values(
            state=MessageState.IN_ARBEIT, claimed_by=bindparam("worker"), claimed_at=now, date=bindparam("header_date"))

    def _claim_by_id(self, row_id: int, revision: int, header_date: datetime) -> bool:
        now = utcnow()
        params = {"row_id": row_id, "built_revision": revision, "now": now, "worker": self.id, "header_date": header_date}
        capped = int(self.app.config["MAIL_DAILY_CAP"] or 0) > 0
        if self._rate_limited:
            params["rate_since"] = now - timedelta(seconds=60.0 / int(self.app.config["MAIL_RATE_PER_MINUTE"]))
        if capped:
            params["day_start"] = _berlin_day_start(now)
        if (self._rate_limited or capped) and db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        return db.session.execute(self._claim_statement, params).rowcount == 1

    def _next_due(self):
        return db.session.execute(self._due_statement, {"now": utcnow()}).one_or_none()

    def _prepare(self, row, header_date: datetime) -> Prepared:
        attachments = db.session.execute(_ATTACHMENTS, {"row_id": row.id}).all()
        message = _MessageData(**{**row._asdict(), "date": header_date}, attachments=attachments)
        data = services.build_mime(message, self._load_blobs(message), self._encoded)
        return Prepared(Envelope(parseaddr(row.from_header)[1], row.to_email, row.mailing_id, row.id), data, header_date,
                        row.revision)

    def claim_next(self, result: tuple[Envelope, str | Exception] | None = None, *,
                   begin_sending: bool = False) -> tuple[Prepared | None, str | None]:
        """One transaction: record the previous message's result, claim the next, commit.

        The claim is committed before the message's data go out; folding the previous result into
        the same commit halves the commits per message without weakening crash safety. With
        ``begin_sending`` the SMTP envelope (MAIL, RCPT, DATA) is exchanged during the commit.
        """
        outcome = self._record(*result) if result else None
        ahead, self._ahead = self._ahead, None
        prepared = None
        if ahead is not None and self._claim_by_id(ahead.envelope.message_id, ahead.revision, ahead.date):
            prepared = ahead
        else:  # nothing read ahead, or that row was paused, cancelled, rewritten or taken meanwhile
            row, header_date = self._next_due(), _header_date()
            if row is not None and self._claim_by_id(row.id, row.revision, header_date):
                prepared = self._prepare(row, header_date)
        begun = self.transport.begin(prepared.envelope) if prepared and begin_sending else None
        try:
            db.session.commit()
        except BaseException:
            if begun is not None:
                self.transport.abandon(begun)
            raise
        self._begun = begun
        return prepared, outcome

    def read_ahead(self) -> None:
        """Find and build the next due message while the server digests the one in flight.

        Writes nothing and never raises: without a read-ahead the next claim simply does the work.
        """
        if self._ahead is not None or self._rate_limited:
            return
        try:
            row = self._next_due()
            self._ahead = self._prepare(row, _header_date()) if row is not None else None
        except Exception:  # noqa: BLE001 - the message in flight must still get its reply read
            db.session.rollback()
            log.warning("Vorauslesen der nächsten Nachricht fehlgeschlagen", exc_info=True)

    def next_due_in(self) -> float | None:
        """Seconds until something may be due (None: nothing waiting in an active mailing)."""
        m = _messages.c
        soonest = db.session.scalar(
            select(func.min(m.next_attempt_at)).where(m.state == MessageState.WARTEND, m.mailing_id.in_(_active_mailings),
                                                      *_ready(m, utcnow()))
        )
        db.session.commit()
        if soonest is None:
            return None
        return max(0.0, (soonest - utcnow()).total_seconds())

    def _load_blobs(self, message: _MessageData) -> dict[str, bytes]:
        from ..blobs import load_blob

        if len(self._encoded) > 64:
            self._encoded.clear()
        return {a.blob_sha256: load_blob(a.blob_sha256) for a in message.attachments if a.blob_sha256 not in self._encoded}

    # one message
    def _attempt(self, prepared: Prepared) -> str | Exception:
        try:
            begun, self._begun = self._begun, None
            return self.transport.send(prepared.envelope, prepared.data, while_waiting=self.read_ahead, begun=begun)
        except (TemporaryFailure, PermanentFailure, InDoubt) as error:
            return error

    def _record(self, envelope: Envelope, result: str | Exception) -> str:
        """The statements that store one result (the caller commits)."""
        message_id = envelope.message_id
        if isinstance(result, TemporaryFailure):
            outcome = self._temporary(db.session.get(OutboxMessage, message_id, populate_existing=True), result.reply)
            if result.connection:
                outcome = "verbindung:" + outcome
        elif isinstance(result, PermanentFailure):
            outcome = self._permanent(db.session.get(OutboxMessage, message_id, populate_existing=True), result)
        elif isinstance(result, InDoubt):
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(
                state=MessageState.UNKLAR, server_reply=result.reply))
            self._count_failure(envelope.mailing_id, result.reply, in_doubt=True)
            outcome = "unklar"
        else:
            db.session.execute(_RECORD_SENT, {
                "row_id": message_id, "sent_now": utcnow(), "reply": result,
                "eml": result.split()[-1] if result.startswith(FILE_REPLY) else ""})
            if envelope.mailing_id not in self._mailings_reset:
                # A success ends a run of failures; once per mailing unless this worker saw one fail.
                db.session.execute(update(Mailing).where(Mailing.id == envelope.mailing_id, Mailing.failures_in_a_row != 0)
                                   .values(failures_in_a_row=0))
                self._mailings_reset.add(envelope.mailing_id)
            return "gesendet"
        self._mailings_reset.discard(envelope.mailing_id)
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                           .values(attempts=OutboxMessage.attempts + 1))
        if outcome.removeprefix("verbindung:") in ("wartend", "fehlgeschlagen"):
            self._announce_returned(message_id)
        return outcome

    def _announce_returned(self, message_id: int) -> None:
        """Let the package that queued the message bring it (and what it planned after it) up to date
        before it is tried again. Never stops the worker: a receiver's problem only costs that."""
        if not messages_returned.receivers:
            return
        postgres = db.engine.dialect.name == "postgresql"
        if postgres:
            # A receiver may wait for rows a web request is rewriting, while that request waits for the
            # row this worker read ahead: give up first (before PostgreSQL's deadlock check at 1 s) so
            # that the request goes through; this message then only misses its update.
            db.session.execute(text("SET LOCAL lock_timeout = '500ms'"))
        try:
            with db.session.begin_nested():
                messages_returned.send(None, message_ids=[message_id])
        except Exception:  # noqa: BLE001 - the result of the send must be recorded whatever a receiver does
            log.warning("Nachricht %s: Aktualisieren nach dem Fehlschlag misslungen", message_id, exc_info=True)
        finally:
            if postgres:
                db.session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))

    @staticmethod
    def _tally(summary: Summary, outcome: str) -> None:
        kind = outcome.removeprefix("verbindung:")
        if kind == "gesendet":
            summary.sent += 1
        elif kind == "wartend":
            summary.retry += 1
        elif kind == "fehlgeschlagen":
            summary.failed += 1
        elif kind == "unklar":
            summary.unklar += 1

    def _temporary(self, message: OutboxMessage, reply: str) -> str:
        now = utcnow()
        message.first_failure_at = message.first_failure_at or now
        message.server_reply = reply
        message.claimed_by = None
        retry_for = timedelta(hours=float(self.app.config["MAIL_RETRY_HOURS"]))
        if now - message.first_failure_at >= retry_for:
            message.state = MessageState.FEHLGESCHLAGEN
            message.server_reply = f"{reply} (seit {self.app.config['MAIL_RETRY_HOURS']} Stunden nicht zustellbar)"
            return "fehlgeschlagen"
        base = float(self.app.config["MAIL_RETRY_BASE_SECONDS"])
        delay = min(base * (2 ** message.attempts), float(self.app.config["MAIL_RETRY_MAX_SECONDS"]))
        message.state = MessageState.WARTEND
        message.next_attempt_at = now + timedelta(seconds=delay)
        return "wartend"

    def _permanent(self, message: OutboxMessage, failure: PermanentFailure) -> str:
        message.state = MessageState.FEHLGESCHLAGEN
        message.server_reply = failure.reply
        if failure.server_trouble:
            self._count_failure(message.mailing_id, failure.reply)
        return "fehlgeschlagen"

    def _count_failure(self, mailing_id: int, reply: str, *, in_doubt: bool = False) -> None:
        """One more failure in a row; at MAIL_PAUSE_AFTER_FAILURES the mailing pauses with the reason.

        A message in doubt counts too: a connection that breaks after every DATA is as broken a
        server as one that refuses, and without the pause it would turn a whole mailing into "unklar"."""
        mailing = db.session.get(Mailing, mailing_id, with_for_update=db.engine.dialect.name == "postgresql")
        mailing.failures_in_a_row += 1
        limit = int(self.app.config["MAIL_PAUSE_AFTER_FAILURES"] or 0)
        if limit and mailing.failures_in_a_row >= limit and mailing.state == MailingState.AKTIV:
            mailing.state = MailingState.PAUSIERT
            mailing.pause_reason = (f"Automatisch pausiert nach {mailing.failures_in_a_row} Fehlern in Folge; "
                                    f"zuletzt: {reply}")
            if in_doubt:
                mailing.pause_reason += (" Ob die unklaren Nachrichten angekommen sind, weiß nur der Mailserver: "
                                         "bitte prüfen und sie gesammelt erneut senden oder als gesendet markieren.")

    # loop
    def run(self, once: bool = False, on_message: Callable[[str], None] | None = None,
            poll_seconds: float = 1.0) -> Summary:
        """Send until stopped; with ``once`` until nothing is due (or the server is unreachable).

        The database going away (restart, failover, full disk) does not end the loop: it waits with a
        growing pause (at most ``_DB_WAIT_MAX`` seconds) and goes on where it stopped (``_settle``)."""
        summary = Summary()
        backoff = 0.0
        result: tuple[Envelope, str | Exception] | None = None
        settle = True  # at the start and after an outage: heartbeat, own rows, other workers' orphans
        away_since: float | None = None
        db_wait = 0.0

        def done(outcome: str) -> None:
            self._tally(summary, outcome)
            if on_message:
                on_message(outcome)

        try:
            while not self.stop_event.is_set():
                try:
                    self.follow_settings(force=settle)
                    if settle:
                        recovered, outcome = self._settle(result)
                        summary.recovered_unklar += recovered
                        settle, result = False, None
                        if outcome:
                            done(outcome)
                        if away_since is not None:
                            log.warning("Datenbank wieder erreichbar nach %.1f s; der Versand geht weiter.",
                                        time.monotonic() - away_since)
                            away_since, db_wait = None, 0.0
                    # Claim first: on PostgreSQL the read-ahead row stays locked until this commit. The
                    # envelope overlaps the commit only when sending flat out: under a rate limit the
                    # seconds between two messages dwarf the milliseconds it saves.
                    prepared, outcome = self.claim_next(result, begin_sending=not self._rate_limited)
                    result = None
                    if outcome:
                        done(outcome)
                    self.heartbeat()
                    summary.recovered_unklar += self.recover_orphans()
                    if prepared is None:
                        wait = self.next_due_in()
                        if wait is None:
                            # Idle: background work of the packages above (letter jobs), then ask again.
                            if run_background_tasks():
                                continue
                            if once:
                                break
                            self.transport.close()
                            self.stop_event.wait(poll_seconds)
                            continue
                        if wait == 0:
                            # Due but not claimable: rate limit, daily cap or another worker holds it.
                            if self.daily_cap_reached():
                                summary.stopped_because = "Tageslimit erreicht"
                                if once:
                                    break
                                if not run_background_tasks():
                                    self.stop_event.wait(60)
                                continue
                            self.stop_event.wait(self._slot_wait())
                            continue
                        if once and wait > 2:
                            summary.stopped_because = "weitere Nachrichten sind später fällig"
                            break
                        # A message waits for its retry: background work (automatic reminders, letter
                        # jobs) must not wait for it. Not between two messages under a rate limit,
                        # where a long letter job would hold up the mailing.
                        if wait > poll_seconds and run_background_tasks():
                            continue
                        self.stop_event.wait(min(wait, poll_seconds))
                        continue
                    result = (prepared.envelope, self._attempt(prepared))
                    if isinstance(result[1], TemporaryFailure) and result[1].connection:
                        outcome = self._record(*result)
                        db.session.commit()
                        result = None
                        done(outcome)
                        if once:
                            summary.stopped_because = "SMTP-Server nicht erreichbar"
                            break
                        backoff = min(max(backoff * 2, 1.0), 60.0)
                        self.stop_event.wait(backoff)
                    else:
                        backoff = 0.0
                except DBAPIError as error:
                    problem = self._outage(error)  # re-raises what is not an outage
                    settle = True
                    if away_since is None:
                        away_since = time.monotonic()
                        log.warning("Datenbank %s (%s); der Versand wartet und versucht es erneut.", problem.kind,
                                    getattr(error, "orig", error))
                    elif once and time.monotonic() - away_since > _DB_WAIT_ONCE:
                        summary.stopped_because = f"Datenbank {problem.kind}"
                        break
                    db_wait = min(max(db_wait * 2, 0.5), _DB_WAIT_MAX)
                    self.stop_event.wait(db_wait)
        finally:
            self._abandon_begun()
            self.transport.close()
            self._ahead = None
            try:
                db.session.rollback()
                if result is not None:
                    # After an outage the result may already be stored (the commit's answer got lost).
                    outcome = self._settle(result)[1] if settle else self._record(*result)
                    if outcome:
                        done(outcome)
                db.session.execute(delete(OutboxWorker).where(OutboxWorker.id == self.id))
                db.session.commit()
            except DBAPIError as error:
                if health.database_problem(error) is None:
                    raise
                _rollback()
                log.error("Datenbank beim Beenden nicht erreichbar (%s): %s", getattr(error, "orig", error),
                          "die zuletzt gesendete Nachricht bleibt „in Arbeit“ und wird „unklar“." if result else
                          "nichts offen.")
        return summary

    def _slot_wait(self) -> float:
        rate = int(self.app.config["MAIL_RATE_PER_MINUTE"] or 0)
        return min(60.0 / rate / 4, 1.0) if rate else 0.05

    def daily_cap_reached(self) -> bool:
        cap = int(self.app.config["MAIL_DAILY_CAP"] or 0)
        if cap <= 0:
            return False
        day_start = _berlin_day_start(utcnow())
        sent = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at >= day_start))
        db.session.commit()
        return (sent or 0) >= cap


def due_count() -> int:
    return db.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.state.in_(("wartend", "in_arbeit")),
            OutboxMessage.mailing_id.in_(select(Mailing.id).where(Mailing.state == MailingState.AKTIV)),
        )
    ) or 0

