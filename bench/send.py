"""Bench: enqueue 2,000 messages (40 KB DOCX + .ics) and send them to a local aiosmtpd sink.

Prints, side by side in one run:
- enqueue time for 2,000 messages (render_mail + enqueue + commit), target < 10 s;
- a naive Flask-Mail ``mail.send()`` loop (one connection per message, the baseline);
- the outbox worker (``flask --app app outbox work --once`` processes), 1 worker on SQLite and
  1, 2 and 4 workers on PostgreSQL, rate limit off; target ≥ 150 messages/s for one worker.

Worker rates are measured from the database (first claim to last "sent"), so process start-up
is not counted; the wall time including start-up is printed too, and the workers' CPU time per
message (start-up included). For scale, "smtplib roh" sends prebuilt bytes over one connection,
one message after the other, without any database: the worker overlaps its database work with the
server's, so it can be faster than that loop.

Event invitations carry a topic each (one person's mails about one event go out in order); the
worker checks for each claim that no earlier mail of the topic is still on its way. ``--no-topics``
enqueues without topics, as circulars are, for comparison.

    python bench/send.py [--count 2000] [--naive 300] [--pg postgresql://postgres@127.0.0.1:5432/kipost_bench] [--no-topics]
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from sqlalchemy import func, select, update  # noqa: E402

from ki_post import create_app  # noqa: E402
from ki_post.extensions import db, mail  # noqa: E402
from ki_post.outbox.models import Mailing, OutboxMessage  # noqa: E402
from ki_post.outbox.services import Attachment, CalendarPart, create_mailing, enqueue, render_mail, start_mailing  # noqa: E402
from tests.helpers import fresh_schema  # noqa: E402
from tests.smtp_server import free_port  # noqa: E402

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def make_docx(size: int = 40_000) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Rundschreiben", 1)
    paragraph = 0
    while True:
        buffer = io.BytesIO()
        document.save(buffer)
        if buffer.tell() >= size:
            return buffer.getvalue()
        for _ in range(20):
            paragraph += 1
            document.add_paragraph(f"Absatz {paragraph}: Förderung der Kommunalen Integrationszentren {os.urandom(24).hex()}")


def make_ics(n: int) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//KI-Post//Bench//DE\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        f"UID:bench-festakt@ki-post\r\nSEQUENCE:0\r\nDTSTAMP:20261124T100000Z\r\nDTSTART:20270208T100000Z\r\n"
        f"DTEND:20270208T130000Z\r\nSUMMARY:Festakt\r\nORGANIZER:mailto:veranstaltungen@ministerium.example\r\n"
        f"ATTENDEE;RSVP=TRUE;PARTSTAT=NEEDS-ACTION:mailto:dezernat{n}@kommune.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def make_app(database_url: str, instance: str, port: int):
    return create_app({
        "DATABASE_URL": database_url, "AUTO_MIGRATE": False, "SECRET_KEY": "bench", "EMBEDDED_WORKER": False,
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_USE_TLS": False, "MAIL_RATE_PER_MINUTE": 0,
        "MAIL_SUPPRESS_SEND": False, "MAIL_DEFAULT_SENDER": "Ministerium – Veranstaltungen <veranstaltungen@ministerium.example>",
    }, instance_path=instance)


def enqueue_batch(app, count: int, docx: bytes, topics: bool = True) -> tuple[int, float]:
    with app.app_context():
        started = time.perf_counter()
        mailing = create_mailing("einladung", "Bench: Einladung mit Rundschreiben")
        for n in range(count):
            rendered = render_mail("allgemein", {
                "betreff": "Einladung zum Festakt am 8. Februar 2027", "anrede": f"Sehr geehrte Frau Dezernentin {n},",
                "absaetze": ["wir laden Sie herzlich ein.", "Das Rundschreiben liegt bei."], "absender": "Referat 512",
            })
            enqueue(mailing, to_email=f"dezernat{n}@kommune.example", to_name=f"Dezernentin {n}",
                    subject=rendered.subject, text=rendered.text, html=rendered.html,
                    attachments=[Attachment("rundschreiben.docx", DOCX_MIME, docx)],
                    calendar=CalendarPart("REQUEST", make_ics(n)), topic=f"veranstaltung-1/einladung-{n}" if topics else None)
        start_mailing(mailing)
        db.session.commit()
        return mailing.id, time.perf_counter() - started


def requeue(app, mailing_id: int) -> None:
    with app.app_context():
        db.session.execute(update(OutboxMessage).where(OutboxMessage.mailing_id == mailing_id).values(
            state="wartend", claimed_by=None, claimed_at=None, sent_at=None, attempts=0))
        db.session.execute(update(Mailing).where(Mailing.id == mailing_id).values(state="aktiv"))
        db.session.commit()


def run_workers(app, database_url: str, instance: str, port: int, mailing_id: int, workers: int) -> tuple[float, float, int, float]:
    """messages/s (first claim to last sent), wall seconds with start-up, messages sent, worker CPU ms per message."""
    requeue(app, mailing_id)
    env = dict(os.environ, KI_POST_DATABASE_URL=database_url, KI_POST_INSTANCE_PATH=instance, KI_POST_AUTO_MIGRATE="false",
               KI_POST_SECRET_KEY="bench", KI_POST_EMBEDDED_WORKER="false", KI_POST_MAIL_SERVER="127.0.0.1",
               KI_POST_MAIL_PORT=str(port), KI_POST_MAIL_USE_TLS="false", KI_POST_MAIL_RATE_PER_MINUTE="0")
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "outbox", "work", "--once"],
                                  cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for _ in range(workers)]
    for process in processes:
        process.communicate()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    with app.app_context():
        first, last, sent = db.session.execute(
            select(func.min(OutboxMessage.claimed_at), func.max(OutboxMessage.sent_at), func.count(OutboxMessage.sent_at))
            .where(OutboxMessage.mailing_id == mailing_id)).one()
    return sent / (last - first).total_seconds(), wall, sent, 1000 * cpu / max(sent, 1)


def naive_flask_mail(app, count: int, docx: bytes) -> float:
    from flask_mail import Message

    with app.app_context():
        started = time.perf_counter()
        for n in range(count):
            message = Message("Einladung zum Festakt am 8. Februar 2027", recipients=[f"naiv{n}@kommune.example"],
                              body="Sehr geehrte Frau Dezernentin,\nwir laden Sie herzlich ein.\n",
                              html="<p>Sehr geehrte Frau Dezernentin,</p><p>wir laden Sie herzlich ein.</p>")
            message.attach("rundschreiben.docx", DOCX_MIME, docx)
            message.attach("einladung.ics", "text/calendar; method=REQUEST", make_ics(n))
            mail.send(message)  # one SMTP connection per message: what a simple loop does
        return count / (time.perf_counter() - started)


def raw_smtplib_loop(port: int, docx: bytes, count: int = 300) -> float:
    """Prebuilt bytes over one connection, one message after the other, no database."""
    import smtplib
    import socket

    data = b"Subject: x\r\n\r\n" + (b"A" * 76 + b"\r\n") * (len(docx) * 4 // 3 // 78 + 40)
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    for n in range(count):
        smtp.sendmail("a@ministerium.example", [f"roh{n}@kommune.example"], data)
    smtp.quit()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=300, help="messages for the naive Flask-Mail loop")
    parser.add_argument("--pg", default=os.environ.get("KI_POST_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kipost_bench"))
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--no-topics", action="store_true", help="enqueue without topics (as circulars)")
    args = parser.parse_args()
    topics = not args.no_topics

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "tests.smtp_server", str(port), "0", os.devnull], cwd=PROJECT,
                            stdout=subprocess.PIPE, text=True)
    sink.stdout.readline()
    docx = make_docx()
    print(f"Anhang: DOCX {len(docx):,} Bytes + .ics; {args.count:,} Nachrichten {'mit' if topics else 'ohne'} Thema; "
          f"SMTP-Senke aiosmtpd auf 127.0.0.1:{port}")
    results: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_url = f"sqlite:///{tmp}/bench.sqlite3"
            app = make_app(sqlite_url, tmp, port)
            fresh_schema(app)
            mailing_id, seconds = enqueue_batch(app, args.count, docx, topics)
            results.append((f"Einreihen {args.count:,} (SQLite)", f"{seconds:6.2f} s  ({args.count / seconds:7.1f} msg/s)  Ziel < 10 s"))
            results.append(("smtplib roh, nacheinander, ohne Datenbank", f"{raw_smtplib_loop(port, docx):7.1f} msg/s"))
            rate = naive_flask_mail(app, args.naive, docx)
            results.append((f"Flask-Mail mail.send()-Schleife ({args.naive})", f"{rate:7.1f} msg/s  (Vergleichswert)"))
            rate, wall, sent, cpu = run_workers(app, sqlite_url, tmp, port, mailing_id, 1)
            results.append(("Outbox-Worker ×1 (SQLite)", f"{rate:7.1f} msg/s  ({sent} gesendet, {wall:.1f} s mit Start, "
                                                         f"Worker-CPU {cpu:.1f} ms/Nachricht)  Ziel ≥ 150"))

            pg_app = make_app(args.pg, tmp, port)
            try:
                fresh_schema(pg_app)
            except Exception as error:  # noqa: BLE001
                results.append(("PostgreSQL", f"übersprungen: {error.__class__.__name__}: {error}"[:200]))
            else:
                mailing_id, seconds = enqueue_batch(pg_app, args.count, docx, topics)
                results.append((f"Einreihen {args.count:,} (PostgreSQL)", f"{seconds:6.2f} s  ({args.count / seconds:7.1f} msg/s)  Ziel < 10 s"))
                for workers in [int(n) for n in args.workers.split(",")]:
                    rate, wall, sent, cpu = run_workers(pg_app, args.pg, tmp, port, mailing_id, workers)
                    results.append((f"Outbox-Worker ×{workers} (PostgreSQL)", f"{rate:7.1f} msg/s  ({sent} gesendet, {wall:.1f} s mit Start, "
                                                                            f"Worker-CPU {cpu:.1f} ms/Nachricht)"))
    finally:
        sink.terminate()
        sink.wait()
    width = max(len(name) for name, _ in results)
    for name, value in results:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
