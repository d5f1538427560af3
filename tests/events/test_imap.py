"""`rsvp poll-imap` against a real Dovecot on 127.0.0.1 (tests/imap_server.py), on both databases."""
from __future__ import annotations

import os
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from ki_post.auth.models import AuditEntry
from ki_post.errors import ValidationError
from ki_post.events import imap, services
from ki_post.events.models import CalendarReply
from ki_post.extensions import db
from tests.events.test_replies import FIXTURES, _setup, invitation, raw
from tests.imap_server import DovecotServer
from tests.smtp_server import free_port

MAX = "max.mueller@stadt-beispiel.example"
HANS = "hans.tentativ@stadt-zwei.example"
REPLIES = ["exchange_base64.eml", "thunderbird.eml", "unknown_attendee.eml"]
REPLY_IDS = {"<exch-b64@mail.stadt-beispiel.example>", "<tb-1@stadt-zwei.example>", "<unknown@irgendwo.example>"}
REQUEST_ID = "<request@stadt-beispiel.example>"  # not_a_reply.eml: a calendar mail, but METHOD:REQUEST
PERSONAL_ID = "<programm@kreis-beispiel.example>"


def personal_mail() -> bytes:
    """What else arrives in the functional mailbox: a question with a 1 MB attachment, meant for a person."""
    message = EmailMessage()
    message["From"] = "Erika Beispiel <erika.beispiel@kreis-beispiel.example>"
    message["To"] = "veranstaltungen@ministerium.example"
    message["Subject"] = "Frage zur Feierstunde"
    message["Message-ID"] = PERSONAL_ID
    message.set_content("Guten Tag,\nanbei unser Programmvorschlag.\n")
    message.add_attachment(os.urandom(1024 * 1024), maintype="application", subtype="pdf", filename="programm.pdf")
    return message.as_bytes()


def replies_stored() -> int:
    return db.session.scalar(select(func.count(CalendarReply.id)))


def unread(flags: dict[str, set[str]]) -> set[str]:
    return {message_id for message_id, seen in flags.items() if "\\Seen" not in seen}


def test_poll_applies_replies_marks_only_them_read_and_runs_once(app, runner, published, make_contacts, imap_server):
    event = _setup(published, make_contacts)
    for name in REPLIES + ["not_a_reply.eml"]:
        imap_server.append(raw(name))
    imap_server.append(personal_mail())
    app.config.update(imap_server.settings())
    sessions_before = len(imap_server.bytes_sent())

    result = runner.invoke(args=["rsvp", "poll-imap"])

    assert result.exit_code == 0, result.output
    assert "3 Mails gelesen, 2 übernommen, 1 zur Prüfung." in result.output
    db.session.expire_all()
    max_, hans = invitation(event, MAX), invitation(event, HANS)
    assert (max_.state, max_.channel, max_.remark) == ("zugesagt", "kalender", "Ich komme gern, mit Begleitung.")
    assert hans.state == "vorlaeufig"
    assert [r.message_id for r in services.unmatched_replies()] == ["<unknown@irgendwo.example>"]
    flags = imap_server.flags()
    poll_bytes = imap_server.bytes_sent()[sessions_before]
    # Nothing moved or deleted; the replies are read, the REQUEST and the personal mail stay unread for people.
    assert set(flags) == REPLY_IDS | {REQUEST_ID, PERSONAL_ID}
    assert unread(flags) == {REQUEST_ID, PERSONAL_ID}
    # The 1 MB attachment of the personal mail was never downloaded (its BODYSTRUCTURE shows no calendar).
    assert poll_bytes < 100_000

    audit_entries = db.session.scalar(select(func.count(AuditEntry.id)))
    again = runner.invoke(args=["rsvp", "poll-imap"])
    assert again.exit_code == 0 and "0 Mails gelesen." in again.output, again.output
    assert replies_stored() == 3 and db.session.scalar(select(func.count(AuditEntry.id))) == audit_entries

    # Had the run stopped between commit and marking, the mail comes again: recorded once, marked read now.
    imap_server.store("<exch-b64@mail.stadt-beispiel.example>", "-FLAGS", "(\\Seen)")
    third = runner.invoke(args=["rsvp", "poll-imap"])
    assert third.exit_code == 0 and "1 Mail gelesen." in third.output, third.output
    assert replies_stored() == 3 and unread(imap_server.flags()) == {REQUEST_ID, PERSONAL_ID}


def test_mail_stays_unread_when_the_commit_fails(app, published, make_contacts, imap_server):
    event = _setup(published, make_contacts)
    imap_server.append(raw("exchange_base64.eml"))
    app.config.update(imap_server.settings())

    def failing_commit() -> None:
        raise RuntimeError("Datenbank nicht erreichbar")

    with pytest.raises(RuntimeError):
        services.poll_imap(commit=failing_commit)
    db.session.rollback()
    assert unread(imap_server.flags()) == {"<exch-b64@mail.stadt-beispiel.example>"}
    assert replies_stored() == 0

    result = services.poll_imap(commit=db.session.commit)
    assert result.statuses["uebernommen"] == 1 and invitation(event, MAX).state == "zugesagt"
    assert unread(imap_server.flags()) == set()


def test_wrong_password_and_unreachable_server_give_german_errors(app, runner, imap_server):
    app.config.update(imap_server.settings(IMAP_PASSWORD="falsch"))
    result = runner.invoke(args=["rsvp", "poll-imap"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Die Anmeldung am IMAP-Server ist fehlgeschlagen; bitte IMAP_USERNAME und IMAP_PASSWORD prüfen." \
        in result.output and "Authentication failed" in result.output

    app.config.update(imap_server.settings(IMAP_PORT=free_port()))
    result = runner.invoke(args=["rsvp", "poll-imap"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "IMAP-Server 127.0.0.1:" in result.output and "nicht erreichbar" in result.output


def test_folder_with_umlaut_and_space(app, published, make_contacts, imap_server):
    event = _setup(published, make_contacts)
    # Created by its RFC 3501 modified-UTF-7 name, so the app's own encoding is checked against the server.
    imap_server.command("create", '"R&APw-ckmeldungen Kalender"')
    imap_server.append(raw("exchange_base64.eml"), folder='"R&APw-ckmeldungen Kalender"')
    imap_server.append(raw("thunderbird.eml"))  # in INBOX: not read from another folder

    app.config.update(imap_server.settings(IMAP_FOLDER="Rückmeldungen Kalender"))
    result = services.poll_imap(commit=db.session.commit)
    assert result.mails == 1 and invitation(event, MAX).state == "zugesagt"
    assert invitation(event, HANS).state == "offen"
    assert unread(imap_server.flags('"R&APw-ckmeldungen Kalender"')) == set()

    app.config.update(imap_server.settings(IMAP_FOLDER="Gibt es nicht"))
    with pytest.raises(ValidationError, match="Der IMAP-Ordner „Gibt es nicht“ lässt sich nicht öffnen"):
        services.poll_imap(commit=db.session.commit)


def test_ssl_checks_the_certificate(app, published, make_contacts, tmp_path):
    event = _setup(published, make_contacts)
    with DovecotServer(tmp_path / "dovecot-ssl", use_ssl=True) as imap_server:
        imap_server.append(raw("exchange_base64.eml"))
        app.config.update(imap_server.settings())
        # A self-signed certificate nobody trusts: refused, nothing read.
        with pytest.raises(ValidationError, match="Das Zertifikat des IMAP-Servers 127.0.0.1 ist nicht vertrauenswürdig"):
            services.poll_imap(commit=db.session.commit)
        assert invitation(event, MAX).state == "offen"
        # Trusted the way an administrator would (the internal CA's file), it connects.
        app.config["IMAP_CA_FILE"] = str(imap_server.ca_file)
        result = services.poll_imap(commit=db.session.commit)
        assert result.statuses["uebernommen"] == 1 and invitation(event, MAX).state == "zugesagt"


def test_every_reply_fixture_passes_the_bodystructure_check(imap_server):
    names = sorted(path.name for path in FIXTURES.glob("*.eml"))
    for name in names:
        imap_server.append(raw(name))
    imap_server.append(personal_mail())
    connection = imap_server.connect()
    connection.select("INBOX", readonly=True)
    status, data = connection.fetch("1:*", "(BODYSTRUCTURE)")
    connection.logout()
    structures = [item for item in data if isinstance(item, bytes)]
    assert status == "OK" and len(structures) == len(names) + 1
    assert [imap._may_carry_calendar(s) for s in structures] == [True] * len(names) + [False]
