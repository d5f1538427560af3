"""The functional mailbox as one road (ki_post/events/mailbox.py): an invitation is sent through a real SMTP
server (aiosmtpd), then one IMAP mailbox (real Dovecot) holds a permanent DSN, a temporary DSN, an Exchange
NDR, an out-of-office reply, a calendar reply and a bounce about a mail KI-Post never sent; ``mailbox poll``
classifies each and applies exactly its effect. Both databases."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from ki_post.events import services
from ki_post.extensions import db
from ki_post.outbox.models import OutboxBounce, OutboxMessage
from ki_post.outbox.worker import Worker
from ki_post.recipients import services as recipients
from ki_post.recipients.models import Contact
from tests.events.test_imap import personal_mail, unread
from tests.events.test_replies import _setup, invitation, raw
from tests.helpers import make_app
from tests.outbox.conftest import smtp_config
from tests.outbox.test_bounces import sample
from tests.smtp_server import SmtpServer

SENDER = "veranstaltungen@ministerium.example"
MAX = "max.mueller@stadt-beispiel.example"
ERIKA = "erika.beispiel@kreis-beispiel.example"  # permanent DSN (by Message-ID)
HANS = "hans.tentativ@stadt-zwei.example"  # temporary DSN
JANA = "jana0@stadt.example"  # Exchange NDR (Message-ID rewritten: by token)
OTTO = "jana1@stadt.example"  # out of office


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def app(tmp_path, backend, smtp) -> Iterator[Flask]:
    """The events fixtures' app, sending to the aiosmtpd server."""
    app = make_app(tmp_path, backend, **smtp_config(smtp.port))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def _send_invitations(app, published, make_contacts, smtp) -> tuple:
    event = _setup(published, make_contacts)
    services.add_invitations(event, make_contacts(2, "jana"))
    services.invite(event, start=True)
    db.session.commit()
    summary = Worker(app).run(once=True)
    assert summary.sent == 5, summary
    db.session.expire_all()
    sent = {message["To"].addresses[0].addr_spec: message for message in smtp.messages()}
    assert set(sent) == {MAX, ERIKA, HANS, JANA, OTTO}
    tokens = {address: message["X-KI-Post-Nachricht"] for address, message in sent.items()}
    assert all(tokens.values()) and len(set(tokens.values())) == 5
    return event, {address: message["Message-ID"] for address, message in sent.items()}, tokens


def _message_to(address: str) -> OutboxMessage:
    return db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == address))


def _contact(address: str) -> Contact:
    return db.session.scalar(select(Contact).where(Contact.email == address))


def test_one_mailbox_each_mail_classified_with_its_effect(app, runner, staff_client, published, make_contacts, smtp,
                                                          imap_server):
    event, ids, tokens = _send_invitations(app, published, make_contacts, smtp)
    unknown_id = "<nie-gesendet@ministerium.example>"
    mails = {
        "permanent": sample("rfc3464_permanent.eml", message_id=ids[ERIKA], token=tokens[ERIKA], recipient=ERIKA, sender=SENDER),
        "temporary": sample("rfc3464_delayed.eml", message_id=ids[HANS], token=tokens[HANS], recipient=HANS, sender=SENDER),
        "exchange": sample("exchange_ndr.eml", message_id="(rewritten)", token=tokens[JANA], recipient=JANA, sender=SENDER),
        "ooo": sample("out_of_office.eml", message_id=ids[OTTO], recipient=OTTO, sender=SENDER),
        "calendar": raw("exchange_base64.eml"),
        # A bounce of a mail a person sent from the shared mailbox: its original is none of ours.
        "unknown": sample("postfix.eml", message_id=unknown_id, token=None, recipient="jemand@anderswo.example",
                          sender=SENDER),
    }
    for mail in mails.values():
        imap_server.append(mail)
    imap_server.append(personal_mail())
    app.config.update(imap_server.settings())

    result = runner.invoke(args=["mailbox", "poll"])

    assert result.exit_code == 0, result.output
    out = result.output
    assert out.strip().splitlines()[-1] == ("6 Mails gelesen, 1 übernommen, 2 unzustellbar, 1 verzögert, "
                                            "1 automatische Antwort, 1 Zustellungsnachricht ohne passende Nachricht.")
    assert "dauerhaft unzustellbar (RFC 3464)" in out and "vorübergehend nicht zugestellt (RFC 3464)" in out
    assert "dauerhaft unzustellbar (Exchange/Outlook)" in out and "Kalenderantwort" in out
    assert f"automatische Antwort von {OTTO} auf Nachricht" in out and "ignoriert, nichts geändert" in out
    assert "jemand@anderswo.example: keiner gesendeten Nachricht zuzuordnen; ignoriert" in out
    assert "Ansprechperson Erika Beispiel: Adresse unzustellbar markiert" in out

    db.session.expire_all()
    # Permanent: message unzustellbar with the server's words, contact flagged.
    erika = _message_to(ERIKA)
    assert erika.state == "unzustellbar" and erika.state_label == "unzustellbar"
    assert erika.server_reply == f"Unzustellbar: 550 5.1.1 <{ERIKA}>... User unknown - mailbox closed"
    assert _contact(ERIKA).undeliverable_since is not None and "5.1.1" in _contact(ERIKA).undeliverable_reason
    # Exchange NDR, found by its token although the Message-ID was rewritten.
    jana = _message_to(JANA)
    assert jana.state == "unzustellbar" and "RESOLVER.ADR.RecipientNotFound" in jana.server_reply
    assert db.session.scalar(select(OutboxBounce.matched_by).where(OutboxBounce.message_id == jana.id)) == "token"
    assert _contact(JANA).undeliverable_since is not None
    # Temporary: recorded with the message, which stays sent; nobody flagged.
    hans = _message_to(HANS)
    assert hans.state == "gesendet" and _contact(HANS).undeliverable_since is None
    [delay] = db.session.scalars(select(OutboxBounce).where(OutboxBounce.message_id == hans.id))
    assert (delay.kind, delay.status, delay.matched_by) == ("verzoegert", "4.2.2", "message_id")
    # Out of office: recorded against the message it answers, nothing else.
    otto = _message_to(OTTO)
    assert otto.state == "gesendet" and _contact(OTTO).undeliverable_since is None
    [auto] = db.session.scalars(select(OutboxBounce).where(OutboxBounce.message_id == otto.id))
    assert auto.kind == "automatisch" and auto.diagnostic == ""
    # The calendar reply answered Max's invitation as before.
    assert invitation(event, MAX).state == "zugesagt" and _message_to(MAX).state == "gesendet"
    # The unknown bounce: recorded with a note, nothing changed.
    [stray] = db.session.scalars(select(OutboxBounce).where(OutboxBounce.message_id.is_(None)))
    assert stray.recipient == "jemand@anderswo.example" and "Keine von KI-Post gesendete Nachricht" in stray.note
    # What the app took is read; the automatic reply, the stray bounce and the personal mail stay for people.
    flags = imap_server.flags()
    assert unread(flags) == {"<oof-0815@stadt-vier.example>", "<20170213090500.3F1A2B4@mail.kreis-fuenf.example>",
                             "<programm@kreis-beispiel.example>"}

    again = runner.invoke(args=["mailbox", "poll"])
    assert again.exit_code == 0 and again.output.strip() == "0 Mails gelesen.", again.output

    # Shown on the contact, the mailing and the start page.
    page = staff_client.get(f"/verteiler/kontakte/{_contact(ERIKA).id}").get_data(as_text=True)
    assert "Adresse unzustellbar seit" in page and "User unknown - mailbox closed" in page
    mailing = staff_client.get(f"/postausgang/{erika.mailing_id}").get_data(as_text=True)
    assert "2</span> unzustellbar" in mailing and "RESOLVER.ADR.RecipientNotFound" in mailing
    assert "Zustellung verzögert (4.2.2)" in mailing and "Mailbox full" in mailing
    start = staff_client.get("/").get_data(as_text=True)
    assert "2 Ansprechpersonen mit unzustellbarer Adresse" in start
    message_page = staff_client.get(f"/postausgang/nachricht/{hans.id}").get_data(as_text=True)
    assert "Zustellungsnachrichten" in message_page and "vorübergehend nicht zugestellt" in message_page

    # A new address ends the flag; the start page counts one fewer.
    contact = _contact(ERIKA)
    recipients.save_contact(contact, {"anrede": "frau", "first_name": "Erika", "last_name": "Beispiel",
                                      "email": "erika.beispiel@kreis-beispiel-neu.example"})
    db.session.commit()
    assert contact.undeliverable_since is None and contact.undeliverable_reason == ""
    assert "1 Ansprechperson mit unzustellbarer Adresse" in staff_client.get("/").get_data(as_text=True)
    assert "Adresse unzustellbar seit" not in staff_client.get(f"/verteiler/kontakte/{contact.id}").get_data(as_text=True)


def _circular(app, make_contacts, n: int = 3) -> list[OutboxMessage]:
    """A circular sent to ``n`` contacts (through the aiosmtpd server)."""
    from ki_post.outbox.services import create_mailing, enqueue, start_mailing

    people = make_contacts(n, "kreis")
    mailing = create_mailing("rundschreiben", "Rundschreiben 2017/03")
    for person in people:
        enqueue(mailing, to_email=person.email, to_name=person.full_name, contact_id=person.id,
                subject="Rundschreiben 2017/03", text="Sehr geehrte Damen und Herren,\n")
    start_mailing(mailing)
    db.session.commit()
    Worker(app).run(once=True)
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.mailing_id == mailing.id).order_by(OutboxMessage.id)))


def test_ingest_folder_postfix_gmail_notes_and_the_old_name(app, runner, make_contacts, tmp_path):
    first, second, third = _circular(app, make_contacts)
    folder = tmp_path / "Rueckmeldungen"
    folder.mkdir()
    (folder / "1-postfix.eml").write_bytes(sample("postfix.eml", message_id=first.message_id, token=first.bounce_token,
                                                  recipient=first.to_email, sender=SENDER))
    (folder / "2-gmail.eml").write_bytes(sample("gmail.eml", message_id="<umgeschrieben@mx.example>",
                                                token=second.bounce_token, recipient=second.to_email, sender=SENDER))
    # Notes quoting neither Message-ID nor token (a message from before the header): found by the address.
    notes = sample("notes.eml", message_id="", token=None, recipient=third.to_email, sender=SENDER)
    notes = notes.replace(b"Message-ID: \r\n", b"")
    (folder / "3-notes.eml").write_bytes(notes)

    result = runner.invoke(args=["rsvp", "ingest", str(folder)])  # the old name reads reports too

    assert result.exit_code == 0, result.output
    assert "Mail 1 („Undelivered Mail Returned to Sender“" in result.output
    assert "dauerhaft unzustellbar (Postfix (RFC 3464))" in result.output
    assert "dauerhaft unzustellbar (Gmail (RFC 3464))" in result.output
    assert "dauerhaft unzustellbar (Lotus Notes/Domino)" in result.output
    assert result.output.strip().splitlines()[-1] == "3 Mails gelesen, 3 unzustellbar."
    db.session.expire_all()
    assert [m.state for m in (first, second, third)] == ["unzustellbar"] * 3
    matched = dict(db.session.execute(select(OutboxBounce.message_id, OutboxBounce.matched_by)).all())
    assert matched == {first.id: "message_id", second.id: "token", third.id: "recipient"}
    assert "not listed in Domino Directory" in third.server_reply

    again = runner.invoke(args=["mailbox", "ingest", str(folder)])
    assert again.exit_code == 0 and "bereits verarbeitet; nichts geändert" in again.output, again.output
    assert db.session.scalar(select(db.func.count(OutboxBounce.id))) == 3


def test_a_late_bounce_for_a_changed_address_flags_nobody(app, runner, make_contacts, tmp_path):
    [message] = _circular(app, make_contacts, 1)
    contact = db.session.get(Contact, message.contact_id)
    recipients.save_contact(contact, {"last_name": contact.last_name, "email": "neu@kreis-neu.example"})
    db.session.commit()
    path = tmp_path / "bounce.eml"
    path.write_bytes(sample("rfc3464_permanent.eml", message_id=message.message_id, token=message.bounce_token,
                            recipient=message.to_email, sender=SENDER))

    result = runner.invoke(args=["mailbox", "ingest", str(path)])

    assert result.exit_code == 0, result.output
    assert "hat inzwischen eine andere Adresse; nicht markiert" in result.output
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).state == "unzustellbar"
    assert db.session.get(Contact, contact.id).undeliverable_since is None


def test_address_in_another_spelling_is_matched_and_erasure_removes_the_reports(app, runner, make_contacts, tmp_path):
    people = make_contacts(1, "ida")
    people[0].email = "ida@müllheim.example"  # the Verteiler keeps Unicode, the outbox sends IDNA
    db.session.commit()
    from ki_post.outbox.services import create_mailing, enqueue, start_mailing

    mailing = create_mailing("rundschreiben", "Rundschreiben")
    message = enqueue(mailing, to_email=people[0].email, contact_id=people[0].id, subject="Rundschreiben", text="Text\n")
    start_mailing(mailing)
    db.session.commit()
    Worker(app).run(once=True)
    db.session.expire_all()
    assert message.to_email == "ida@xn--mllheim-n2a.example"
    report = sample("postfix_text_only.eml", message_id="", token=None, recipient="IDA@müllheim.example", sender=SENDER)
    (tmp_path / "r.eml").write_bytes(report.replace(b"Message-ID: \r\n", b""))

    result = runner.invoke(args=["mailbox", "ingest", str(tmp_path / "r.eml")])

    assert result.exit_code == 0 and "jetzt unzustellbar" in result.output, result.output
    contact = db.session.get(Contact, people[0].id)
    assert contact.undeliverable_since is not None
    recipients.anonymise_contact(contact)
    db.session.commit()
    assert db.session.scalar(select(db.func.count(OutboxBounce.id))) == 0
    assert contact.undeliverable_since is None and contact.undeliverable_reason == ""
