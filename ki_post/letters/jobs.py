"""Letters made outside the request: "Briefe erstellen" and "Als Aussendung vorbereiten" as background jobs.

The database is the queue, as for the outbox: the compose page writes a ``LetterJob`` (``wartend``)
and shows its progress; the outbox worker loop (``flask outbox work`` or the embedded thread) runs
it when nothing is due to be sent, through the hook the outbox offers (``connect`` registers it).

- Claiming is a conditional UPDATE (``wartend`` → ``laeuft``; PostgreSQL first locks the row with
  ``FOR UPDATE SKIP LOCKED``), so two workers never run one job.
- Progress is committed every few letters together with a heartbeat; a job whose process died
  (same host: its pid is gone; any host: no heartbeat for ``LETTER_JOB_STALE_SECONDS``) becomes
  ``fehlgeschlagen`` with a German reason, never stays "läuft" for ever. What it had half made is
  removed (a run without its letters) or cancelled (a draft mailing), so nothing half-done is used.
- The same input (template version, fields, recipients, output) while a job is open, or finished
  within a day, gives back that job instead of a second one; its file is stored once in the blob
  store and every download serves those bytes (no second run in the archive).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update

from ..auth.services import acting_for
from ..blobs import store_blob
from ..db_types import utcnow
from ..errors import KiPostError, NotFound
from ..extensions import db
from ..outbox.background import register_background_task
from ..outbox.models import Mailing, MailingState
from ..outbox.recovery import pid_alive
from ..outbox.steering import cancel_mailing
from ..recipients.models import Contact
from . import pdf, services
from .circulars import mail_letters
from .models import ArchivedLetter, JobKind, JobState, LetterJob, LetterRun, LetterTemplateVersion

log = logging.getLogger(__name__)

COMMIT_EVERY = 10  # letters between two progress commits (and at least once a second)
REUSE_FINISHED = timedelta(days=1)
CRASHED = ("Abgebrochen: der Prozess, der diesen Auftrag bearbeitete, wurde beendet (Neustart oder Absturz). "
           "Bitte den Auftrag erneut starten.")
UNEXPECTED = "Unerwarteter Fehler beim Erstellen der Briefe; Einzelheiten stehen im Protokoll des Servers."


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- submitting -------------------------------------------------------------------------------------
def input_hash(kind: str, version: LetterTemplateVersion, fields: Mapping[str, str], contacts: Sequence[Contact],
               options: Mapping[str, Any]) -> str:
    """Everything a letter is made of: template content, fields, sender, and per recipient what the
    template can read about them (a corrected address is a new job, not yesterday's file)."""
    data = {"kind": str(kind), "version": version.id, "content": version.blob_key, "fields": dict(fields),
            "sender": services.sender_dict(services.sender_profile()), "options": dict(options),
            "recipients": [(contact.id, services.contact_context(contact)) for contact in contacts]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def submit(kind: JobKind, version: LetterTemplateVersion, contacts: Sequence[Contact], fields: Mapping[str, Any],
           options: Mapping[str, Any], *, user: str = "", user_id: int | None = None) -> tuple[LetterJob, bool]:
    """The job for this input: an open (or recently finished) identical one, else a new one. Returns
    (job, created). Checks what would fail at once (no LibreOffice for PDF) before queueing. Flushes."""
    fields = services.clean_fields(fields)
    wants_pdf = options.get("output", "").endswith("_pdf") or options.get("format") == "pdf"
    if wants_pdf and not pdf.pdf_available(current_app.config.get("SOFFICE_PATH")):
        raise pdf.LibreOfficeMissing(pdf.INSTALL_HINT)
    ids = [contact.id for contact in contacts]
    key = input_hash(kind, version, fields, contacts, options)
    existing = db.session.scalar(
        select(LetterJob).where(LetterJob.input_hash == key, LetterJob.state != JobState.FEHLGESCHLAGEN,
                                LetterJob.created_at >= utcnow() - REUSE_FINISHED)
        .order_by(LetterJob.id.desc()).limit(1))
    if existing is not None and (not existing.finished or existing.mailing_id or existing.result_blob):
        return existing, False
    job = LetterJob(kind=kind, params={"version_id": version.id, "fields": fields, "contact_ids": ids, **options},
                    input_hash=key, total=len(ids), created_by=user, created_by_id=user_id,
                    phase="Wartet auf den Hintergrunddienst")
    db.session.add(job)
    db.session.flush()
    return job, True


def get_job(job_id: int) -> LetterJob:
    job = db.session.get(LetterJob, job_id)
    if job is None:
        raise NotFound("Diesen Auftrag gibt es nicht.")
    return job


def status(job: LetterJob) -> dict[str, Any]:
    """What the job page polls."""
    return {"state": str(job.state), "state_label": job.state.label, "done": job.done, "total": job.total,
            "percent": job.percent, "phase": job.phase, "finished": job.finished, "error": job.error,
            "text": f"{job.done} von {job.total} Briefen"}


# --- running ----------------------------------------------------------------------------------------
def claim_next() -> int | None:
    """Take the oldest waiting job for this process; None if there is none (or another worker was faster)."""
    query = select(LetterJob.id).where(LetterJob.state == JobState.WARTEND).order_by(LetterJob.id).limit(1)
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job_id = db.session.scalar(query)
    if job_id is None:
        db.session.commit()
        return None
    now = utcnow()
    claimed = db.session.execute(
        update(LetterJob).where(LetterJob.id == job_id, LetterJob.state == JobState.WARTEND)
        .values(state=JobState.LAEUFT, claimed_by=_worker_id(), started_at=now, heartbeat_at=now,
                phase="Die Briefe werden erstellt"),
        execution_options={"synchronize_session": False}).rowcount
    db.session.commit()
    return job_id if claimed == 1 else None


def run_next_job() -> bool:
    """The background task: fail abandoned jobs, then run one waiting job. True if one ran."""
    fail_abandoned()
    job_id = claim_next()
    if job_id is None:
        return False
    execute(job_id)
    return True


class _Progress:
    """Counts letters and commits the count (with a heartbeat) every few letters."""

    def __init__(self, job: LetterJob):
        self.job = job
        self.last = time.monotonic()

    def set(self, done: int) -> None:
        self.job.done = min(done, self.job.total)
        now = time.monotonic()
        if done % COMMIT_EVERY == 0 or now - self.last >= 1:
            self.job.heartbeat_at = utcnow()
            db.session.commit()
            self.last = now

    def add(self, count: int) -> None:
        self.set(self.job.done + count)


def execute(job_id: int) -> None:
    """Run a claimed job to ``fertig`` or ``fehlgeschlagen`` (commits)."""
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False  # progress commits must not reload every contact and the template
    try:
        job = db.session.get(LetterJob, job_id)
        try:
            params = job.params
            version = services.get_version(params["version_id"])
            by_id = {c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(params["contact_ids"])))}
            contacts = [by_id[i] for i in params["contact_ids"] if i in by_id]  # someone deleted meanwhile is left out
            job.total = len(contacts)
            with acting_for(job.created_by_id, job.created_by):  # the audit names who started the job
                if job.kind == JobKind.PRODUCE:
                    _produce(job, version, contacts)
                else:
                    _mailing(job, version, contacts)
            job.state, job.finished_at, job.phase = JobState.FERTIG, utcnow(), "Fertig"
            job.done = job.total
            db.session.commit()
        except Exception as error:  # noqa: BLE001 - every failure ends the job with a German reason
            db.session.rollback()
            if not isinstance(error, KiPostError):
                log.exception("Auftrag %s abgebrochen", job_id)
            _fail(job_id, str(error) if isinstance(error, KiPostError) else UNEXPECTED)
    finally:
        session.expire_on_commit = keep


def _produce(job: LetterJob, version: LetterTemplateVersion, contacts: list[Contact]) -> None:
    params = job.params
    progress = _Progress(job)

    def started(run: LetterRun) -> None:
        job.run_id = run.id

    final = {"zip": "", "merged": "Das Druckdokument wird zusammengesetzt", "zip_pdf": "Die Briefe werden in PDF umgewandelt",
             "merged_pdf": "Die Briefe werden in PDF umgewandelt"}[params["output"]]

    def counted(done: int) -> None:
        progress.set(done)
        if done == job.total and final:
            job.phase = final  # the slow part reports no progress of its own: say what it is doing
            db.session.commit()

    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
        result = services.produce(version, contacts, params["fields"], params["output"], spool, user=job.created_by,
                                  progress=counted, started=started)
        job.phase = "Datei wird gespeichert"
        spool.seek(0)
        job.result_blob = store_blob(spool.read())
    job.result_filename, job.result_mimetype = result.filename, result.mimetype
    job.problems = [problem.as_dict() for problem in result.problems]


def _mailing(job: LetterJob, version: LetterTemplateVersion, contacts: list[Contact]) -> None:
    progress = _Progress(job)
    job.phase = ("Die Briefe werden erstellt und in PDF umgewandelt" if job.params["format"] == "pdf"
                 else "Die Briefe werden erstellt") + " und an die Nachrichten gehängt"
    job.heartbeat_at = utcnow()
    db.session.commit()

    def started(mailing: Mailing) -> None:
        job.mailing_id = mailing.id

    mailing = mail_letters(version, contacts, job.params["fields"], fmt=job.params["format"], start=False,
                           created_by_id=job.created_by_id, confirm_empty=True, progress=progress.add, started=started)
    job.mailing_id = mailing.id


def _fail(job_id: int, message: str) -> None:
    """Mark the job failed and take back what it had committed half-way (commits)."""
    job = db.session.get(LetterJob, job_id)
    if job is None:
        return
    if job.run_id is not None:
        run = db.session.get(LetterRun, job.run_id)
        if run is not None and not run.letter_count:  # letter_count is set only when the run is complete
            db.session.execute(delete(ArchivedLetter).where(ArchivedLetter.run_id == run.id))
            db.session.delete(run)
        job.run_id = None
    if job.mailing_id is not None:
        mailing = db.session.get(Mailing, job.mailing_id)
        if mailing is not None and mailing.state == MailingState.ENTWURF and job.state != JobState.FERTIG:
            cancel_mailing(mailing)  # a draft with only some of the letters must never be released
    job.state, job.error, job.finished_at = JobState.FEHLGESCHLAGEN, message, utcnow()
    job.phase = "Abgebrochen"
    db.session.commit()


def fail_abandoned() -> int:
    """Running jobs whose process is gone become ``fehlgeschlagen``; returns how many."""
    stale = utcnow() - timedelta(seconds=float(current_app.config["LETTER_JOB_STALE_SECONDS"]))
    host = socket.gethostname()
    count = 0
    for job in db.session.scalars(select(LetterJob).where(LetterJob.state == JobState.LAEUFT)).all():
        claimer_host, _, pid = job.claimed_by.rpartition(":")
        dead = claimer_host == host and pid.isdigit() and not pid_alive(int(pid))
        if (dead and job.claimed_by != _worker_id()) or (job.heartbeat_at or job.created_at) < stale:
            _fail(job.id, CRASHED)
            count += 1
    db.session.commit()
    return count


def connect() -> None:
    """Let the outbox worker loop run letter jobs when it is idle (once per process)."""
    register_background_task(run_next_job)
