"""What the sending worker does when the database goes away (restart, failover, full disk, read-only):
wait and go on where it stopped, losing and duplicating nothing. A mixin of ``worker.Worker``.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from .. import health
from ..extensions import db
from .models import MessageState, OutboxMessage
from .transport import InDoubt

if TYPE_CHECKING:
    from .transport import Envelope

log = logging.getLogger("ki_post.outbox.worker")


def rollback() -> None:
    try:
        db.session.rollback()
    except DBAPIError:  # the connection is gone; the pool replaces it
        pass


def _refused_by_server(orig: BaseException | None) -> bool:
    """PostgreSQL refused, dropped or is starting up or shutting down (psycopg's connection errors)."""
    import psycopg

    if not isinstance(orig, psycopg.OperationalError):
        return False
    state = orig.sqlstate or ""
    return not state or state.startswith(("08", "57P"))


class OutageHandling:
    """Uses the worker's ``id``, ``transport``, ``_begun``, ``_ahead``, ``_record``, ``heartbeat`` and
    ``recover_orphans``; ``Worker.run`` calls ``_outage`` on a database error and ``_settle`` before
    the next claim."""

    def _abandon_begun(self) -> None:
        if self._begun is not None:
            self.transport.abandon(self._begun)
            self._begun = None

    def _outage(self, error: DBAPIError) -> health.Problem:
        """The problem, if ``error`` means the database is away or cannot write; anything else
        (a constraint, a bug, a locked SQLite file) is raised again, as before. Where the error itself
        does not say (SQLite's "database is locked" looks like an outage), a probe decides."""
        self._abandon_begun()  # its claim may be lost with the database: its data must not follow
        self.transport.close()  # no idle SMTP connection while waiting; the next message reconnects
        self._ahead = None
        rollback()
        problem = health.database_problem(error)
        if getattr(error, "connection_invalidated", False) or problem in (health.DISK_FULL, health.READ_ONLY):
            return problem or health.UNREACHABLE
        if problem is not None and _refused_by_server(getattr(error, "orig", None)):
            # A server that refused or dropped the connection ("the database system is starting up")
            # may answer the probe below a moment later: that does not make the error a bug.
            return problem
        try:
            db.session.execute(text("SELECT 1"))
        except DBAPIError:
            return health.UNREACHABLE
        finally:
            rollback()
        raise error

    def _settle(self, pending: tuple[Envelope, str | Exception] | None) -> tuple[int, str | None]:
        """At the start and once the database answers again after an outage: put right what this worker
        holds, beat, recover other workers' orphans, commit. Returns (recovered, outcome of ``pending``).

        Rows this worker claimed other than ``pending`` never had their data sent (the claim's commit
        failed or its answer was lost, or the outage came before sending; a begun SMTP transaction was
        abandoned), so they wait again. ``pending`` (data sent, result not yet stored) is stored now,
        unless the commit whose answer got lost already stored it: once, never twice."""
        m = OutboxMessage
        unsent = [m.claimed_by == self.id, m.state == MessageState.IN_ARBEIT]
        if pending is not None:
            unsent.append(m.id != pending[0].message_id)
        db.session.execute(update(m).where(*unsent).values(state=MessageState.WARTEND, claimed_by=None))
        outcome = None
        if pending is not None:
            envelope, result = pending
            state, claimed_by = db.session.execute(select(m.state, m.claimed_by).where(m.id == envelope.message_id)).one()
            # "unklar" here: another worker took this one for dead while the database was away; its
            # real result is known now. (Had this worker stored InDoubt, that is stored already.)
            if claimed_by == self.id and (state == MessageState.IN_ARBEIT or (state == MessageState.UNKLAR and not isinstance(result, InDoubt))):
                outcome = self._record(envelope, result)
            else:
                log.info("Ergebnis der Nachricht %s war schon gespeichert (%s).", envelope.message_id, state)
        db.session.commit()
        self.heartbeat(force=True)
        return self.recover_orphans(force=True), outcome

