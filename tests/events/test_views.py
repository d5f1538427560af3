"""RSVP pages (public) and staff pages, on SQLite and PostgreSQL."""
from __future__ import annotations

import re

from sqlalchemy import select

from ki_post.events import services
from ki_post.events.models import Event, Invitation
from ki_post.extensions import db
from tests.events.conftest import answer_at_once


def rsvp_url(invitation) -> str:
    return f"/antwort/{invitation.token}"


def test_rsvp_get_never_changes_state_and_post_accepts(client, published):
    event = published(1)
    invitation = event.invitations[0]
    page = client.get(rsvp_url(invitation))
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert event.title in html and "offen" in html and "<h1>" in html
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).state == "offen"  # GET changes nothing
    response = client.submit(rsvp_url(invitation), {"answer": "zugesagt", "companions": "1", "remark": "<script>x</script>"})
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Invitation, invitation.id)
    assert (saved.state, saved.companions, saved.channel) == ("zugesagt", 1, "link")
    html = client.get(rsvp_url(invitation)).get_data(as_text=True)
    assert "Zusage ist gespeichert" in html and "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "mit 1 Begleitperson." in html


def test_rsvp_bad_input_and_forged_tokens(client, published):
    event = published(1, companions_allowed=1)
    invitation = event.invitations[0]
    bad = client.submit(rsvp_url(invitation), {"answer": "zugesagt", "companions": "5"})
    assert bad.status_code == 422 and "höchstens" in bad.get_data(as_text=True)
    missing = client.post(rsvp_url(invitation), data={"answer": "zugesagt"})  # no CSRF token
    assert missing.status_code == 400
    for token in ("x" * 43, invitation.token[:-1] + ("A" if invitation.token[-1] != "A" else "B"), "a" * 200):
        page = client.get(f"/antwort/{token}")
        assert page.status_code == 404 and "nicht gefunden" in page.get_data(as_text=True).lower()
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).state == "offen"


def test_rsvp_read_only_after_deadline(client, published):
    event = published(1, deadline="2000-01-01T00:00")
    html = client.get(rsvp_url(event.invitations[0])).get_data(as_text=True)
    assert "Antwortfrist ist abgelaufen" in html and "<form method=\"post\" action=\"/antwort" not in html
    assert event.organizer_email in html


def test_rsvp_rate_limited(tmp_path, backend, make_contacts):
    from tests.helpers import make_app

    app = make_app(tmp_path, backend, RATELIMIT_ENABLED=True, RSVP_RATE_LIMIT="3 per minute")
    with app.app_context():
        event = services.create_event(services.EventData(title="T", start="2040-01-01T10:00", end="2040-01-01T11:00"))
        services.publish_event(event)
        [invitation] = services.add_invitations(event, make_contacts(1, "limit"))
        db.session.commit()
        client = app.test_client()
        codes = [client.submit(rsvp_url(invitation), {"answer": "abgesagt"}).status_code for _ in range(5)]
        assert codes == [302, 302, 302, 429, 429]
        assert "Zu viele Antworten" in client.submit(rsvp_url(invitation), {"answer": "zugesagt"}).get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()


def test_last_seat_under_concurrency(app, published):
    """12 people press "Zusage" at the same moment for 3 seats: exactly 3 get one."""
    event = published(12, capacity=3)
    tokens = [i.token for i in event.invitations]
    event_id = event.id
    results = answer_at_once(app, tokens, {"answer": "zugesagt"})
    assert results == [302] * 12
    states = [i.state for i in db.session.scalars(select(Invitation).where(Invitation.event_id == event_id))]
    assert states.count("zugesagt") == 3 and states.count("warteliste") == 9
    assert services.seats_taken(event_id) == 3


def test_staff_create_edit_publish_and_overview(staff_client, demo):
    form = {"title": "Dienstbesprechung", "start_date": "2030-04-10", "start_time": "10:00", "end_date": "2030-04-10",
            "end_time": "12:00", "place_name": "Ministerium", "place_address": "Fürstenwall 25, 40219 Düsseldorf",
            "companions_allowed": "1", "capacity": ""}
    bad = staff_client.submit("/veranstaltungen/neu", {**form, "end_time": "09:00"})
    assert bad.status_code == 422 and "Das Ende muss nach dem Beginn liegen" in bad.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count(Event.id))) == 0
    response = staff_client.submit("/veranstaltungen/neu", form)
    assert response.status_code == 302
    event = db.session.scalar(select(Event))
    assert event.start_at.hour == 8  # 10:00 CEST = 08:00 UTC
    detail = f"/veranstaltungen/{event.id}"
    verteiler = services.verteiler_id_by_name("Alle KI-Dezernate")
    invited = staff_client.submit(f"{detail}/einladen", {"verteiler_id": str(verteiler)}, form_url=detail,
                                  follow_redirects=True)
    # One road: the invitations are a draft in the Postausgang (preview, test mail, "Senden").
    html = invited.get_data(as_text=True)
    assert "53 Einladungen sind als Entwurf vorbereitet" in html and "Senden (53 Nachrichten)" in html
    assert invited.request.path.startswith("/postausgang/")
    page = staff_client.get(detail).get_data(as_text=True)
    assert re.search(r'id="zahl-eingeladen">53<', page) and re.search(r'id="zahl-offen">53<', page)
    assert "Entwürfe im Postausgang" in page and "Einladung: 53 Nachrichten" in page
    # Moved before anything went out: the waiting invitations are written anew, nobody needs an update.
    moved = staff_client.submit(f"{detail}/bearbeiten", {**form, "start_time": "11:00", "end_time": "13:00"},
                                follow_redirects=True)
    assert "53 noch nicht versendete Nachrichten wurden mit den neuen Angaben neu erstellt." in moved.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Event, event.id).sequence == 1
    from ki_post.outbox.models import Mailing, OutboxMessage

    assert db.session.scalar(select(db.func.count(Mailing.id)).where(Mailing.kind == "aktualisierung")) == 0
    texts = list(db.session.scalars(select(OutboxMessage.text)))
    assert len(texts) == 53 and all("Zeit: 11:00 bis 13:00 Uhr" in text for text in texts)
    # Phone answer, audited, visible in the counts and the search.
    invitation = db.session.scalars(select(Invitation).order_by(Invitation.id)).first()
    staff_client.submit(f"{detail}/antwort-erfassen", {"invitation_id": str(invitation.id), "answer": "zugesagt",
                                                      "channel": "telefon", "companions": "1", "remark": ""}, form_url=detail)
    page = staff_client.get(f"{detail}?status=accepted").get_data(as_text=True)
    assert re.search(r'id="zahl-zusagen">1<', page) and re.search(r'id="zahl-begleitpersonen">1<', page)
    assert "Telefon" in page and invitation.name in page
    for fmt, magic in (("csv", b"\xef\xbb\xbf"), ("xlsx", b"PK"), ("docx", b"PK")):
        export = staff_client.get(f"{detail}/teilnehmende.{fmt}")
        assert export.status_code == 200 and export.data.startswith(magic)


def test_reader_cannot_change(client, make_user, published):
    event = published(1)
    make_user("admin", "admin@ministerium.example")
    reader = make_user("lesen")
    client.login(reader.email)
    assert client.get(f"/veranstaltungen/{event.id}").status_code == 200
    assert client.get(f"/veranstaltungen/{event.id}/absagen").status_code == 403  # the confirmation page too
    assert client.submit(f"/veranstaltungen/{event.id}/absagen", {}, form_url=f"/veranstaltungen/{event.id}").status_code == 403
    assert client.get("/veranstaltungen/999").status_code == 404


def test_review_list_assigns_by_name_within_the_replys_event(staff_client, published):
    from pathlib import Path

    from tests.events.conftest import FIXTURE_UID

    event = published(1)
    event.uid = FIXTURE_UID
    db.session.commit()
    services.apply_reply_mail((Path(__file__).parent / "fixtures" / "unknown_attendee.eml").read_bytes())
    db.session.commit()
    page = staff_client.get("/veranstaltungen/kalenderantworten").get_data(as_text=True)
    assert "unbekannt@irgendwo.example" in page
    # The answer in German, and a choice among this event's invitations by name, not a global number.
    assert "<td>Zusage</td>" in page and "ACCEPTED" not in page and "Nummer der Einladung" not in page
    invitation = event.invitations[0]
    assert re.search(rf'<option value="{invitation.id}">{re.escape(invitation.name)} \(', page)
    reply_id = services.unmatched_replies()[0].id
    other = services.create_event(services.EventData(title="Andere", start="2040-01-01T10:00", end="2040-01-01T11:00"))
    services.publish_event(other)
    from ki_post.recipients.models import Contact

    stranger = Contact(first_name="Fremde", last_name="Person", email="fremde@anderswo.example")
    db.session.add(stranger)
    db.session.flush()
    [foreign] = services.add_invitations(other, [stranger])
    db.session.commit()
    refused = staff_client.submit(f"/veranstaltungen/kalenderantworten/{reply_id}", {"invitation_id": str(foreign.id)},
                                  form_url="/veranstaltungen/kalenderantworten", follow_redirects=True)
    assert "nicht eingeladen" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Invitation, foreign.id).state == "offen"
    staff_client.submit(f"/veranstaltungen/kalenderantworten/{reply_id}", {"invitation_id": str(invitation.id)},
                        form_url="/veranstaltungen/kalenderantworten")
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).state == "zugesagt"


def test_invite_with_bad_attachment_changes_nothing(staff_client, demo, make_event):
    import io

    from ki_post.outbox.models import OutboxMessage

    event = make_event()
    detail = f"/veranstaltungen/{event.id}"
    verteiler = services.verteiler_id_by_name("Alle KI-Dezernate")
    response = staff_client.submit(f"{detail}/einladen", {"verteiler_id": str(verteiler),
                                                           "attachment": (io.BytesIO(b"MZ\x90evil"), "rundschreiben.pdf")},
                                   form_url=detail, content_type="multipart/form-data", follow_redirects=True)
    assert "nur PDF- oder Word-Dateien" in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count(OutboxMessage.id))) == 0
    assert db.session.scalar(select(db.func.count(Invitation.id))) == 0
    ok = staff_client.submit(f"{detail}/einladen", {"verteiler_id": str(verteiler),
                                                     "attachment": (io.BytesIO(b"%PDF-1.7\n"), "rundschreiben.pdf")},
                             form_url=detail, content_type="multipart/form-data")
    assert ok.status_code == 302
    assert db.session.scalar(select(db.func.count(OutboxMessage.id))) == 53


def _invited(make_event, make_contacts, n: int) -> Event:
    """A published event whose invitations went out (so that a cancellation mails them)."""
    from flask import current_app

    from ki_post.outbox.worker import Worker

    event = make_event()
    services.invite(event, contact_ids=[c.id for c in make_contacts(n)], start=True)
    db.session.commit()
    current_app.config["MAIL_RATE_PER_MINUTE"] = 0
    Worker(current_app._get_current_object()).run(once=True)  # file transport: "gesendet"
    db.session.expire_all()
    return event


def _outbox_count() -> int:
    from ki_post.outbox.models import OutboxMessage

    return db.session.scalar(select(db.func.count(OutboxMessage.id)))


def test_cancel_needs_the_confirmation_page_and_a_reason(staff_client, make_event, make_contacts):
    event = _invited(make_event, make_contacts, 3)
    detail = f"/veranstaltungen/{event.id}"
    confirm_url = f"{detail}/absagen"
    html = staff_client.get(detail).get_data(as_text=True)
    assert f'href="{confirm_url}"' in html and f'action="{confirm_url}"' not in html  # a link, not a one-click form
    mails_before = _outbox_count()

    page = staff_client.get(confirm_url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "3 Personen haben die Veranstaltung möglicherweise schon" in html
    assert "nicht rückgängig" in html and "Grund der Absage" in html
    assert "Ja, Veranstaltung absagen" in html and f'href="{detail}">Abbrechen</a>' in html
    db.session.expire_all()
    assert db.session.get(Event, event.id).state == "veroeffentlicht"  # GET changes nothing

    # The old one-click POST (CSRF token but no confirmation) is refused with a message; nothing happens.
    refused = staff_client.submit(confirm_url, {"reason": "x"}, form_url=detail, follow_redirects=True)
    assert "nicht abgesagt" in refused.get_data(as_text=True) and refused.request.path == confirm_url
    assert staff_client.submit(confirm_url, {"confirmed": "vielleicht", "reason": "x"}, form_url=detail).status_code == 302
    no_reason = staff_client.submit(confirm_url, {"confirmed": "ja", "reason": " "})
    assert no_reason.status_code == 422 and "Bitte geben Sie den Grund der Absage an." in no_reason.get_data(as_text=True)
    assert staff_client.post(confirm_url, data={"confirmed": "ja", "reason": "x"}).status_code == 400  # no CSRF token
    db.session.expire_all()
    assert db.session.get(Event, event.id).state == "veroeffentlicht" and _outbox_count() == mails_before

    done = staff_client.submit(confirm_url, {"confirmed": "ja", "reason": "Der Saal ist nicht verfügbar."},
                               follow_redirects=True)
    html = done.get_data(as_text=True)
    assert "Die Veranstaltung ist abgesagt. 3 Absagen sind als Entwurf vorbereitet" in html
    assert done.request.path.startswith("/postausgang/") and "Senden (3 Nachrichten)" in html
    db.session.expire_all()
    saved = db.session.get(Event, event.id)
    assert saved.state == "abgesagt" and saved.cancel_reason == "Der Saal ist nicht verfügbar."
    assert _outbox_count() == mails_before + 3
    # Cancelled: the confirmation page only says so; no editing any more; the top of the page says why.
    again = staff_client.get(confirm_url, follow_redirects=True)
    assert again.request.path == detail and "bereits abgesagt" in again.get_data(as_text=True)
    page = staff_client.get(detail).get_data(as_text=True)
    assert "Diese Veranstaltung ist abgesagt" in page and "Der Saal ist nicht verfügbar." in page
    assert f"{detail}/bearbeiten" not in page and "Erinnerung vorbereiten" not in page
    edit = staff_client.get(f"{detail}/bearbeiten", follow_redirects=True)
    assert "kann nicht mehr geändert werden" in edit.get_data(as_text=True) and edit.request.path == detail
    # The answer page says so at the top, with the reason, and offers no form.
    invitation = saved.invitations[0]
    answer_page = staff_client.get(f"/antwort/{invitation.token}").get_data(as_text=True)
    top = answer_page.index("Diese Veranstaltung ist abgesagt.")
    assert top < answer_page.index("Angaben zur Veranstaltung") and "Der Saal ist nicht verfügbar." in answer_page
    assert 'action="/antwort/' not in answer_page


def test_cancel_singular_wording(staff_client, make_event, make_contacts):
    event = _invited(make_event, make_contacts, 1)
    confirm_url = f"/veranstaltungen/{event.id}/absagen"
    assert "1 Person hat die Veranstaltung möglicherweise schon" in staff_client.get(confirm_url).get_data(as_text=True)
    done = staff_client.submit(confirm_url, {"confirmed": "ja", "reason": "Krankheit"}, follow_redirects=True)
    assert "1 Absage ist als Entwurf vorbereitet" in done.get_data(as_text=True)


def test_staff_answer_needs_a_chosen_person_and_answer(staff_client, published, make_event, make_contacts):
    event = published(2)
    detail = f"/veranstaltungen/{event.id}"
    html = staff_client.get(detail).get_data(as_text=True)
    for name in ("invitation_id", "answer"):
        select_html = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.DOTALL).group(0)
        options = re.findall(r'<option( selected)? value="([^"]*)">([^<]*)</option>', select_html)
        assert "required" in select_html and options[0][1:] == ("", "– bitte wählen –")
        assert not any(selected for selected, value, _ in options if value), select_html  # nothing real preselected
    # What a browser sends when the button is pressed untouched.
    response = staff_client.submit(f"{detail}/antwort-erfassen", {"invitation_id": "", "answer": "", "channel": "telefon",
                                                                  "companions": "0", "remark": ""}, form_url=detail)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.DOTALL).group(0)
    assert "Bitte eine Person wählen." in summary and "Bitte eine Antwort wählen." in summary
    assert 'href="#invitation_id"' in summary and 'aria-invalid="true"' in html
    db.session.expire_all()
    assert [i.state for i in db.session.scalars(select(Invitation))] == ["offen", "offen"]
    # A person of another event is not a choice.
    other = make_event(title="Andere")
    [foreigner] = services.add_invitations(other, make_contacts(1, "andere"))
    db.session.commit()
    foreign = staff_client.submit(f"{detail}/antwort-erfassen", {"invitation_id": str(foreigner.id),
                                                                 "answer": "zugesagt", "channel": "telefon"}, form_url=detail)
    assert foreign.status_code == 422 and "Bitte eine Person aus der Liste wählen." in foreign.get_data(as_text=True)
    chosen = event.invitations[1]
    ok = staff_client.submit(f"{detail}/antwort-erfassen", {"invitation_id": str(chosen.id), "answer": "abgesagt",
                                                            "channel": "brief", "companions": "0"}, form_url=detail)
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(Invitation, chosen.id).state == "abgesagt"
    assert db.session.get(Invitation, event.invitations[0].id).state == "offen"


def test_csv_content_type_once_and_dst_gap_in_form(staff_client, published):
    event = published(1)
    export = staff_client.get(f"/veranstaltungen/{event.id}/teilnehmende.csv")
    assert export.headers["Content-Type"] == "text/csv; charset=utf-8"
    form = {"title": "Frühschicht", "start_date": "2027-03-28", "start_time": "02:30", "end_date": "2027-03-28",
            "end_time": "03:00", "companions_allowed": "0", "capacity": ""}
    bad = staff_client.submit("/veranstaltungen/neu", form)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "02:30 Uhr gibt es am 28.03.2027 nicht" in html
    assert "Das Ende muss nach dem Beginn liegen" not in html


def test_singular_flashes_and_reminder_confirmation(staff_client, make_event, make_contacts):
    event = _invited(make_event, make_contacts, 1)
    detail = f"/veranstaltungen/{event.id}"
    remind_url = f"{detail}/erinnern"
    html = staff_client.get(remind_url).get_data(as_text=True)
    assert "<strong>1 Person</strong>" in html and "Erinnerung vorbereiten" in html and "bereits erinnert" not in html
    # A POST without the confirmation field prepares nothing.
    refused = staff_client.submit(remind_url, {}, follow_redirects=True)
    assert "Bitte bestätigen Sie die Erinnerung" in refused.get_data(as_text=True)
    reminded = staff_client.submit(remind_url, {"confirmed": "ja"}, follow_redirects=True)
    assert "1 Erinnerung ist als Entwurf vorbereitet" in reminded.get_data(as_text=True)
    # A second reminder soon after: the page warns, and the POST needs the explicit "trotzdem".
    from ki_post.outbox.models import Mailing
    from ki_post.outbox.services import start_mailing

    start_mailing(db.session.scalar(select(Mailing).where(Mailing.kind == "erinnerung")))
    db.session.commit()
    from flask import current_app

    from ki_post.outbox.worker import Worker

    Worker(current_app._get_current_object()).run(once=True)
    html = staff_client.get(remind_url).get_data(as_text=True)
    assert "wurde bereits erinnert" in html and "Ja, trotzdem erneut erinnern" in html
    again = staff_client.submit(remind_url, {"confirmed": "ja"})
    assert again.status_code == 422 and "Bitte bestätigen Sie, dass Sie so bald erneut erinnern möchten." in again.get_data(as_text=True)
    assert staff_client.submit(remind_url, {"confirmed": "ja", "repeat": "y"}).status_code == 302
    make_contacts(1, "nachzuegler")
    from ki_post.recipients.models import Contact, Verteiler

    verteiler = Verteiler(name="Zwei")
    verteiler.members = list(db.session.scalars(select(Contact)))
    db.session.add(verteiler)
    db.session.commit()
    invited = staff_client.submit(f"{detail}/einladen", {"verteiler_id": str(verteiler.id)}, form_url=detail,
                                  follow_redirects=True)
    assert ("1 Einladung ist als Entwurf vorbereitet. 1 Kontakt war bereits eingeladen und erhält keine zweite "
            "Einladung.") in invited.get_data(as_text=True)


def test_answer_pages_loaded_before_the_german_codes_still_work(client, staff_client, published):
    """An answer page opened before the update posts ``accepted``; a bookmarked filter says
    ``?status=declined``. Both keep working; an unknown code is still refused."""
    event = published(2)
    first, second = event.invitations
    assert client.submit(rsvp_url(first), {"answer": "accepted", "companions": "0"}).status_code == 302
    assert client.submit(rsvp_url(second), {"answer": "maybe"}).status_code == 422
    detail = f"/veranstaltungen/{event.id}"
    staff_client.submit(f"{detail}/antwort-erfassen", {"invitation_id": str(second.id), "answer": "declined",
                                                      "channel": "telefon", "companions": "0"}, form_url=detail)
    db.session.expire_all()
    assert [(i.state, i.channel) for i in db.session.get(Event, event.id).invitations] == [
        ("zugesagt", "link"), ("abgesagt", "telefon")]
    for code in ("declined", "abgesagt"):
        page = staff_client.get(f"{detail}?status={code}").get_data(as_text=True)
        listed = page.split('id="status-filter"')[1]
        assert '<option value="abgesagt" selected>' in listed
        assert (second.name or second.email) in listed and (first.name or first.email) not in listed
