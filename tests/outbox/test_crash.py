"""Real worker processes (`flask --app app outbox work`) against a real, slow SMTP server.

SIGKILL mid-batch and restart: nothing missing, nothing twice, at most the in-flight message
unklar. Two workers on PostgreSQL draining one mailing: every message exactly once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing

PROJECT = Path(__file__).resolve().parents[2]


def worker_env(app, smtp_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "KI_POST_DATABASE_URL": app.config["DATABASE_URL"],
        "KI_POST_INSTANCE_PATH": str(Path(app.instance_path)),
        "KI_POST_AUTO_MIGRATE": "false",
        "KI_POST_SECRET_KEY": "test-secret",
        "KI_POST_EMBEDDED_WORKER": "false",
        "KI_POST_MAIL_SERVER": "127.0.0.1",
        "KI_POST_MAIL_PORT": str(smtp_port),
        "KI_POST_MAIL_USE_TLS": "false",
        "KI_POST_MAIL_RATE_PER_MINUTE": "0",
        "KI_POST_MAIL_TIMEOUT": "10",
        "KI_POST_MAIL_RETRY_BASE_SECONDS": "0.05",
    })
    return env


def start_worker(app, smtp_port: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "outbox", "work", *args],
                            cwd=PROJECT, env=worker_env(app, smtp_port),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def make_batch(count: int) -> list[str]:
    mailing = create_mailing("rundschreiben", "Rundschreiben an alle")
    recipients = [f"dezernat{n:03d}@kommune.example" for n in range(count)]
    for address in recipients:
        enqueue(mailing, to_email=address, subject="Rundschreiben", text="Hallo\n")
    start_mailing(mailing)
    db.session.commit()
    return recipients


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "Zeitüberschreitung beim Warten"
        time.sleep(0.02)


def test_sigkill_mid_batch_loses_nothing_and_sends_nothing_twice(smtp_app, smtp):
    smtp.handler.delay = 0.1  # a slow server: the worker spends most of its time inside DATA
    recipients = make_batch(30)
    worker = start_worker(smtp_app, smtp.port)
    wait_for(lambda: len(smtp.handler.received) >= 8)
    worker.send_signal(signal.SIGKILL)
    worker.wait()  # reaped: the process is gone, as after a crash
    received_before = len(smtp.handler.received)
    assert received_before < 30, "der Worker war schon fertig – der Test hat nichts bewiesen"

    restarted = start_worker(smtp_app, smtp.port, "--once")
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err

    db.session.expire_all()
    by_address = {m.to_email: m for m in db.session.scalars(select(OutboxMessage))}
    counts = Counter(smtp.recipients())
    unklar = [a for a, m in by_address.items() if m.state == "unklar"]
    assert len(unklar) <= 1, unklar
    for address in recipients:
        assert counts[address] <= 1, f"{address} zweimal erhalten"
        if address not in unklar:
            assert by_address[address].state == "gesendet"
            assert counts[address] == 1, f"{address} fehlt"
    assert "gesendet:" in out
    if unklar:
        assert "ausgefallen" in by_address[unklar[0]].server_reply


def test_two_workers_drain_one_mailing_exactly_once(smtp_app, smtp, backend):
    if backend != "postgresql":
        pytest.skip("mehrere Worker-Prozesse laufen in Produktion gegen PostgreSQL (FOR UPDATE SKIP LOCKED)")
    smtp.handler.delay = 0.04
    recipients = make_batch(80)
    workers = [start_worker(smtp_app, smtp.port, "--once", "--worker-id", f"worker-{n}") for n in (1, 2)]
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
    assert Counter(smtp.recipients()) == Counter({address: 1 for address in recipients})
    db.session.expire_all()
    messages = db.session.scalars(select(OutboxMessage)).all()
    assert {m.state for m in messages} == {"gesendet"}
    assert {m.claimed_by for m in messages} == {"worker-1", "worker-2"}
