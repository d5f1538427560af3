"""Postausgang pages: list, mailing page, progress JSON, steering, preview, .eml viewer."""
from __future__ import annotations

from sqlalchemy import func, select

from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import Attachment, create_mailing, enqueue, start_mailing
from ki_post.outbox.worker import Worker


def make_mailing(count: int = 2, title: str = "Rundschreiben 1/2017", start: bool = False) -> Mailing:
    mailing = create_mailing("rundschreiben", title)
    for number in range(count):
        enqueue(mailing, to_email=f"person{number}@kreis.example", to_name=f"Person {number}",
                subject="Rundschreiben: Förderung <b>fett</b>", text=f"Hallo Person {number}\n",
                html="<p>Hallo</p><script>alert('x')</script>",
                attachments=[Attachment("Rundschreiben Förderung.pdf", "application/pdf", b"%PDF-1.7 inhalt")])
    if start:
        start_mailing(mailing)
    db.session.commit()
    return mailing


def test_index_and_mailing_page(staff_client):
    mailing = make_mailing(title="<script>Titel</script>")
    page = staff_client.get("/postausgang/").get_data(as_text=True)
    assert "&lt;script&gt;Titel&lt;/script&gt;" in page and "<script>Titel" not in page
    assert "Nicht versendet" in page  # no SMTP server configured in tests: file transport
    page = staff_client.get(f"/postausgang/{mailing.id}").get_data(as_text=True)
    assert "<h1>" in page and "person1@kreis.example" in page
    assert 'aria-live="polite"' in page and "<progress" in page and "outbox-progress.js" in page
    assert "Senden (2 Nachrichten)" in page and "Testnachricht an mich senden" in page


def test_progress_json(staff_client, app):
    mailing = make_mailing(3, start=True)
    data = staff_client.get(f"/postausgang/{mailing.id}/fortschritt").get_json()
    assert data["total"] == 3 and data["waiting"] == 3 and data["percent"] == 0 and not data["finished"]
    app.config["MAIL_RATE_PER_MINUTE"] = 0
    Worker(app).run(once=True)
    data = staff_client.get(f"/postausgang/{mailing.id}/fortschritt").get_json()
    assert data["sent"] == 3 and data["percent"] == 100 and data["finished"]


def test_start_send_button_releases_but_sends_nothing_in_request(staff_client, app):
    mailing = make_mailing()
    response = staff_client.submit(f"/postausgang/{mailing.id}/senden", form_url=f"/postausgang/{mailing.id}")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "aktiv"
    # nothing went out inside the request: every message still waits for the worker
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "wartend")) == 2
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Die Aussendung wird gesendet." in page


def test_pause_resume_cancel_via_ui(staff_client):
    mailing = make_mailing(start=True)
    url = f"/postausgang/{mailing.id}"
    staff_client.submit(f"{url}/pausieren", form_url=url)
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "pausiert"
    assert "von Hand pausiert" in staff_client.get(url).get_data(as_text=True)
    staff_client.submit(f"{url}/fortsetzen", form_url=url)
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "aktiv"
    staff_client.submit(f"{url}/abbrechen", form_url=url)
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "abgebrochen"
    # resuming a cancelled mailing is refused with a German message and changes nothing
    response = staff_client.submit(f"{url}/fortsetzen", form_url=url, follow_redirects=True)
    assert "Nur eine pausierte Aussendung" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "abgebrochen"


def test_read_only_role_cannot_steer(client, make_user):
    mailing = make_mailing(start=True)
    user = make_user("lesen")
    client.login(user.email)
    url = f"/postausgang/{mailing.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Pausieren" not in page
    response = client.post(f"{url}/pausieren", data={"csrf_token": client.csrf_token("/postausgang/")})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "aktiv"


def test_post_without_csrf_is_refused(staff_client):
    mailing = make_mailing(start=True)
    response = staff_client.post(f"/postausgang/{mailing.id}/pausieren")
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "aktiv"


def test_preview_escapes_and_sandboxes(staff_client):
    make_mailing()
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
    page = staff_client.get(f"/postausgang/nachricht/{message.id}").get_data(as_text=True)
    assert "Message-ID" in page and "person0@kreis.example" in page
    assert "&lt;script&gt;alert" in page and "<script>alert" not in page
    assert '<iframe class="mail-preview" sandbox' in page
    html = staff_client.get(f"/postausgang/nachricht/{message.id}/html")
    assert html.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    attachment = message.attachments[0]
    download = staff_client.get(f"/postausgang/nachricht/{message.id}/anhang/{attachment.id}")
    assert download.data == b"%PDF-1.7 inhalt" and "attachment" in download.headers["Content-Disposition"]
    assert "Rundschreiben%20F%C3%B6rderung.pdf" in download.headers["Content-Disposition"]
    eml = staff_client.get(f"/postausgang/nachricht/{message.id}.eml")
    assert eml.data.startswith(b"From: ") and message.message_id.encode() in eml.data
    assert staff_client.get(f"/postausgang/nachricht/{message.id}/anhang/999999").status_code == 404
    assert staff_client.get("/postausgang/nachricht/999999").status_code == 404


def test_test_send_goes_to_signed_in_user_through_the_outbox(staff_client, app):
    mailing = make_mailing()
    url = f"/postausgang/{mailing.id}"
    response = staff_client.submit(f"{url}/testversand", form_url=url, follow_redirects=True)
    assert "Eine Testnachricht an sachbearbeitung@ministerium.example" in response.get_data(as_text=True)
    test = db.session.scalar(select(Mailing).where(Mailing.kind == "testversand"))
    message = test.messages[0]
    assert message.to_email == "sachbearbeitung@ministerium.example" and message.subject.startswith("[Test] ")
    assert message.state == "wartend" and test.state == "aktiv"
    assert [a.filename for a in message.attachments] == ["Rundschreiben Förderung.pdf"]
    # the original mailing is untouched
    db.session.expire_all()
    assert db.session.get(Mailing, mailing.id).state == "entwurf"


def test_unklar_resend_and_mark_sent_via_ui(staff_client):
    mailing = make_mailing(2, start=True)
    first, second = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    first.state = second.state = "unklar"
    db.session.commit()
    url = f"/postausgang/{mailing.id}"
    page = staff_client.get(f"{url}?zustand=unklar").get_data(as_text=True)
    assert "Als gesendet markieren" in page
    staff_client.submit(f"/postausgang/nachricht/{first.id}/erneut-senden", form_url=url)
    staff_client.submit(f"/postausgang/nachricht/{second.id}/als-gesendet", form_url=url)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, first.id).state == "wartend"
    assert db.session.get(OutboxMessage, second.id).state == "gesendet"


def test_eml_viewer_marks_not_sent(staff_client, app):
    app.config["MAIL_RATE_PER_MINUTE"] = 0
    make_mailing(1, start=True)
    Worker(app).run(once=True)
    page = staff_client.get("/postausgang/dateien").get_data(as_text=True)
    assert "nicht versendet" in page.lower()
    name = db.session.scalar(select(OutboxMessage.eml_file))
    assert name in page
    detail = staff_client.get(f"/postausgang/dateien/{name}").get_data(as_text=True)
    assert "Nicht versendet." in detail and "Hallo Person 0" in detail
    assert staff_client.get("/postausgang/dateien/..%2Fsecret_key").status_code == 404
    assert staff_client.get("/postausgang/dateien/gibtsnicht.eml").status_code == 404


def test_finished_mailing_reads_abgeschlossen_everywhere(staff_client, app):
    mailing = make_mailing(2, start=True)
    url = f"/postausgang/{mailing.id}"
    page = staff_client.get(url).get_data(as_text=True)
    assert '<dd id="zustand">wird gesendet</dd>' in page and "Pausieren" in page
    app.config["MAIL_RATE_PER_MINUTE"] = 0
    Worker(app).run(once=True)
    db.session.expire_all()
    page = staff_client.get(url).get_data(as_text=True)
    assert '<dd id="zustand">abgeschlossen</dd>' in page
    assert "Pausieren" not in page and "wird gesendet" not in page
    assert staff_client.get(f"{url}/fortschritt").get_json()["state_label"] == "abgeschlossen"
    for overview in ("/postausgang/", "/"):
        assert "<td>abgeschlossen</td>" in staff_client.get(overview).get_data(as_text=True), overview
    # No state of its own: a message waiting again makes it "wird gesendet" again.
    db.session.get(Mailing, mailing.id).messages[0].state = "wartend"
    db.session.commit()
    assert staff_client.get(f"{url}/fortschritt").get_json()["state_label"] == "wird gesendet"


def _invitation_mail() -> tuple[OutboxMessage, str]:
    """A real invitation through the events package: its RSVP link is in text, HTML and calendar part."""
    from datetime import UTC, datetime, timedelta

    from ki_post.events import services as events
    from ki_post.recipients.models import Contact, Organisation

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    event = events.create_event(events.EventData(title="Feierstunde", start=start, end=start + timedelta(hours=2),
                                                 place_name="Ministerium", place_address="Fürstenwall 25, 40219 Düsseldorf"))
    events.publish_event(event)
    contact = Contact(anrede="frau", first_name="Erika", last_name="Muster", email="erika@stadt.example",
                      organisation=Organisation(name="Stadt Musterstadt", kind="kreisfreie_stadt"))
    db.session.add(contact)
    db.session.flush()
    events.invite(event, contact_ids=[contact.id])
    db.session.commit()
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == contact.email))
    (invitation,) = event.invitations
    return message, invitation.token


def test_reader_sees_rsvp_links_without_token(staff_client, make_user):
    message, token = _invitation_mail()
    link = f"/antwort/{token}"
    assert link in message.text and link in message.html and message.calendar_data
    url = f"/postausgang/nachricht/{message.id}"

    page = staff_client.get(url).get_data(as_text=True)
    assert link in page and ".eml-Datei herunterladen" in page
    assert staff_client.get(f"{url}.eml").status_code == 200

    reader = staff_client
    reader.submit("/abmelden", form_url=url)
    reader.login(make_user("lesen").email)
    page = reader.get(url).get_data(as_text=True)
    html = reader.get(f"{url}/html").get_data(as_text=True)
    # Neither the token nor a piece of it (the calendar part folds lines inside the link).
    for shown in (page, html):
        assert token[:10] not in shown and token[-10:] not in shown
    assert page.count("/antwort/…") >= 3 and "/antwort/…" in html  # text, HTML source, calendar part
    assert ".eml-Datei herunterladen" not in page
    assert reader.get(f"{url}.eml").status_code == 403
