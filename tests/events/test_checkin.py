"""Einlass: ticking off, undo, walk-ins, states before and after the end, the QR code in the confirmation,
the CLI, the export columns, erasure and Art. 15, and the follow-up mails (attended vs not come)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import segno
from PIL import Image
from sqlalchemy import select

from ki_post.blobs import load_blob
from ki_post.db_types import utcnow
from ki_post.errors import ValidationError
from ki_post.events import attendance, services
from ki_post.events.attendance import Attendance, AttendanceState
from ki_post.events.followup import followup_recipients, prepare_followup
from ki_post.events.models import Invitation
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, MessageState, OutboxMessage
from ki_post.recipients.models import Contact

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _end_now(event, hours: float = 1) -> None:
    """Move the event into the past (it ended ``hours`` ago)."""
    event.start_at = utcnow() - timedelta(hours=hours + 2)
    event.end_at = utcnow() - timedelta(hours=hours)
    db.session.commit()


def _accept(invitation: Invitation, companions: int = 0) -> None:
    services.answer(invitation, "zugesagt", companions=companions, channel="sachbearbeitung")
    db.session.commit()


# --- Services ------------------------------------------------------------------------------------------------

def test_check_in_undo_and_states_before_and_after_the_end(published):
    event = published(3)
    first, second, third = event.invitations
    _accept(first, companions=2)
    _accept(second)
    entries = {e.invitation.id: e for e in attendance.entries(event) if e.invitation}
    assert entries[first.id].state == AttendanceState.NOCH_NICHT_DA  # before the end: simply not there yet
    assert entries[third.id].state is None  # no answer: neither expected nor missing

    row = attendance.check_in(first)  # without a number: the registered companions came
    db.session.commit()
    assert row.present and row.companions_present == 2 and row.token  # the confirmation made the code
    assert attendance.state_of(event, first, row) == AttendanceState.ANWESEND
    counts = attendance.counts(event)
    assert (counts["anwesend"], counts["noch_nicht_da"], counts["begleitpersonen"], counts["nicht_erschienen"]) == (1, 1, 2, 0)

    attendance.check_in(first, 1)  # ticking again changes only the companions
    db.session.commit()
    assert attendance.counts(event)["begleitpersonen"] == 1

    attendance.undo(attendance.attendance_for(first))
    db.session.commit()
    assert attendance.counts(event)["anwesend"] == 0
    with pytest.raises(ValidationError, match="nicht als anwesend"):
        attendance.undo(attendance.attendance_for(first))

    attendance.check_in(second, 0)
    db.session.commit()
    _end_now(event)
    counts = attendance.counts(event)
    # After the end: the Zusage not ticked is "nicht erschienen"; the one ticked is anwesend.
    assert (counts["anwesend"], counts["nicht_erschienen"], counts["noch_nicht_da"]) == (1, 1, 0)
    states = {e.invitation.id: e.state for e in attendance.entries(event) if e.invitation}
    assert states == {first.id: AttendanceState.NICHT_ERSCHIENEN, second.id: AttendanceState.ANWESEND, third.id: None}


def test_walk_in_is_present_at_once_and_listed(published):
    event = published(1)
    row = attendance.add_walk_in(event, "  Max Gast ", "Kreis Wesel", "Max.Gast@Kreis.example", 1)
    db.session.commit()
    assert row.walk_in and row.present and row.email == "max.gast@kreis.example"
    counts = attendance.counts(event)
    assert (counts["anwesend"], counts["vor_ort"], counts["begleitpersonen"]) == (1, 1, 1)
    found = attendance.entries(event, "wesel")
    assert [(e.name, e.walk_in, e.answer) for e in found] == [("Max Gast", True, "vor Ort angemeldet")]
    attendance.undo(row)
    attendance.check_in_walk_in(row, 0)
    db.session.commit()
    assert attendance.counts(event)["anwesend"] == 1

    with pytest.raises(ValidationError, match="Namen"):
        attendance.add_walk_in(event, " ")
    with pytest.raises(ValidationError, match="E-Mail"):
        attendance.add_walk_in(event, "Gast", email="kein-at")
    with pytest.raises(ValidationError, match="0 bis 20"):
        attendance.add_walk_in(event, "Gast", companions_present=21)


def test_no_check_in_for_a_cancelled_event(published):

    event = published(1)
    services.cancel_event(event, "Terminkonflikt")
    db.session.commit()
    with pytest.raises(ValidationError, match="abgesagt"):
        attendance.check_in(event.invitations[0])


def test_search_by_name_and_organisation(published):
    event = published(3)
    assert len(attendance.entries(event, "stadt person")) == 3
    assert [e.name for e in attendance.entries(event, "person1")] == ["Erika Person1"]
    assert attendance.entries(event, "nirgendwo") == []


# --- QR code in the confirmation ----------------------------------------------------------------------------

def _modules(png: bytes, size: int, scale: int = 6, border: int = 4) -> list[list[bool]]:
    """Read the QR image back: the colour at the centre of every module (True = dark)."""
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size == ((size + 2 * border) * scale,) * 2
    return [[image.getpixel(((c + border) * scale + scale // 2, (r + border) * scale + scale // 2)) < 128
             for c in range(size)] for r in range(size)]


def test_confirmation_of_a_zusage_carries_the_check_in_qr_code(published, app):
    event = published(2)
    invitation, other = event.invitations
    _accept(invitation, companions=1)
    services.answer(other, "abgesagt", channel="sachbearbeitung")
    db.session.commit()
    messages = list(db.session.scalars(select(OutboxMessage).join(Mailing).where(Mailing.kind == "bestaetigung")))
    by_email = {m.to_email: m for m in messages}
    assert set(by_email) == {invitation.email, other.email}
    assert not by_email[other.email].attachments  # an Absage gets no code
    mail = by_email[invitation.email]
    assert [(a.filename, a.mimetype) for a in mail.attachments] == [("Einlass-QR-Code.png", "image/png")]
    assert "QR-Code für den Einlass" in mail.text

    row = attendance.attendance_for(invitation)
    assert row is not None and len(row.token) >= 43 and row.token != invitation.token and not row.present
    url = "http://127.0.0.1:5000/einlass/" + row.token
    expected = segno.make(url, error="m", micro=False)
    png = load_blob(mail.attachments[0].blob_sha256)
    size = len(expected.matrix)
    modules = _modules(png, size)
    assert modules == [[bool(v) for v in line] for line in expected.matrix]
    wrong = segno.make("http://127.0.0.1:5000/antwort/" + invitation.token, error="m", micro=False)
    assert modules != [[bool(v) for v in line] for line in wrong.matrix][:size]

    # The message as it goes out: the image is a MIME part of its own.
    from ki_post.outbox.mime import build_mime, parse_mime

    parsed = parse_mime(build_mime(mail))
    images = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_payload(decode=True) == png
    # A second confirmation (other number of companions) keeps the same code.
    services.answer(invitation, "zugesagt", companions=0, channel="sachbearbeitung")
    db.session.commit()
    assert attendance.attendance_for(invitation).token == row.token


def test_qr_link_opens_the_persons_check_in_for_staff_only(published, client, make_user):
    event = published(1)
    invitation = event.invitations[0]
    _accept(invitation)
    token = attendance.attendance_for(invitation).token
    reader = make_user("lesen")
    anonymous = client.get(f"/einlass/{token}")
    assert anonymous.status_code == 302 and "/anmelden" in anonymous.headers["Location"]
    assert invitation.name not in client.get(f"/einlass/{token}", follow_redirects=True).get_data(as_text=True)
    client.login(reader.email)
    response = client.get(f"/einlass/{token}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/veranstaltungen/{event.id}/einlass?person=einladung-{invitation.id}#einladung-{invitation.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert invitation.name in page and "Anwesend" not in page  # lesen sees, but has no button
    assert client.get(f"/einlass/{invitation.token}").status_code == 404  # the answer token is no check-in code


# --- Views --------------------------------------------------------------------------------------------------

def test_check_in_page_ticks_off_undoes_and_adds_walk_ins(published, staff_client):
    event = published(2)
    invitation = event.invitations[0]
    _accept(invitation, companions=2)
    url = f"/veranstaltungen/{event.id}/einlass"
    page = staff_client.get(url + "?q=person0").get_data(as_text=True)
    assert "Erika Person0" in page and "Erika Person1" not in page  # the search works without JavaScript
    response = staff_client.submit(f"{url}/einladung/{invitation.id}", {"companions_present": "1", "q": "person0"},
                                   form_url=url)
    location = response.headers["Location"]
    assert response.status_code == 302 and "q=person0" in location and location.endswith("#einladung-%d" % invitation.id)
    back = staff_client.get(location).get_data(as_text=True)  # the search is kept, the message sits at the person
    assert "Erika Person1" not in back
    line = back[back.index(f'id="einladung-{invitation.id}"'):]
    assert "ist anwesend, mit 1 Begleitperson." in line[:line.index("</li>")]
    row = attendance.attendance_for(invitation)
    assert row.present and row.companions_present == 1
    assert staff_client.get(url + "/einladung/%d" % invitation.id).status_code == 405  # GET changes nothing
    assert staff_client.submit(f"{url}/einladung/{invitation.id}/zuruecknehmen", form_url=url).status_code == 302
    db.session.expire_all()
    assert not attendance.attendance_for(invitation).present
    response = staff_client.submit(f"{url}/vor-ort", {"name": "Max Gast", "organisation": "Kreis Wesel", "email": "",
                                                      "companions_present": "0"}, form_url=url)
    assert response.status_code == 302
    page = staff_client.get(url).get_data(as_text=True)
    assert "Max Gast" in page and "vor Ort angemeldet" in page
    assert staff_client.submit(f"{url}/vor-ort", {"name": "", "companions_present": "0"}, form_url=url).status_code == 422
    walk_in = db.session.scalar(select(Attendance).where(Attendance.invitation_id.is_(None)))
    assert staff_client.submit(f"{url}/vor-ort/{walk_in.id}/entfernen", form_url=url).status_code == 302
    db.session.expire_all()
    assert db.session.get(Attendance, walk_in.id) is not None  # still ticked: undo first
    staff_client.submit(f"{url}/vor-ort/{walk_in.id}/zuruecknehmen", form_url=url)
    staff_client.submit(f"{url}/vor-ort/{walk_in.id}/entfernen", form_url=url)
    db.session.expire_all()
    assert db.session.get(Attendance, walk_in.id) is None
    staff_client.submit(f"{url}/vor-ort", {"name": "Max Gast", "companions_present": "0"}, form_url=url)
    detail = staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    assert 'id="zahl-anwesend">1' in detail


def _door_list(published):
    """Three Zusagen (one with a contact whose last name has a particle, one without a contact), a walk-in and
    one person without an answer."""
    event = published(4)
    zeller, vries, mueller, aal = event.invitations
    for invitation, name in ((zeller, "Anna Zeller"), (vries, "Prof. Jan de Vries"), (mueller, "Bernd Müller"),
                             (aal, "Aaron Aal")):
        invitation.name = name
    db.session.get(Contact, vries.contact_id).last_name = "de Vries"
    mueller.contact_id = None
    db.session.commit()
    for invitation in (zeller, vries, mueller):
        _accept(invitation)
    attendance.add_walk_in(event, "Carla Albers")
    db.session.commit()
    return event


def test_door_list_zusagen_first_then_by_surname(published):
    event = _door_list(published)
    # by first name it would be Anna, Bernd, Carla …; by the last word Albers, Müller, Vries …
    assert [e.name for e in attendance.entries(event)] == ["Carla Albers", "Prof. Jan de Vries", "Bernd Müller",
                                                           "Anna Zeller", "Aaron Aal"]
    assert attendance.surname("Prof. Jan de Vries") == "Vries" and attendance.surname("X Y", "de Vries") == "de Vries"


def test_only_zusagen_keeps_zusagen_walk_ins_and_present(published, staff_client):
    event = _door_list(published)
    assert [e.name for e in attendance.only_confirmed(attendance.entries(event))] == [
        "Carla Albers", "Prof. Jan de Vries", "Bernd Müller", "Anna Zeller"]
    aal = next(i for i in event.invitations if i.name == "Aaron Aal")
    url = f"/veranstaltungen/{event.id}/einlass"
    page = staff_client.get(url).get_data(as_text=True)  # default: everybody (people without an answer come too)
    assert f'id="einladung-{aal.id}"' in page and "ohne Zusage ausgeblendet" not in page
    page = staff_client.get(url + "?nur=zusagen").get_data(as_text=True)
    line = page[page.index(f'id="einladung-{aal.id}"'):]
    assert " hidden>" in line[:line.index(">") + 1]  # in the page (the box can be unticked), not shown
    assert "4 Personen</span>" in page and "1 Person ohne Zusage ausgeblendet" in page
    response = staff_client.submit(f"{url}/einladung/{aal.id}", {"companions_present": "0", "nur": "zusagen"},
                                   form_url=url)
    assert "nur=zusagen" in response.headers["Location"]  # the switch is kept across the tick
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "ohne Zusage ausgeblendet" not in page  # present now: Aaron Aal counts as expected


def test_follow_up_link_and_page_before_the_end(published, staff_client):
    event = published(1)
    detail = staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    assert f"/veranstaltungen/{event.id}/nachbereitung" in detail and "ab dem Ende der Veranstaltung möglich" in detail
    page = staff_client.get(f"/veranstaltungen/{event.id}/nachbereitung").get_data(as_text=True)
    assert "erst nach dem Ende der Veranstaltung möglich" in page and "Zurück zur Veranstaltung" in page
    assert "<form method=\"post\"" not in page.split("<main", 1)[1]
    _end_now(event)
    detail = staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    assert f"/veranstaltungen/{event.id}/nachbereitung" in detail and "ab dem Ende der Veranstaltung" not in detail


def test_lesen_may_not_tick_off(published, client, make_user):
    event = published(1)
    client.login(make_user("lesen").email)
    url = f"/veranstaltungen/{event.id}/einlass"
    response = client.submit(f"{url}/einladung/{event.invitations[0].id}", {"companions_present": "0"}, form_url=url)
    assert response.status_code == 403
    assert db.session.scalar(select(Attendance.id)) is None


# --- CLI ------------------------------------------------------------------------------------------------------

def test_cli_checkin_and_undo(published, runner):
    event = published(1)
    invitation = event.invitations[0]
    _accept(invitation, companions=1)
    result = runner.invoke(args=["events", "checkin", str(event.id), invitation.email.upper()])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{invitation.name} ist anwesend, mit 1 Begleitperson."
    db.session.expire_all()
    assert attendance.attendance_for(invitation).present
    result = runner.invoke(args=["events", "checkin", str(event.id), invitation.email, "--undo"])
    assert result.exit_code == 0 and "Zurückgenommen" in result.output
    db.session.expire_all()
    assert not attendance.attendance_for(invitation).present
    result = runner.invoke(args=["events", "checkin", str(event.id), "niemand@stadt.example"])
    assert result.exit_code == 1 and "keine Einladung" in result.output
    result = runner.invoke(args=["events", "checkin", "99999", invitation.email])
    assert result.exit_code == 1 and "gibt es nicht" in result.output
    result = runner.invoke(args=["events", "checkin", str(event.id), invitation.email, "--undo"])
    assert result.exit_code == 1 and "nicht als anwesend" in result.output


# --- Export, erasure, Art. 15 ----------------------------------------------------------------------------------

def test_export_has_attendance_columns_and_walk_ins(published):
    event = published(2)
    first, second = event.invitations
    _accept(first, companions=2)
    _accept(second)
    attendance.check_in(first, 1)
    attendance.add_walk_in(event, "Max Gast", "Kreis Wesel", "gast@kreis.example")
    db.session.commit()
    _end_now(event)
    rows = list(csv.reader(io.StringIO(services.export_participants(event, "csv").decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[-3:] == ["Anwesenheit", "Begleitpersonen anwesend", "Eingelassen um"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name[first.name][-3] == "anwesend" and by_name[first.name][-2] == "1" and by_name[first.name][-1]
    assert by_name[second.name][-3:] == ["nicht erschienen", "", ""]
    assert by_name["Max Gast"][3] == "vor Ort angemeldet" and by_name["Max Gast"][-3] == "anwesend"
    assert all(len(row) == len(header) for row in rows)


def test_export_cli_writes_attendance(published, runner, tmp_path):
    event = published(1)
    _accept(event.invitations[0])
    attendance.check_in(event.invitations[0])
    attendance.add_walk_in(event, "Max Gast", "Kreis Wesel")
    db.session.commit()
    target = tmp_path / "liste.xlsx"
    result = runner.invoke(args=["events", "export", str(event.id), str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 Einträge")  # the invited person and the walk-in
    from openpyxl import load_workbook

    sheet = load_workbook(target).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][-3] == "Anwesenheit" and values[1][-3] == "anwesend"


def test_erasure_scrubs_walk_ins_and_the_check_in_code_and_art15_shows_attendance(published, app):
    from ki_post.recipients.services import anonymise_contact, contact_data_export

    event = published(1)
    invitation = event.invitations[0]
    _accept(invitation)
    attendance.check_in(invitation)
    contact = db.session.get(Contact, invitation.contact_id)
    attendance.add_walk_in(event, "Erika am Eingang", "Stadt", contact.email)
    db.session.commit()
    history = contact_data_export(contact)
    assert history["einladungen"][0]["anwesenheit"] == "anwesend"
    assert history["vor_ort_angemeldet"][0]["name"] == "Erika am Eingang"
    token = attendance.attendance_for(invitation).token
    assert token
    anonymise_contact(contact)
    db.session.commit()
    row = attendance.attendance_for(invitation)
    assert row.token is None and row.present  # the code is dead, the count stays
    walk_in = db.session.scalar(select(Attendance).where(Attendance.invitation_id.is_(None)))
    assert walk_in.name != "Erika am Eingang" and contact.email not in walk_in.email


# --- Follow-up --------------------------------------------------------------------------------------------------

def test_follow_up_goes_to_attended_or_no_shows_never_to_erased(published):
    from ki_post.recipients.services import anonymise_contact

    event = published(4)
    came, missing, erased, no_answer = event.invitations
    for invitation in (came, missing, erased):
        _accept(invitation)
    attendance.check_in(came)
    attendance.check_in(erased)
    attendance.add_walk_in(event, "Max Gast", "Kreis Wesel", "gast@kreis.example")
    attendance.add_walk_in(event, "Ohne Adresse", "Kreis Wesel")
    db.session.commit()
    with pytest.raises(ValidationError, match="nach dem Ende"):
        prepare_followup(event, "teilnehmende", "Danke", "Text")
    anonymise_contact(db.session.get(Contact, erased.contact_id))
    db.session.commit()
    _end_now(event)
    assert sorted(r.email for r in followup_recipients(event, "teilnehmende")) == sorted([came.email, "gast@kreis.example"])
    assert [r.email for r in followup_recipients(event, "nicht_erschienen")] == [missing.email]

    result = prepare_followup(event, "teilnehmende", "Vielen Dank für Ihre Teilnahme",
                              "Anbei die Präsentation.\n\nBis bald.", attachments=[services.circular_attachment("folien.pdf", PDF)])
    db.session.commit()
    mailing = db.session.get(Mailing, result.mailing_id)
    assert mailing.state == "entwurf" and mailing.event_id == event.id and result.queued == 2
    messages = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.mailing_id == mailing.id)))
    assert sorted(m.to_email for m in messages) == sorted([came.email, "gast@kreis.example"])
    assert all(m.subject == "Vielen Dank für Ihre Teilnahme" and "Anbei die Präsentation." in m.text for m in messages)
    assert all([(a.filename, a.mimetype) for a in m.attachments] == [("folien.pdf", "application/pdf")] for m in messages)
    assert all(m.state == MessageState.WARTEND for m in messages)

    services.cancel_event(event, "nachträglich")
    db.session.commit()
    assert followup_recipients(event, "teilnehmende") == []
    with pytest.raises(ValidationError, match="abgesagt"):
        prepare_followup(event, "teilnehmende", "Danke", "Text")


def test_follow_up_form_prepares_a_draft(published, staff_client):
    event = published(2)
    came, missing = event.invitations
    _accept(came)
    _accept(missing)
    attendance.check_in(came)
    db.session.commit()
    url = f"/veranstaltungen/{event.id}/nachbereitung"
    assert "erst nach dem Ende" in staff_client.get(url).get_data(as_text=True)
    _end_now(event)
    response = staff_client.submit(url, {"audience": "nicht_erschienen", "subject": "Schade", "text": "Wir haben Sie vermisst."})
    assert response.status_code == 302 and "/postausgang/" in response.headers["Location"]
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
    assert message.to_email == missing.email and message.subject == "Schade"
    assert staff_client.submit(url, {"audience": "teilnehmende", "subject": "", "text": "x"}).status_code == 422


def test_a_waiting_confirmation_gets_or_loses_the_code_when_the_answer_flips(published):
    """Attachments stay when a waiting message is rewritten: a Zusage turned Absage before its confirmation
    went out must not keep the code, and an Absage turned Zusage must not promise a code it lacks. Still
    one confirmation, rewritten."""
    event = published(1)
    invitation = event.invitations[0]

    def waiting():
        db.session.expire_all()
        return [m for m in db.session.scalars(select(OutboxMessage).join(Mailing).where(
            Mailing.kind == "bestaetigung", OutboxMessage.state == MessageState.WARTEND))]

    services.answer(invitation, "abgesagt", channel="sachbearbeitung")
    db.session.commit()
    [first] = waiting()
    assert not first.attachments
    _accept(invitation)
    [second] = waiting()
    assert second.id == first.id and [a.filename for a in second.attachments] == ["Einlass-QR-Code.png"]
    assert "QR-Code für den Einlass" in second.text
    png = load_blob(second.attachments[0].blob_sha256)
    token = attendance.attendance_for(invitation).token
    expected = segno.make("http://127.0.0.1:5000/einlass/" + token, error="m", micro=False)
    assert _modules(png, len(expected.matrix)) == [[bool(v) for v in line] for line in expected.matrix]
    _accept(invitation, companions=1)  # still a Zusage: one code, not two
    [third] = waiting()
    assert third.id == first.id and len(third.attachments) == 1 and "1 Begleitperson" in third.text
    services.answer(invitation, "abgesagt", channel="sachbearbeitung")
    db.session.commit()
    [fourth] = waiting()
    assert fourth.id == first.id and not fourth.attachments and "QR-Code" not in fourth.text
