"""One person driven through the whole product, with a unique marker string in every personal field.

Shared by the erasure and the data-export tests. Everything goes the way staff and officers use
KI-Post: import through the upload page, a circular mailed and sent through the real aiosmtpd server,
letters produced into the archive, an invitation answered through the personal link (remark and
dietary note), a calendar reply mail with a COMMENT ingested with ``rsvp ingest``, one more import
file waiting in its preview, and a circular mailing drafted but not started.
"""
from __future__ import annotations

import email
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path

import icalendar
from flask import Flask, g
from sqlalchemy import select

from ki_post.auth.services import create_user
from ki_post.events import questions, services as events
from ki_post.events.models import Event, Invitation
from ki_post.extensions import db
from ki_post.letters.models import ArchivedLetter
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact
from tests.helpers import PASSWORD, Client
from tests.marker_scan import docx_text, readings
from tests.recipients.files import csv_data, xlsx_data
from tests.smtp_server import SmtpServer

HEADERS = ["Kommune", "Art", "Regierungsbezirk", "Anrede", "Titel", "Amtsbezeichnung", "Vorname", "Nachname", "Funktion",
           "Straße", "PLZ", "Ort", "E-Mail", "Telefon", "Notizen", "Vertretung"]
PERSON_EMAIL = "quirinella.zwirbelmeyer@kreis-xq.example"
PERSON_ROW = ["Kreis Mettmann", "Kreis", "Düsseldorf", "Frau", "Dr. Xqtitel", "Xqamt Beigeordnete", "Quirinella",
              "Zwirbelmeyer-Xq", "Xqfunktion Dezernentin für Integration", "Düsseldorfer Straße 26", "40822", "Mettmann",
              "Quirinella.Zwirbelmeyer@Kreis-Xq.example", "02104 7319-4682", "Xqnotiz dienstags erreichbar",
              "Xqvertretung Herr Ersatz"]
BYSTANDER_EMAIL = "bernd.beistand@stadt-bsp.example"
BYSTANDER_ROW = ["Stadt Bsp", "kreisfreie Stadt", "Köln", "Herr", "", "", "Bernd", "Beistand", "Dezernent",
                 "Rathausplatz 1", "50667", "Köln", BYSTANDER_EMAIL, "0221 1", "", ""]
REMARK = "Xqbemerkung ich komme etwas später"
DIETARY = "Xqdiaet laktosefrei, keine Nüsse"
COMMENT = "Xqkommentar aus dem Kalender: vorläufig zugesagt"
PENDING_NOTE = "Xqvorschau neue Sprechzeit"
QUESTION_ANSWER = "Xqfreitext Wie geht es mit der Förderung weiter?"  # a free-text answer to the event's own question
# Every personal value of the person (address in the form the Verteiler stores it).
MARKERS = ["Xqtitel", "Xqamt", "Quirinella", "Zwirbelmeyer-Xq", "Xqfunktion", PERSON_EMAIL, "7319-4682", "Xqnotiz",
           "Xqvertretung", "Xqbemerkung", "Xqdiaet", "Xqkommentar", PENDING_NOTE, "Xqfreitext"]
LIST_NAME = "Festakt-Verteiler"


@dataclass
class Scenario:
    app: Flask
    smtp: SmtpServer
    admin: Client
    staff: Client
    reader: Client
    contact_id: int
    event_id: int
    circular_mailing_id: int
    draft_mailing_id: int
    letter_run_id: int
    old_tokens: list[str] = field(default_factory=list)

    def contact(self) -> Contact:
        return db.session.get(Contact, self.contact_id)

    def person_letters(self) -> list[ArchivedLetter]:
        return list(db.session.scalars(select(ArchivedLetter).where(ArchivedLetter.recipient.contains("Zwirbelmeyer-Xq"))))


class PersonClient(Client):
    """A browser of its own. The tests run inside one app context, whose ``g`` would otherwise carry what
    one client's request cached there (Flask-Login's user, Flask-WTF's CSRF token) into the next client's."""

    def open(self, *args, **kwargs):
        _forget_request_cache()
        try:
            return super().open(*args, **kwargs)
        finally:
            _forget_request_cache()


def _forget_request_cache() -> None:
    for name in list(vars(g)):
        delattr(g, name)


def _client(app: Flask, email_address: str | None = None, role: str | None = None) -> Client:
    client = PersonClient(app, app.response_class, use_cookies=True)
    if email_address:
        create_user(email_address, role.capitalize(), role, PASSWORD)
        db.session.commit()
        client.login(email_address)
    return client


def mail_texts(content: bytes) -> list[str]:
    """Every text a mail carries: headers, decoded text parts, the calendar part, DOCX attachments' XML and text."""
    message = email.message_from_bytes(content, policy=policy.default)
    texts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        texts.append(payload.decode("utf-8", "replace"))
        if payload.startswith(b"PK"):
            texts.append(docx_text(payload))
    return texts


def mail_mentions(content: bytes, markers: list[str]) -> set[str]:
    found = set()
    for text in mail_texts(content):
        for reading in readings(text):
            found |= {marker for marker in markers if marker.casefold() in reading.casefold()}
    return found


def calendar_reply(event: Event, *, uid: str | None = None, partstat: str = "TENTATIVE") -> bytes:
    """A REPLY as a calendar client sends it after "Vorläufig", built with the icalendar library."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REPLY")
    vevent = icalendar.Event()
    vevent.add("uid", uid or event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", datetime.now(timezone.utc))
    vevent.add("dtstart", event.start_at)
    vevent.add("dtend", event.end_at)
    vevent.add("summary", event.title)
    vevent.add("comment", COMMENT)
    attendee = icalendar.vCalAddress(f"mailto:{PERSON_EMAIL}")
    attendee.params["CN"] = icalendar.vText("Quirinella Zwirbelmeyer-Xq")
    attendee.params["PARTSTAT"] = icalendar.vText(partstat)
    vevent.add("attendee", attendee)
    vevent.add("organizer", icalendar.vCalAddress(f"mailto:{event.organizer_email}"))
    calendar.add_component(vevent)
    message = EmailMessage()
    message["From"] = "Quirinella Zwirbelmeyer-Xq <Quirinella.Zwirbelmeyer@Kreis-Xq.example>"
    message["To"] = event.organizer_email
    message["Subject"] = f"Vorläufig: {event.title}"
    message["Message-ID"] = f"<{uid or 'antwort'}.xq@kreis-xq.example>"
    message.set_content("Quirinella Zwirbelmeyer-Xq hat vorläufig zugesagt.")
    message.add_alternative(calendar.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"})
    return message.as_bytes()


def run_worker(app: Flask) -> None:
    Worker(app).run(once=True)
    db.session.expire_all()


def build(app: Flask, smtp: SmtpServer, tmp_path: Path) -> Scenario:
    admin = _client(app, "admin@ministerium.example", "admin")
    staff = _client(app, "sachbearbeitung@ministerium.example", "sachbearbeitung")
    reader = _client(app, "lesen@ministerium.example", "lesen")
    runner = app.test_cli_runner()

    # Import through the upload page, into a Verteiler.
    upload = staff.submit("/verteiler/import", {"file": (io.BytesIO(csv_data(headers=HEADERS, rows=[PERSON_ROW, BYSTANDER_ROW])),
                                                         "verteiler.csv")}, content_type="multipart/form-data")
    assert upload.status_code == 302, upload.get_data(as_text=True)[:500]
    applied = staff.submit(upload.headers["Location"], {"action": "anwenden", "list_name": LIST_NAME})
    assert applied.status_code == 302
    contact = db.session.scalar(select(Contact).where(Contact.email == PERSON_EMAIL))
    assert contact is not None and contact.extra.get("Vertretung", "").startswith("Xqvertretung")

    # Letters produced into the archive, and a circular mailed and sent through SMTP.
    downloads = tmp_path / "downloads"
    result = runner.invoke(args=["letters", "render", "--template", "rundschreiben", "--out", str(downloads / "briefe.zip"),
                                 "--list", LIST_NAME, "--set", "betreff=Ausbau der Integrationszentren"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["letters", "mail", "--template", "rundschreiben", "--list", LIST_NAME,
                                 "--subject", "Förderung 2027"])
    assert result.exit_code == 0, result.output
    circular_mailing_id = int(result.output.strip().splitlines()[-1])

    # An event with a dietary question, invited through the CLI.
    event = events.create_event(events.EventData(
        title="Festakt Integrationszentren", start=datetime.now(timezone.utc) + timedelta(days=30),
        end=datetime.now(timezone.utc) + timedelta(days=30, hours=2), place_name="Ministerium",
        place_address="Fürstenwall 25, 40219 Düsseldorf", ask_dietary=True, companions_allowed=1))
    question = questions.add_question(event, questions.QuestionData("Ihre Frage an das Podium", "text"))
    question_field = question.field
    db.session.commit()
    result = runner.invoke(args=["events", "invite", str(event.id), "--list", LIST_NAME])
    assert result.exit_code == 0, result.output
    run_worker(app)

    # The calendar client's REPLY (with COMMENT), and one for an event KI-Post does not know (unmatched).
    mailbox = tmp_path / "funktionspostfach"
    mailbox.mkdir()
    (mailbox / "antwort.eml").write_bytes(calendar_reply(event))
    (mailbox / "fremd.eml").write_bytes(calendar_reply(event, uid="unbekannte-veranstaltung-xq", partstat="ACCEPTED"))
    result = runner.invoke(args=["rsvp", "ingest", str(mailbox)])
    assert result.exit_code == 0, result.output
    run_worker(app)  # the first confirmation leaves before the second answer (else it is rewritten, not doubled)

    # The officer answers through the personal link, with a remark and a dietary note.
    invitation = db.session.scalar(select(Invitation).where(Invitation.email == PERSON_EMAIL))
    officer = _client(app)
    answered = officer.submit(f"/antwort/{invitation.token}", {"answer": "zugesagt", "companions": "1",
                                                               "remark": REMARK, "dietary": DIETARY,
                                                               question_field: QUESTION_ANSWER})
    assert answered.status_code == 302, answered.get_data(as_text=True)[:800]
    run_worker(app)

    # Another import file waits in its preview; and a circular is drafted but not yet started.
    pending = staff.submit("/verteiler/import", {"file": (io.BytesIO(xlsx_data(headers=HEADERS, rows=[
        [*PERSON_ROW[:14], PENDING_NOTE, PERSON_ROW[15]]])), "nachtrag.xlsx")}, content_type="multipart/form-data")
    assert pending.status_code == 302
    result = runner.invoke(args=["letters", "mail", "--template", "rundschreiben", "--list", LIST_NAME,
                                 "--subject", "Entwurf vor der Löschung", "--entwurf"])
    assert result.exit_code == 0, result.output
    draft_mailing_id = int(result.output.strip().splitlines()[-1])

    db.session.expire_all()
    invitation = db.session.get(Invitation, invitation.id)
    assert invitation.state == "zugesagt" and invitation.remark == REMARK and invitation.dietary == DIETARY
    delivered = [rcpt.lower() for rcpt in smtp.recipients()]
    # Circular, invitation, two confirmations (calendar reply and link): all went out for real.
    assert delivered.count(PERSON_EMAIL) == 4, delivered
    run_id = db.session.scalar(select(ArchivedLetter.run_id).where(ArchivedLetter.contact_id == contact.id))
    return Scenario(app=app, smtp=smtp, admin=admin, staff=staff, reader=reader, contact_id=contact.id, event_id=event.id,
                    circular_mailing_id=circular_mailing_id, draft_mailing_id=draft_mailing_id, letter_run_id=run_id,
                    old_tokens=[invitation.token])
