"""Copies that carry only an address, failed messages, .eml files: each found and scrubbed (both backends).

Rows without a contact id exist where a contact was deleted before erasure scrubbed anything (the
foreign keys only emptied the id) and the person came back later with the same address.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from ki_post.events import services as events
from ki_post.events.models import CalendarReply, Invitation
from ki_post.extensions import db
from ki_post.letters import services as letters
from ki_post.letters.models import ArchivedLetter, LetterRun
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, outbox_dir, start_mailing
from ki_post.outbox.steering import retry_failed
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact
from ki_post.recipients.services import anonymise_contact, delete_contact
from tests.marker_scan import scan_database, scan_files

ADDRESS = "erika.adressmarker@kreis-süd.example"
PLAIN_ADDRESS = "erika.adressmarker@kreis-sued.example"
ADDRESS_ACE = "erika.adressmarker@" + "kreis-süd.example".encode("idna").decode()
MARKERS = ["adressmarker", "Xzname", "Xzbemerkung"]


def _message(mailing, to_email: str, contact_id: int | None, name: str = "Erika Xzname") -> OutboxMessage:
    return enqueue(mailing, to_email=to_email, to_name=name, contact_id=contact_id, subject="Mitteilung",
                   text=f"Guten Tag {name},\nXzbemerkung\n" if "Xz" in name else "Guten Tag\n")


@pytest.fixture
def copies(app):
    person = Contact(first_name="Erika", last_name="Xzname", email=ADDRESS)
    other = Contact(first_name="Otto", last_name="Anders", email="otto.anders@kreis-süd.example")
    db.session.add_all([person, other])
    db.session.flush()
    # Sent by the file transport (no SMTP server): one .eml file each.
    sent = create_mailing("allgemein", "Mitteilung an alle")
    _message(sent, ADDRESS, person.id)
    _message(sent, other.email, other.id, "Otto Anders")
    start_mailing(sent)
    db.session.commit()
    Worker(app).run(once=True)
    # Left over from an earlier deletion: the address only, spelled the way the outbox stores it (IDNA, any case).
    waiting = create_mailing("allgemein", "Zweite Mitteilung")
    orphan = _message(waiting, "Erika.Adressmarker@KREIS-SÜD.example", None)
    failed = _message(waiting, ADDRESS, person.id)
    _message(waiting, other.email, other.id, "Otto Anders")
    start_mailing(waiting)
    db.session.flush()
    failed.state, failed.server_reply = "fehlgeschlagen", f"550 5.1.1 <{ADDRESS}>: Postfach voll"
    # In doubt (connection lost after DATA), the server's last words naming her address.
    in_doubt = _message(waiting, ADDRESS, person.id)
    db.session.flush()
    in_doubt.state, in_doubt.server_reply = "unklar", f"Verbindung nach DATA abgebrochen (RCPT <{ADDRESS_ACE}> angenommen)"
    event = events.create_event(events.EventData(title="Fachtag", start=datetime.now(timezone.utc) + timedelta(days=9),
                                                 end=datetime.now(timezone.utc) + timedelta(days=9, hours=3)))
    events.publish_event(event)
    db.session.add_all([
        Invitation(event=event, contact_id=None, name="Erika Xzname", email=ADDRESS, token="alt-token-xz", state="zugesagt",
                   remark="Xzbemerkung", dietary="vegan", answers={"anreise": "Xzbemerkung Bahn"}),
        Invitation(event=event, contact_id=other.id, name="Otto Anders", email=other.email, token="otto-token"),
        # Calendar clients may write the domain in its ASCII form.
        CalendarReply(key=f"uid|{ADDRESS}|0|x", attendee_email=ADDRESS_ACE.upper(), attendee_name="Erika Xzname",
                      from_email=ADDRESS_ACE, comment="Xzbemerkung", status="unzugeordnet"),
        CalendarReply(key="uid|otto|0|x", attendee_email=other.email, attendee_name="Otto Anders", status="unzugeordnet"),
    ])
    version = letters.template_by_name("rundschreiben").latest
    run = LetterRun(template_version=version, fields={})
    db.session.add(ArchivedLetter(run=run, contact_id=None, recipient=ADDRESS, template_version_id=version.id,
                                  filename="brief.docx", sha256=version.blob_key))
    db.session.commit()
    return person, other, waiting, orphan.id, failed.id


@pytest.mark.parametrize("erase", [anonymise_contact, delete_contact])
def test_copies_by_address_failed_messages_and_files(app, copies, erase):
    person, other, waiting, orphan_id, failed_id = copies
    files = sorted(outbox_dir().glob("*.eml"))
    assert len(files) == 2 and {h.marker for h in scan_files([outbox_dir()], MARKERS)} >= {"adressmarker", "Xzname"}

    erase(person)
    assert len(sorted(outbox_dir().glob("*.eml"))) == 2  # nothing leaves the disk before the commit
    db.session.commit()

    leaks = [hit for hit in scan_database(MARKERS) if hit.table != "archived_letters"]
    assert leaks == [] and scan_files([outbox_dir()], MARKERS) == []
    assert len(sorted(outbox_dir().glob("*.eml"))) == 1  # Otto's copy stays
    orphan, failed = db.session.get(OutboxMessage, orphan_id), db.session.get(OutboxMessage, failed_id)
    assert orphan.state == "zurueckgezogen" and failed.state == "zurueckgezogen"
    assert retry_failed(waiting) == 0  # nothing of hers can be sent again
    unklar = db.session.scalar(select(OutboxMessage).where(OutboxMessage.state == "unklar"))
    assert unklar.server_reply == "Verbindung nach DATA abgebrochen (RCPT <anonymisiert@anonymisiert.invalid> angenommen)"
    invitation = db.session.scalar(select(Invitation).where(Invitation.name == "Anonymisiert"))
    assert invitation.state == "zugesagt" and invitation.token != "alt-token-xz" and invitation.answers == {}
    assert db.session.scalar(select(Invitation.token).where(Invitation.email == other.email)) == "otto-token"
    keys = set(db.session.scalars(select(CalendarReply.key)))
    assert "uid|otto|0|x" in keys and any(key.startswith("geloescht:") for key in keys)
    assert db.session.scalar(select(ArchivedLetter.addressee_erased_at)) is not None
    assert db.session.scalar(select(OutboxMessage.to_name).where(OutboxMessage.contact_id == other.id).limit(1)) == "Otto Anders"


def test_rolled_back_erasure_keeps_everything(app, copies):
    person = copies[0]
    anonymise_contact(person)
    db.session.rollback()
    assert len(sorted(outbox_dir().glob("*.eml"))) == 2
    assert {hit.table for hit in scan_database(MARKERS)} >= {"contacts", "outbox_messages", "invitations", "calendar_replies"}



def test_scrub_anonymised_catches_up_on_earlier_anonymisations(app):
    """Contacts anonymised before this version left their copies behind; one command scrubs them."""
    from ki_post.recipients.signals import contact_erasing

    person = Contact(first_name="Erika", last_name="Xzname", email=PLAIN_ADDRESS)
    db.session.add(person)
    event = events.create_event(events.EventData(title="Fachtag", start=datetime.now(timezone.utc) + timedelta(days=9),
                                                 end=datetime.now(timezone.utc) + timedelta(days=9, hours=3)))
    db.session.flush()
    events.invite(event, contact_ids=[person.id])
    invitation = db.session.scalar(select(Invitation))
    events.answer(invitation, "zugesagt", remark="Xzbemerkung")
    db.session.add(CalendarReply(key=f"uid|{PLAIN_ADDRESS}|0|x", attendee_email=PLAIN_ADDRESS, attendee_name="Erika Xzname",
                                 comment="Xzbemerkung", status="uebernommen", invitation_id=invitation.id))
    # Anonymised the way the earlier version did it: only the contact row.
    with contact_erasing.muted():
        anonymise_contact(person)
    db.session.commit()
    assert {hit.table for hit in scan_database(MARKERS)} >= {"outbox_messages", "invitations", "calendar_replies"}

    result = app.test_cli_runner().invoke(args=["recipients", "scrub-anonymised"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 anonymisierte Ansprechperson bereinigt (")
    assert scan_database(MARKERS) == []
    assert db.session.scalar(select(Invitation.state)) == "zugesagt"
    again = app.test_cli_runner().invoke(args=["recipients", "scrub-anonymised"])
    assert again.exit_code == 0 and scan_database(MARKERS) == []
