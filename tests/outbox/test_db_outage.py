"""A real `flask outbox work` process while its database goes away and comes back.

PostgreSQL: a cluster of the test's own (tests/pg_cluster.py) is stopped and started under the
running worker — once exactly while a message is in flight (the server has taken it, the worker
has not stored that yet), and three times at random moments of a batch. SQLite: the disk under the
database fills up while a message is in flight and is freed again. Each time: the worker does not
exit, nothing is lost, nothing is sent twice (a message in flight ends up sent once, or "unklar"),
and /healthz answers 200 right after the database is back.

The seconds from "database ready again" to the next message at the SMTP server are printed
(``pytest -s``) as the resume figure.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from ki_post import create_app, prepare_instance
from ki_post.extensions import db
from ki_post.models import metadata
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing
from ki_post.outbox.worker import Worker
from tests.helpers import build_config
from tests.mounts import fill, small_disk
from tests.outbox.conftest import smtp_config
from tests.outbox.test_crash import PROJECT, worker_env
from tests.pg_cluster import PostgresCluster


@pytest.fixture
def cluster():
    missing = PostgresCluster.available()
    if missing:
        pytest.skip(f"kein eigener PostgreSQL-Cluster möglich: {missing}")
    with PostgresCluster() as started:
        yield started


def app_on(tmp_path: Path, database_url: str, smtp_port: int):
    config = build_config(tmp_path, "postgresql" if database_url.startswith("postgres") else "sqlite",
                          **smtp_config(smtp_port), DATABASE_URL=database_url)
    app = prepare_instance(create_app(config, instance_path=str(tmp_path / "instance")))
    with app.app_context():
        metadata.create_all(db.engine)
    return app


def make_batch(count: int) -> list[str]:
    mailing = create_mailing("rundschreiben", "Rundschreiben an alle")
    recipients = [f"dezernat{n:03d}@kommune.example" for n in range(count)]
    for address in recipients:
        enqueue(mailing, to_email=address, subject="Rundschreiben", text="Hallo\n")
    start_mailing(mailing)
    db.session.commit()
    return recipients


def start_worker(app, smtp_port: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "outbox", "work"], cwd=PROJECT,
                                env=worker_env(app, smtp_port), stdout=subprocess.DEVNULL, stderr=err, text=True)


def wait_for(condition, worker: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            pytest.fail(f"der Worker hat sich beendet (Status {worker.returncode}):\n{log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"Zeitüberschreitung:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def final_states(recipients: list[str]) -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.execute(select(OutboxMessage.to_email, OutboxMessage.state)).all()
    db.session.commit()
    return {address: state for address, state in rows if address in recipients}


def all_final(recipients: list[str]):
    def check() -> bool:
        try:
            states = final_states(recipients)
        except Exception:  # noqa: BLE001 - the test's own connection may meet the restart too
            db.session.rollback()
            return False
        return len(states) == len(recipients) and set(states.values()) <= {"gesendet", "unklar"}
    return check


def assert_once_each(recipients: list[str], smtp, *, allow_unklar: int) -> dict[str, str]:
    states = final_states(recipients)
    counts = Counter(smtp.recipients())
    unklar = [a for a, s in states.items() if s == "unklar"]
    assert len(unklar) <= allow_unklar, unklar
    for address in recipients:
        assert counts[address] <= 1, f"{address} zweimal erhalten"
        if address not in unklar:
            assert states[address] == "gesendet" and counts[address] == 1, (address, states[address], counts[address])
    return states


def stop_worker(worker: subprocess.Popen, log: Path) -> str:
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    text = log.read_text()
    assert worker.returncode == 0, text[-3000:]
    return text


def resumed_after(ready_at: float, smtp) -> float:
    return min(r.at for r in smtp.handler.received if r.at > ready_at) - ready_at


def test_postgres_restart_while_a_message_is_in_flight(tmp_path, cluster, smtp):
    """The server takes message 3; before its reply the database stops. The worker must store
    "gesendet" for it once the database is back: sent once, not unklar, not twice."""
    app = app_on(tmp_path, cluster.url, smtp.port)
    log = tmp_path / "worker.log"
    with app.app_context():
        recipients = make_batch(8)
        in_flight = recipients[2]
        ready = {}

        def stop_database_before_replying(rcpt: str) -> None:
            if rcpt == in_flight and not ready:
                cluster.stop()
                ready["stopped"] = time.time()
                # Back after three seconds; meanwhile the worker holds the server's "250" for this message.
                threading.Timer(3.0, lambda: ready.setdefault("at", cluster.start())).start()

        smtp.handler.on_data = stop_database_before_replying
        client = app.test_client()
        assert client.get("/healthz").status_code == 200  # its pooled connection dies with the restart
        worker = start_worker(app, smtp.port, log)
        try:
            wait_for(lambda: "at" in ready, worker, log)
            health = client.get("/healthz")  # the first request after the restart
            assert health.status_code == 200, health.json
            wait_for(all_final(recipients), worker, log)
            states = assert_once_each(recipients, smtp, allow_unklar=0)
            assert states[in_flight] == "gesendet"
        finally:
            text = stop_worker(worker, log) if worker.poll() is None else log.read_text()
        assert "Datenbank nicht erreichbar" in text and "Datenbank wieder erreichbar" in text, text[-3000:]
        print(f"\nPostgreSQL-Neustart mit Nachricht in der Übergabe: Versand {resumed_after(ready['at'], smtp):.2f} s "
              f"nach der Wiederkehr der Datenbank fortgesetzt (Datenbank {ready['at'] - ready['stopped']:.1f} s weg)")
        db.session.remove()
        db.engine.dispose()


def test_postgres_restarts_at_random_moments_of_a_batch(tmp_path, cluster, smtp):
    smtp.handler.delay = 0.05
    app = app_on(tmp_path, cluster.url, smtp.port)
    log = tmp_path / "worker.log"
    with app.app_context():
        recipients = make_batch(60)
        worker = start_worker(app, smtp.port, log)
        figures = []
        try:
            for after in (10, 25, 40):
                wait_for(lambda: len(smtp.handler.received) >= after, worker, log)
                cluster.stop()
                time.sleep(1.0)
                ready_at = cluster.start()
                wait_for(lambda: any(r.at > ready_at for r in smtp.handler.received), worker, log)
                figures.append(resumed_after(ready_at, smtp))
            wait_for(all_final(recipients), worker, log)
            # At most the message in flight at each restart may be in doubt; none twice.
            assert_once_each(recipients, smtp, allow_unklar=3)
            assert app.test_client().get("/healthz").status_code == 200
        finally:
            if worker.poll() is None:
                stop_worker(worker, log)
        print(f"\nDrei PostgreSQL-Neustarts (je 1 s weg): Versand fortgesetzt nach "
              f"{', '.join(f'{s:.2f}' for s in figures)} s")
        db.session.remove()
        db.engine.dispose()


def test_sqlite_disk_full_while_a_message_is_in_flight(tmp_path, smtp):
    """SQLite's outage: the disk under the database fills up between the server's "250" and the
    worker's record of it; freed three seconds later, the worker stores it once and goes on."""
    with small_disk(tmp_path / "klein") as disk:
        app = app_on(tmp_path, f"sqlite:///{disk}/ki-post.sqlite3", smtp.port)
        log = tmp_path / "worker.log"
        with app.app_context():
            recipients = make_batch(8)
            in_flight = recipients[2]
            freed = {}

            def fill_disk_before_replying(rcpt: str) -> None:
                if rcpt == in_flight and not freed:
                    fill(disk)
                    freed["full"] = time.time()

                    def free() -> None:
                        (disk / "fuellung.bin").unlink()
                        freed["at"] = time.time()

                    threading.Timer(3.0, free).start()

            smtp.handler.on_data = fill_disk_before_replying
            worker = start_worker(app, smtp.port, log)
            try:
                wait_for(lambda: "at" in freed, worker, log)
                wait_for(all_final(recipients), worker, log)
                states = assert_once_each(recipients, smtp, allow_unklar=0)
                assert states[in_flight] == "gesendet"
            finally:
                text = stop_worker(worker, log) if worker.poll() is None else log.read_text()
            assert "Datenbank Speicherplatz voll" in text and "Datenbank wieder erreichbar" in text, text[-3000:]
            print(f"\nSQLite, Platte voll mit Nachricht in der Übergabe: Versand "
                  f"{resumed_after(freed['at'], smtp):.2f} s nach dem Freigeben fortgesetzt")
            db.session.remove()
            db.engine.dispose()
    assert not os.path.ismount(tmp_path / "klein")


def test_a_server_starting_up_is_an_outage_even_if_it_answers_a_moment_later(app):
    """A connection refused with "the database system is starting up" while PostgreSQL restarts: by the
    time the worker probes, the server may answer again. The worker must wait and go on, not end."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    from ki_post import health

    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/nirgendwo", connect_timeout=2)
    except psycopg.OperationalError as refused:
        error = OperationalError("SELECT 1", {}, refused)
    assert Worker(app)._outage(error) is health.UNREACHABLE  # the probe itself would succeed here
