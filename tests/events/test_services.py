"""Events, invitations, capacity, waiting list, updates and cancellation (service level, both databases)."""
from __future__ import annotations

from email import message_from_bytes, policy

import icalendar
import pytest
from ical.calendar_stream import IcsCalendarStream
from sqlalchemy import select

from ki_post.auth.models import AuditEntry
from ki_post.formatting import BERLIN
from ki_post.errors import ValidationError
from ki_post.events import invitations, services
from ki_post.events.models import Event, Invitation
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import build_mime, start_mailing
from tests.events.conftest import future


def messages(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).join(Mailing).where(Mailing.kind == kind).order_by(OutboxMessage.id)))


def test_create_event_stores_utc_and_validates(make_event):
    event = make_event(start="2017-02-08T11:00", end="2017-02-08T13:00")
    assert event.start_at.hour == 10 and event.start_at.utcoffset().total_seconds() == 0
    assert event.state == "entwurf" and event.sequence == 0 and len(event.uid) == 36
    for bad, field in [(dict(title=" "), "title"), (dict(end="2017-02-08T10:00"), "end"), (dict(start="morgen"), "start"),
                       (dict(capacity=0), "capacity"), (dict(companions_allowed=-1), "companions_allowed"),
                       (dict(title="a\r\nBcc: x@y"), "title")]:
        values = dict(title="T", start="2017-02-08T11:00", end="2017-02-08T13:00", **{})
        values.update(bad)
        with pytest.raises(ValidationError) as error:
            services.create_event(services.EventData(**values))
        assert error.value.field == field
    db.session.rollback()
    assert db.session.scalar(select(db.func.count(Event.id))) == 1


def test_time_messages_in_correct_german_and_dst_gap(app):
    def error_for(**overrides) -> ValidationError:
        values = {"title": "T", "start": "2027-03-28T01:30", "end": "2027-03-28T04:00", **overrides}
        with pytest.raises(ValidationError) as error:
            services.create_event(services.EventData(**values))
        return error.value

    bad = error_for(start="morgen")
    assert str(bad).startswith("Der Beginn ist kein gültiger Zeitpunkt") and "2017-02-08T11:00" in str(bad)
    assert str(error_for(end="gestern")).startswith("Das Ende ist kein gültiger Zeitpunkt")
    assert str(error_for(start="")) == "Bitte geben Sie den Beginn an."
    # 02:30 does not exist on 28 March 2027 in Berlin: zoneinfo would quietly read it as 03:30.
    for start in ("2027-03-28T02:30", "28.03.2027 02:30"):
        gap = error_for(start=start, end="2027-03-28T03:00")
        assert gap.field == "start" and "02:30 Uhr gibt es am 28.03.2027 nicht" in str(gap) and "Zeitumstellung" in str(gap)
    assert error_for(end="2027-03-28T02:15").field == "end"
    # The hour before and after the gap is fine, and so is the doubled hour in October.
    event = services.create_event(services.EventData(title="T", start="2027-03-28T01:59", end="2027-03-28T03:00"))
    assert (event.end_at - event.start_at).total_seconds() == 60
    assert services.create_event(services.EventData(title="T", start="2027-10-31T02:30", end="2027-10-31T03:30"))
    db.session.rollback()


def test_invite_enqueues_one_mail_each_with_request_MIME(app, demo, make_event):
    event = make_event()
    verteiler = services.verteiler_id_by_name("Alle KI-Dezernate")
    result = services.invite(event, verteiler_id=verteiler)
    db.session.commit()
    assert result.invited == 53 and event.state == "veroeffentlicht"
    sent = messages("einladung")
    assert len(sent) == 53 and len({m.to_email for m in sent}) == 53
    again = services.invite(event, verteiler_id=verteiler)
    assert again.invited == 0 and again.already == 53  # nobody twice
    message = sent[0]
    invitation = db.session.scalar(select(Invitation).where(Invitation.email == message.to_email))
    link = services.rsvp_link(invitation)
    assert link in message.text and link in message.html
    mime = message_from_bytes(build_mime(message), policy=policy.default)
    assert mime.get_all("To") and len(mime.get_all("To")) == 1 and mime["Cc"] is None  # MIME-07
    alternative = next(p for p in mime.walk() if p.get_content_type() == "multipart/alternative")
    parts = alternative.get_payload()
    assert parts[-1].get_content_type() == "text/calendar"  # MIME-01: calendar last
    calendar = parts[-1]
    assert calendar.get_param("method") == "REQUEST" and calendar.get_param("charset").upper() == "UTF-8"  # MIME-02
    assert calendar["Content-Disposition"] is None  # MIME-03
    data = calendar.get_payload(decode=True)
    assert data == message.calendar_data  # MIME-05
    cal = icalendar.Calendar.from_ical(data)
    assert str(cal["METHOD"]) == calendar.get_param("method")
    vevent = cal.walk("VEVENT")[0]
    assert str(vevent["UID"]) == event.uid
    assert str(vevent["ATTENDEE"]).lower() == f"mailto:{message.to_email}"
    assert str(vevent["ORGANIZER"]).lower() == "mailto:" + mime["From"].addresses[0].addr_spec.lower()  # MIME-06
    assert IcsCalendarStream.calendar_from_ics(data.decode()).events[0].uid == event.uid
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "veranstaltung.eingeladen")) is not None


def test_rows_without_a_sent_invitation_do_not_count_as_already_invited(app, demo, make_event):
    """Demo data and staff answers create invitation rows without mailing anything."""
    event = make_event()
    verteiler = services.verteiler_id_by_name("Alle KI-Dezernate")
    contacts = invitations._contacts(verteiler, None)
    services.add_invitations(event, contacts[:5])
    result = services.invite(event, verteiler_id=verteiler)
    assert (result.invited, result.already) == (53, 0)
    again = services.invite(event, verteiler_id=verteiler)
    assert (again.invited, again.already) == (0, 53)


def test_template_without_link_is_refused(app, demo, make_event, tmp_path, monkeypatch):
    from ki_post.outbox import services as outbox

    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "einladung.txt").write_text("{% set subject %}Einladung{% endset %}Kommen Sie!\n", encoding="utf-8")
    monkeypatch.setattr(outbox, "MAIL_TEMPLATE_DIR", folder)
    outbox._environments.clear()
    event = make_event()
    try:
        with pytest.raises(ValidationError, match="Antwortlink"):
            services.invite(event, verteiler_id=services.verteiler_id_by_name("Alle KI-Dezernate"))
    finally:
        outbox._environments.clear()
    db.session.rollback()
    assert messages("einladung") == [] and db.session.scalar(select(db.func.count(Invitation.id))) == 0


def send_all(app) -> None:
    """The worker with the file transport (no SMTP server in these tests): messages become "gesendet"."""
    from ki_post.outbox.worker import Worker

    db.session.commit()
    app.config["MAIL_RATE_PER_MINUTE"] = 0
    Worker(app).run(once=True)
    db.session.expire_all()


def test_update_and_cancel_keep_uid_and_bump_sequence_ITIP(app, demo, make_event):
    event = make_event()
    services.invite(event, verteiler_id=services.verteiler_id_by_name("Alle KI-Dezernate"), start=True)
    send_all(app)
    first = event.invitations[0]
    services.answer(first, "abgesagt")
    result = services.update_event(event, services.EventData(
        title=event.title, start=future(31, 12), end=future(31, 14), place_name=event.place_name,
        place_address=event.place_address, room="Saal 2", companions_allowed=2), start=True)
    # Everyone whose calendar holds the event gets the update, also who declined (their calendar keeps
    # the entry, as with Outlook's own updates; the new time may suit them).
    assert result.updates == 53 and result.changed == ["Beginn", "Ende", "Raum"] and event.sequence == 1
    send_all(app)
    cancelled = services.cancel_event(event, "Erkrankung der Rednerin", start=True)
    assert cancelled.recipients == 53 and cancelled.withdrawn == 0
    db.session.commit()
    sequences = []
    for kind, method in (("einladung", "REQUEST"), ("aktualisierung", "REQUEST"), ("absage", "CANCEL")):
        msg = next(m for m in messages(kind) if m.to_email == first.email)
        vevent = icalendar.Calendar.from_ical(msg.calendar_data).walk("VEVENT")[0]
        assert str(vevent["UID"]) == event.uid and msg.calendar_method == method
        sequences.append(int(vevent["SEQUENCE"]))
        if method == "CANCEL":
            assert str(vevent["STATUS"]) == "CANCELLED"
            assert "Grund: Erkrankung der Rednerin" in msg.text
    assert sequences == [0, 1, 2]


def test_capacity_waiting_list_and_move_up(published):
    event = published(3, capacity=3)
    a, b, c = sorted(event.invitations, key=lambda i: i.id)
    assert services.answer(a, "zugesagt", companions=1).state == "zugesagt"
    assert services.answer(b, "zugesagt").state == "zugesagt"
    assert services.answer(c, "zugesagt").state == "warteliste"  # 3 seats taken
    with pytest.raises(ValidationError):
        services.answer(b, "zugesagt", companions=2)  # no room for more companions
    db.session.commit()
    result = services.answer(a, "abgesagt")
    db.session.commit()
    assert [p.id for p in result.moved_up] == [c.id] and c.state == "zugesagt"
    assert [m.to_email for m in messages("nachruecker")] == [c.email]
    # One confirmation each: a's change rewrote a's confirmation still waiting, the refused change sent nothing;
    # all in one running mailing.
    confirmations = messages("bestaetigung")
    assert [m.to_email for m in confirmations] == [a.email, b.email, c.email]
    assert "Ihre Antwort: Absage" in confirmations[0].text and confirmations[0].revision == 1
    assert len({m.mailing_id for m in confirmations}) == 1
    assert services.seats_taken(event.id) == 2


def test_bad_answers_change_nothing(published):
    event = published(1, companions_allowed=1)
    invitation = event.invitations[0]
    for state, companions in (("maybe", 0), ("zugesagt", 2), ("zugesagt", -1), ("zugesagt", "x")):
        with pytest.raises(ValidationError):
            services.answer(invitation, state, companions=companions)
    db.session.rollback()
    assert invitation.state == "offen" and messages("bestaetigung") == []


def test_one_deadline_for_all_channels_staff_may_override_explicitly(published):
    event = published(1, deadline="2000-01-01T00:00")
    invitation = event.invitations[0]
    for channel in ("link", "kalender", "telefon"):
        with pytest.raises(ValidationError, match="Antwortfrist"):
            services.answer(invitation, "zugesagt", channel=channel)
    with pytest.raises(ValidationError, match="Antwortfrist"):  # the personal link never overrides
        services.answer(invitation, "zugesagt", channel="link", override_deadline=True)
    services.answer(invitation, "zugesagt", channel="telefon", override_deadline=True)
    db.session.commit()
    assert invitation.state == "zugesagt" and invitation.channel == "telefon"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "antwort.zugesagt"))
    assert entry.details["kanal"] == "telefon"


def test_reminders_only_where_they_make_sense(app, published):
    """Only to people whose invitation went out and who have not answered (optionally also those who
    accepted); a second reminder soon after needs a confirmation."""
    event = published(4)
    a, b, c, d = sorted(event.invitations, key=lambda i: i.id)
    with pytest.raises(ValidationError, match="niemanden zu erinnern"):
        services.send_reminders(event)  # nobody's invitation went out yet
    services.invite(event, contact_ids=[i.contact_id for i in (a, b, c)], start=True)
    assert services.reminder_recipients(event) == []  # queued is not sent
    send_all(app)
    services.answer(a, "zugesagt")
    services.answer(b, "abgesagt")
    assert services.reminder_recipients(event) == [c]
    assert services.reminder_recipients(event, include_accepted=True) == [a, c]
    result = services.send_reminders(event, include_accepted=True)
    assert (result.reminded, result.skipped) == (2, 0)
    reminders = messages("erinnerung")
    assert {m.to_email for m in reminders} == {a.email, c.email}
    assert all(m.expires_at == event.start_at for m in reminders)  # never after the start
    assert services.reminder_recipients(event, include_accepted=True) == []  # one waiting is enough
    assert reminders[0].mailing.state == "entwurf"  # a draft: preview, test mail, then "Senden"
    start_mailing(reminders[0].mailing)
    db.session.commit()
    assert services.recent_reminder(event) is not None
    send_all(app)
    with pytest.raises(ValidationError, match="bereits erinnert") as error:
        services.send_reminders(event, include_accepted=True)
    assert error.value.field == "repeat"
    assert services.send_reminders(event, include_accepted=True, repeat_confirmed=True).reminded == 2
    db.session.rollback()
    # Answering withdraws a reminder that was meant for people without an answer.
    services.send_reminders(event, repeat_confirmed=True)
    services.answer(c, "abgesagt")
    db.session.commit()
    waiting = [m for m in messages("erinnerung") if m.state != "gesendet"]
    assert [(m.to_email, m.state) for m in waiting] == [(c.email, "zurueckgezogen")]
    services.cancel_event(event)
    with pytest.raises(ValidationError, match="abgesagt"):
        services.send_reminders(event, repeat_confirmed=True)


def test_exports_neutralise_formulas(published):
    from io import BytesIO

    import openpyxl

    event = published(1, ask_remarks=True)
    invitation = event.invitations[0]
    services.answer(invitation, "zugesagt", remark="=HYPERLINK(\"http://x\")")
    csv = services.export_participants(event, "csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in csv and csv.splitlines()[0].startswith("Name;Organisation")
    sheet = openpyxl.load_workbook(BytesIO(services.export_participants(event, "xlsx"))).active
    values = [cell.value for row in sheet.iter_rows() for cell in row]
    assert invitation.name in values and not any(isinstance(v, str) and v.startswith("=") for v in values)
    with pytest.raises(ValidationError):
        services.export_participants(event, "pdf")


def test_sign_in_sheet_docx(published):
    from io import BytesIO

    from docx import Document

    from ki_post.events.signin import sign_in_docx

    event = published(2)
    a, b = event.invitations
    services.answer(a, "zugesagt", companions=1)
    services.answer(b, "abgesagt")
    document = Document(BytesIO(sign_in_docx(event)))
    table = document.tables[0]
    assert [c.text for c in table.rows[0].cells] == ["Nr.", "Name", "Organisation", "Unterschrift"]
    names = [row.cells[1].text for row in table.rows[1:]]
    assert a.name in names and b.name not in names and any("Begleitperson 1" in n for n in names)


def test_demo_is_idempotent(app, demo):
    from ki_post.events.demo import TITLE, load_demo

    first = load_demo()
    db.session.commit()
    assert first == {"events": 1, "invitations": 53}
    assert load_demo() == {"events": 0, "invitations": 0}
    event = db.session.scalar(select(Event).where(Event.title == TITLE))
    assert event.start_at.astimezone(BERLIN).hour == 11 and event.place_address == "Fürstenwall 25, 40219 Düsseldorf"


def test_circular_attachment_checked_by_content(app, demo, make_event):
    import io

    from docx import Document

    buffer = io.BytesIO()
    Document().save(buffer)
    attachment = services.circular_attachment("Rundschreiben\r\nBcc: x.docx", buffer.getvalue())
    assert attachment.filename == "RundschreibenBcc: x.docx" and attachment.mimetype.endswith("wordprocessingml.document")
    assert services.circular_attachment("brief", b"%PDF-1.7\n...").filename == "brief.pdf"
    for bad in (b"MZ\x90\x00", b"PK\x03\x04kaputt", b"<html>"):
        with pytest.raises(ValidationError, match="nur PDF"):
            services.circular_attachment("rundschreiben.pdf", bad)
    event = make_event()
    services.invite(event, verteiler_id=services.verteiler_id_by_name("Alle KI-Dezernate"),
                    attachments=[services.circular_attachment("rundschreiben.pdf", b"%PDF-1.7\n")])
    sent = messages("einladung")
    assert all(m.attachments[0].filename == "rundschreiben.pdf" for m in sent)
    assert len({m.attachments[0].blob_sha256 for m in sent}) == 1  # stored once


def test_sign_in_sheet_pdf_with_libreoffice(published):
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from ki_post.events.signin import sign_in_sheet
    from ki_post.letters.pdf import pdf_available

    if not pdf_available():
        pytest.skip("LibreOffice (soffice) fehlt")
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext fehlt (poppler-utils)")
    event = published(2)
    services.answer(event.invitations[0], "zugesagt")
    pdf = sign_in_sheet(event, pdf=True)
    assert pdf.startswith(b"%PDF")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "liste.pdf"
        path.write_bytes(pdf)
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True).stdout
    assert "Unterschriftenliste" in text and event.invitations[0].name in text and "Unterschrift" in text
