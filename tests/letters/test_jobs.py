"""Background jobs of the compose page: queued in the database, run by the outbox worker loop, with
progress, one job per input, one stored file per job, a German reason when it fails."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from datetime import timedelta

from sqlalchemy import event, func, select

from ki_post.db_types import utcnow
from ki_post.extensions import db
from ki_post.letters import jobs, services
from ki_post.letters.models import ArchivedLetter, JobKind, JobState, LetterJob, LetterRun
from ki_post.outbox.models import Mailing
from tests.letters.test_runs import PER_PERSON, all_contacts, template, without_function
from tests.letters.test_views import compose_data, job_of, run_worker


def submit(client, **extra):
    return client.submit("/rundschreiben/erstellen", compose_data(client, **{"action": "produce", **extra}))


def test_job_runs_in_the_worker_loop_with_progress_and_gives_what_produce_makes(staff_client, demo):
    response = submit(staff_client)
    job = job_of(response)
    assert job.state == JobState.WARTEND and job.total == 53 and job.done == 0
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert '<progress id="auftrag-balken" max="100" value="0"' in page and "0 von 53 Briefen" in page
    assert 'aria-live="polite"' in page and "letter-job.js" in page
    assert staff_client.get(f"/rundschreiben/auftraege/{job.id}/datei").status_code == 404  # nothing to fetch yet
    assert db.session.scalar(select(func.count(LetterRun.id))) == 0  # the request made no letter

    committed: list[int] = []  # the progress a polling page can see: the value at every commit

    def note(session):
        for obj in session.identity_map.values():
            if isinstance(obj, LetterJob) and obj.id == job.id and obj.state == JobState.LAEUFT:
                committed.append(obj.done)

    event.listen(db.session(), "before_commit", note)
    try:
        run_worker()
    finally:
        event.remove(db.session(), "before_commit", note)
    db.session.expire_all()
    assert job.state == JobState.FERTIG and job.done == 53 and job.percent == 100 and job.run_id is not None
    steps = [n for n in committed if 0 < n < 53]
    assert len(steps) >= 4 and steps == sorted(steps), committed  # rising, in several commits
    status = staff_client.get(f"/rundschreiben/auftraege/{job.id}/stand").get_json()
    assert status["text"] == "53 von 53 Briefen" and status["percent"] == 100 and status["finished"]

    download = staff_client.get(f"/rundschreiben/auftraege/{job.id}/datei")
    assert download.mimetype == "application/zip" and download.headers["Content-Disposition"].startswith("attachment")
    # The same as produce makes from the same input (ZIP entry times aside).
    version = services.get_version(job.params["version_id"])
    direct = io.BytesIO()
    services.produce(version, all_contacts(), job.params["fields"], "zip", direct)
    db.session.rollback()
    ours, theirs = zipfile.ZipFile(io.BytesIO(download.data)), zipfile.ZipFile(direct)
    assert ours.namelist() == theirs.namelist() and len(ours.namelist()) == 53
    assert all(ours.read(name) == theirs.read(name) for name in ours.namelist())
    # The run is attributed to the person who started the job, not to a process.
    from ki_post.auth.models import AuditEntry

    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "rundschreiben.erstellt"))
    assert entry.user_id == job.created_by_id and entry.user_id is not None


def test_a_second_click_returns_the_job_and_downloads_reuse_its_file(staff_client, demo):
    first = submit(staff_client)
    second = submit(staff_client)
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count(LetterJob.id))) == 1
    run_worker()
    job = job_of(first)
    assert submit(staff_client).headers["Location"] == first.headers["Location"]  # finished: still the same job
    downloads = [staff_client.get(f"/rundschreiben/auftraege/{job.id}/datei").data for _ in range(3)]
    assert downloads[0] == downloads[1] == downloads[2]
    assert db.session.scalar(select(func.count(LetterRun.id))) == 1
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 53
    # Another input is another job.
    other = submit(staff_client, betreff="Anderer Betreff")
    assert other.headers["Location"] != first.headers["Location"]
    assert submit(staff_client, output="merged").headers["Location"] not in (first.headers["Location"], other.headers["Location"])
    assert db.session.scalar(select(func.count(LetterJob.id))) == 3


def test_a_failing_job_shows_the_german_reason_and_leaves_no_half_run(staff_client, demo):
    template("Kennziffer", PER_PERSON)
    broken = without_function(3)
    response = submit(staff_client, verteiler_id="", contact_ids=[str(c.id) for c in broken], ohne_problemfaelle="y")
    job = job_of(response)
    run_worker()
    db.session.expire_all()
    assert job.state == JobState.FEHLGESCHLAGEN
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Der Auftrag ist abgebrochen: Für keine Empfängerin und keinen Empfänger ließ sich etwas erstellen" in page
    assert "Division durch null" in page and "herunterladen</a>" not in page
    assert staff_client.get(f"/rundschreiben/auftraege/{job.id}/stand").get_json()["state_label"] == "abgebrochen"
    assert db.session.scalar(select(func.count(LetterRun.id))) == 0
    # A failed job is not given back: the next click tries again.
    assert job_of(submit(staff_client, verteiler_id="", contact_ids=[str(c.id) for c in broken],
                         ohne_problemfaelle="y")).id != job.id


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_job_whose_process_died_is_marked_failed_and_its_half_run_removed(staff_client, demo, app):
    job = job_of(submit(staff_client))
    # What a worker killed half-way leaves: the job "läuft" with its claimer gone, a run without its count.
    run = LetterRun(template_version_id=job.params["version_id"], fields=job.params["fields"], output="zip")
    db.session.add(run)
    db.session.flush()
    job.state, job.claimed_by, job.run_id, job.done = JobState.LAEUFT, f"{socket.gethostname()}:{_dead_pid()}", run.id, 20
    job.heartbeat_at = utcnow()
    # …and one on another machine that stopped reporting long ago.
    other = LetterJob(kind=JobKind.PRODUCE, params=job.params, input_hash="x" * 64, state=JobState.LAEUFT, total=53,
                      claimed_by="anderer-server:4711", heartbeat_at=utcnow() - timedelta(hours=1))
    # …and one on another machine that is still working.
    alive = LetterJob(kind=JobKind.PRODUCE, params=job.params, input_hash="y" * 64, state=JobState.LAEUFT, total=53,
                      claimed_by="anderer-server:4712", heartbeat_at=utcnow())
    db.session.add_all([other, alive])
    db.session.commit()
    assert jobs.fail_abandoned() == 2
    db.session.expire_all()
    assert job.state == other.state == JobState.FEHLGESCHLAGEN and alive.state == JobState.LAEUFT
    assert job.error == jobs.CRASHED and "erneut starten" in job.error
    assert db.session.get(LetterRun, run.id) is None and job.run_id is None
    assert "Der Auftrag ist abgebrochen: Abgebrochen: der Prozess" in staff_client.get(
        f"/rundschreiben/auftraege/{job.id}").get_data(as_text=True)


def test_a_mailing_job_failing_half_way_cancels_its_draft(staff_client, demo):
    job = job_of(staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="mailing")))
    run_worker()
    db.session.expire_all()
    mailing = db.session.get(Mailing, job.mailing_id)
    assert job.state == JobState.FERTIG and mailing.state == "entwurf"
    # The same draft, had the job died before the end: it must never be released half-full.
    other = LetterJob(kind=JobKind.MAILING, params=job.params, input_hash="z" * 64, state=JobState.LAEUFT, total=53,
                      claimed_by="anderer-server:1", heartbeat_at=utcnow() - timedelta(hours=1), mailing_id=mailing.id)
    db.session.add(other)
    db.session.commit()
    jobs.fail_abandoned()
    db.session.expire_all()
    assert other.state == JobState.FEHLGESCHLAGEN and mailing.state == "abgebrochen"


def test_two_workers_never_run_one_job(staff_client, demo, app):
    for betreff in ("Eins", "Zwei", "Drei", "Vier", "Fünf", "Sechs"):
        submit(staff_client, betreff=betreff)
    db.session.commit()
    claims: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        with app.app_context():
            barrier.wait()
            while (job_id := jobs.claim_next()) is not None or db.session.scalar(
                    select(func.count(LetterJob.id)).where(LetterJob.state == JobState.WARTEND)):
                if job_id is not None:
                    claims[name].append(job_id)
            db.session.remove()

    threads = [threading.Thread(target=work, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    taken = claims["a"] + claims["b"]
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 6, claims


def test_reading_accounts_cannot_start_or_open_jobs(client, make_user, demo):
    make_user("admin", "admin@ministerium.example")
    version = services.version_from_choice("shipped:rundschreiben")
    job, created = jobs.submit(JobKind.PRODUCE, version, all_contacts(), {"betreff": "B", "datum": "2016-12-28"},
                               {"output": "zip"}, user="staff@ministerium.example")
    db.session.commit()
    assert created
    client.login(make_user("lesen").email)
    for action in ("produce", "mailing"):
        assert client.submit("/rundschreiben/erstellen", compose_data(client, action=action)).status_code == 403
    for url in (f"/rundschreiben/auftraege/{job.id}", f"/rundschreiben/auftraege/{job.id}/stand",
                f"/rundschreiben/auftraege/{job.id}/datei"):
        assert client.get(url).status_code == 403
    assert db.session.scalar(select(func.count(LetterJob.id))) == 1


def test_the_compose_buttons_start_jobs_and_are_disabled_when_clicked(staff_client, demo):
    page = staff_client.get("/rundschreiben/erstellen").get_data(as_text=True)
    assert 'value="produce" class="button" data-job-button' in page and 'value="mailing" class="button" data-job-button' in page
    script = staff_client.get("/static/ki-post.js").get_data(as_text=True)
    assert "data-job-button" in script and "button.disabled = true" in script



def test_the_stored_file_is_withheld_once_an_addressee_is_erased(staff_client, demo, make_user):
    from ki_post.letters.erasure import restrict_letters

    job = job_of(submit(staff_client))
    run_worker()
    assert staff_client.get(f"/rundschreiben/auftraege/{job.id}/datei").status_code == 200
    restrict_letters(all_contacts()[0])
    db.session.commit()
    # The file holds that person's letter: from now on only the administration gets single letters from the archive.
    assert staff_client.get(f"/rundschreiben/auftraege/{job.id}/datei").status_code == 403
    assert "gibt es deshalb nicht mehr zum Herunterladen" in staff_client.get(f"/rundschreiben/auftraege/{job.id}").get_data(as_text=True)


def test_a_changed_recipient_or_sender_makes_a_new_job(staff_client, demo):
    first = job_of(submit(staff_client))
    run_worker()
    contact = all_contacts()[5]
    contact.organisation.street = "Neue Straße 1"
    db.session.commit()
    second = job_of(submit(staff_client))
    assert second.id != first.id  # yesterday's file has the old address
    assert job_of(submit(staff_client)).id == second.id
    services.update_sender_profile({"ruecksendeangabe": "Postfach 1, 40190 Düsseldorf"})
    db.session.commit()
    assert job_of(submit(staff_client)).id != second.id
