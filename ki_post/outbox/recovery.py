"""A worker's signs of life and what it does for workers that died: its heartbeat row, messages a dead
worker had claimed (they become *unklar*: maybe sent, a person decides) and messages whose occasion has
passed (withdrawn instead of sent late)."""
from __future__ import annotations

import logging
import os
import time

from sqlalchemy import delete, select, update

from ..db_types import utcnow
from ..extensions import db
from .models import MessageState, OutboxMessage, OutboxWorker

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (a worker's or a job's owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Recovery:
    """Mixed into ``Worker``; uses its ``app``, ``id``, ``hostname``, ``pid``, ``_last_beat`` and
    ``_last_recovery``."""

    @property
    def stale_seconds(self) -> float:
        """A worker silent this long is presumed dead; never less than four SMTP timeouts, so a slow
        server does not make a living worker's message look orphaned."""
        config = self.app.config
        return max(float(config["OUTBOX_WORKER_STALE_SECONDS"]), 4 * float(config["MAIL_TIMEOUT"]))

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_beat < 5:
            return
        row = db.session.get(OutboxWorker, self.id)
        if row is None:
            db.session.add(OutboxWorker(id=self.id, hostname=self.hostname, pid=self.pid, seen_at=utcnow()))
        else:
            row.seen_at = utcnow()
        db.session.commit()
        self._last_beat = now

    def recover_orphans(self, force: bool = False) -> int:
        """Rows claimed by workers that are gone become ``unklar``. Returns how many."""
        now = time.monotonic()
        if not force and now - self._last_recovery < 10:
            return 0
        self._last_recovery = now
        self.withdraw_expired()
        claimers = db.session.scalars(
            select(OutboxMessage.claimed_by).where(OutboxMessage.state == MessageState.IN_ARBEIT, OutboxMessage.claimed_by != self.id).distinct()
        ).all()
        count = 0
        for claimer in claimers:
            if claimer is None or self._worker_alive(claimer):
                continue
            result = db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.state == MessageState.IN_ARBEIT, OutboxMessage.claimed_by == claimer)
                .values(state=MessageState.UNKLAR, server_reply=(
                    f"Der sendende Prozess ({claimer}) ist während des Versands ausgefallen. "
                    "Ob die Nachricht angekommen ist, ist unklar: bitte erneut senden oder als gesendet markieren."))
            )
            count += result.rowcount or 0
            db.session.execute(delete(OutboxWorker).where(OutboxWorker.id == claimer))
            log.warning("Worker %s ausgefallen: %s Nachricht(en) unklar", claimer, result.rowcount)
        db.session.commit()
        return count

    def withdraw_expired(self) -> int:
        """Waiting messages past their ``expires_at`` (e.g. a reminder once the event began) are withdrawn
        instead of sent late. Returns how many."""
        now = utcnow()
        result = db.session.execute(
            update(OutboxMessage).where(OutboxMessage.state == MessageState.WARTEND, OutboxMessage.expires_at.is_not(None),
                                        OutboxMessage.expires_at <= now)
            .values(state=MessageState.ZURUECKGEZOGEN, revision=OutboxMessage.revision + 1,
                    server_reply="Nicht mehr gesendet: Der Anlass der Nachricht ist vorbei (Termin begonnen oder vorüber).")
        )
        db.session.commit()
        return result.rowcount or 0

    def _worker_alive(self, worker_id: str) -> bool:
        row = db.session.get(OutboxWorker, worker_id)
        if row is None:
            return False
        if row.hostname == self.hostname and not pid_alive(row.pid):
            return False
        return (utcnow() - row.seen_at).total_seconds() < self.stale_seconds
