"""flask events … / flask rsvp … through the CLI runner."""
from __future__ import annotations

import csv
import io
import mailbox
from pathlib import Path

from sqlalchemy import select

from ki_post.events.models import Event, Invitation
from ki_post.extensions import db
from tests.events.conftest import FIXTURE_UID

FIXTURES = Path(__file__).parent / "fixtures"


def test_create_list_invite_export(runner, demo, tmp_path):
    result = runner.invoke(args=["events", "create", "--title", "Feierstunde", "--start", "2037-02-08T11:00",
                                 "--end", "2037-02-08T13:00", "--location", "Fürstenwall 25, 40219 Düsseldorf"])
    assert result.exit_code == 0, result.output
    event_id = int(result.output.strip().splitlines()[-1])
    event = db.session.get(Event, event_id)
    assert event.start_at.hour == 10 and event.place_name == "Fürstenwall 25, 40219 Düsseldorf"
    listed = runner.invoke(args=["events", "list"])
    assert f"{event_id}\t08.02.2037, 11:00\tEntwurf\t0\t0\tFeierstunde" in listed.output
    invited = runner.invoke(args=["events", "invite", str(event_id), "--list", "Alle KI-Dezernate"])
    assert invited.exit_code == 0 and "53 Einladungen in den Postausgang gestellt, 0 bereits eingeladen" in invited.output
    assert "wird gesendet" in invited.output
    assert f"{event_id}\t08.02.2037, 11:00\tveröffentlicht\t53\t0\t" in runner.invoke(args=["events", "list"]).output
    target = tmp_path / "liste.csv"
    exported = runner.invoke(args=["events", "export", str(event_id), str(target)])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["Name", "Organisation"] and len(rows) == 54
    xlsx = tmp_path / "liste.xlsx"
    assert runner.invoke(args=["events", "export", str(event_id), str(xlsx)]).exit_code == 0
    assert xlsx.read_bytes().startswith(b"PK")


def test_cli_bad_input(runner, demo, tmp_path):
    bad = runner.invoke(args=["events", "create", "--title", "X", "--start", "2017-02-08T11:00", "--end", "gestern"])
    assert bad.exit_code != 0 and "Das Ende ist kein gültiger Zeitpunkt (Beispiel: 2017-02-08T11:00" in bad.output
    gap = runner.invoke(args=["events", "create", "--title", "X", "--start", "2027-03-28T02:30", "--end", "2027-03-28T03:00"])
    assert gap.exit_code != 0 and "02:30 Uhr gibt es am 28.03.2027 nicht" in gap.output, gap.output
    assert runner.invoke(args=["events", "invite", "999"]).exit_code != 0
    assert db.session.scalar(select(db.func.count(Event.id))) == 0
    wrong = runner.invoke(args=["events", "invite", "1", "--list", "Gibt es nicht"])
    assert wrong.exit_code != 0


def _invite_max(published) -> None:
    """The event of the reply fixtures (their UID) with Max Müller, the fixtures' attendee, invited."""
    from ki_post.events import services
    from ki_post.recipients.models import Contact

    event = published(0)
    event.uid = FIXTURE_UID
    max_ = Contact(first_name="Max", last_name="Müller", email="max.mueller@stadt-beispiel.example")
    db.session.add(max_)
    db.session.flush()
    services.add_invitations(event, [max_])
    db.session.commit()


def test_rsvp_ingest_eml_and_mbox(runner, published, tmp_path):
    _invite_max(published)
    result = runner.invoke(args=["rsvp", "ingest", str(FIXTURES / "exchange_base64.eml")])
    assert result.exit_code == 0 and "1 Mail gelesen, 1 übernommen" in result.output, result.output
    box_path = tmp_path / "antworten.mbox"
    try:
        box = mailbox.mbox(str(box_path))
        for name in ("exchange_base64.eml", "unknown_attendee.eml", "needs_action.eml"):
            box.add((FIXTURES / name).read_bytes())
        box.flush()
        again = runner.invoke(args=["rsvp", "ingest", str(box_path)])
    finally:
        box_path.unlink(missing_ok=True)
    assert "3 Mails gelesen" in again.output and "1 ignoriert" in again.output and "1 zur Prüfung" in again.output
    db.session.expire_all()
    assert db.session.scalar(select(Invitation.state)) == "zugesagt"


def test_rsvp_ingest_plain_folder_of_eml_files(runner, published, tmp_path):
    """An Outlook export: a folder with .eml files and no cur/new (it used to crash as a Maildir)."""
    _invite_max(published)
    folder = tmp_path / "Outlook-Export"
    folder.mkdir()
    for name in ("exchange_base64.eml", "unknown_attendee.eml", "needs_action.eml"):
        (folder / name.replace(".eml", ".EML" if name.startswith("needs") else ".eml")).write_bytes((FIXTURES / name).read_bytes())
    (folder / "liesmich.txt").write_text("keine Mail")
    (folder / "Unterordner").mkdir()
    result = runner.invoke(args=["rsvp", "ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert "3 Mails gelesen, 1 übernommen, 1 ignoriert, 1 zur Prüfung." in result.output
    db.session.expire_all()
    assert db.session.scalar(select(Invitation.state)) == "zugesagt"

    empty = tmp_path / "leer"
    empty.mkdir()
    (empty / "notiz.txt").write_text("x")
    refused = runner.invoke(args=["rsvp", "ingest", str(empty)])
    assert refused.exit_code == 1 and refused.exception.__class__ is SystemExit
    assert "weder ein Maildir (mit den Unterordnern cur und new) noch enthält er .eml-Dateien" in refused.output

    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    maildir.add((FIXTURES / "exchange_base64.eml").read_bytes())
    again = runner.invoke(args=["rsvp", "ingest", str(tmp_path / "Maildir")])
    assert again.exit_code == 0 and "1 Mail gelesen" in again.output, again.output


def test_poll_imap_without_server(runner):
    result = runner.invoke(args=["rsvp", "poll-imap"])
    assert result.exit_code != 0 and "Kein IMAP-Server" in result.output


def _send(app) -> None:
    from ki_post.outbox.worker import Worker

    app.config["MAIL_RATE_PER_MINUTE"] = 0
    Worker(app).run(once=True)  # file transport: "gesendet"
    db.session.expire_all()


def test_update_remind_cancel_and_invite_everyone(app, runner, make_contacts):
    """events invite without --list invites every active contact; update, remind and cancel print what they did."""
    from ki_post.outbox.models import Mailing, OutboxMessage
    from ki_post.recipients.models import Contact

    people = make_contacts(3)
    people[2].active = False
    db.session.commit()
    event_id = int(runner.invoke(args=["events", "create", "--title", "Fachtag", "--start", "2037-03-01T10:00",
                                       "--end", "2037-03-01T12:00", "--location", "Ministerium"]).output.split()[-1])
    drafted = runner.invoke(args=["events", "invite", str(event_id), "--entwurf"])
    assert drafted.exit_code == 0, drafted.output
    assert "2 Einladungen in den Postausgang gestellt" in drafted.output and "Entwurf" in drafted.output
    invited = {m.to_email for m in db.session.scalars(select(OutboxMessage))}
    assert invited == {c.email for c in db.session.scalars(select(Contact).where(Contact.active.is_(True)))}
    mailing = db.session.scalar(select(Mailing).where(Mailing.kind == "einladung"))
    assert mailing.state == "entwurf"
    from ki_post.outbox.services import start_mailing

    start_mailing(mailing)
    db.session.commit()
    _send(app)

    refused = runner.invoke(args=["events", "remind", str(event_id)])
    assert refused.exit_code == 0 and "2 Erinnerungen eingereiht" in refused.output, refused.output
    again = runner.invoke(args=["events", "remind", str(event_id)])
    assert again.exit_code != 0 and "--force" in again.output  # reminders just queued: ask first
    moved = runner.invoke(args=["events", "update", str(event_id), "--start", "2037-03-01T10:30"])  # keeps 2 hours
    assert moved.exit_code == 0, moved.output
    assert "Geändert: Beginn, Ende." in moved.output and "2 Aktualisierungen eingereiht" in moved.output
    assert "2 wartende Nachrichten neu erstellt" in moved.output  # the two reminders not yet sent
    assert db.session.get(Event, event_id).end_at.hour == 11  # 12:30 in Berlin (CET)
    cancelled = runner.invoke(args=["events", "cancel", str(event_id), "--reason", "Hochwasser"])
    assert cancelled.exit_code == 0, cancelled.output
    assert "4 wartende Nachrichten zurückgezogen, 2 Absagen eingereiht" in cancelled.output
    event = db.session.get(Event, event_id)
    assert event.state == "abgesagt" and event.cancel_reason == "Hochwasser"
    assert runner.invoke(args=["events", "update", str(event_id), "--title", "X"]).exit_code != 0
    assert runner.invoke(args=["events", "remind", str(event_id)]).exit_code != 0
