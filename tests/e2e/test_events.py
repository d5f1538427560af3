"""Browser: follow the link of a captured invitation mail, accept with one companion, see the count on the event page;
then cancel the event through its confirmation page (with a reason; the cancellation waits as a draft)."""
from __future__ import annotations

import re

from sqlalchemy import select

from ki_post.events import services
from ki_post.extensions import db, mail
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact
from tests.e2e.conftest import assert_accessible, login
from tests.smtp_server import SmtpServer


def test_invitation_link_accept_with_companion(page, live_app, live_server):
    with SmtpServer() as smtp:
        live_app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                               MAIL_RATE_PER_MINUTE=0)
        mail.init_app(live_app)  # Flask-Mail reads its settings once, at init
        with live_app.app_context():
            contact = db.session.scalars(select(Contact).order_by(Contact.id)).first()
            event = services.create_event(services.EventData(
                title="Feierstunde Teilhabe- und Integrationsgesetz", start="2040-02-08T11:00", end="2040-02-08T13:00",
                place_name="Ministerium", place_address="Fürstenwall 25, 40219 Düsseldorf", companions_allowed=1, capacity=50))
            services.invite(event, contact_ids=[contact.id], start=True)
            db.session.commit()
            event_id = event.id
            Worker(live_app).run(once=True)
        [message] = smtp.messages()
    text = message.get_body(("plain",)).get_content()
    link = re.search(r"(http://127\.0\.0\.1:\d+/antwort/[A-Za-z0-9_-]+)", text).group(1)

    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Feierstunde Teilhabe- und Integrationsgesetz"
    assert_accessible(page)
    page.get_by_label("Ich nehme teil (Zusage)").check()
    page.get_by_label("Anzahl Begleitpersonen").fill("1")
    page.get_by_label("Bemerkung").fill("Ich komme gern.")
    page.get_by_role("button", name="Antwort senden").click()
    page.get_by_text("Ihre Zusage ist gespeichert").wait_for()
    assert "Zusage" in page.locator("strong").first.inner_text()
    assert_accessible(page)

    login(page, "sachbearbeitung")
    page.goto(f"/veranstaltungen/{event_id}")
    assert page.locator("#zahl-zusagen").inner_text() == "1"
    assert page.locator("#zahl-begleitpersonen").inner_text() == "1"
    assert page.locator("#zahl-offen").inner_text() == "0"
    assert_accessible(page)
    page.goto(f"/veranstaltungen/{event_id}/bearbeiten")
    assert page.get_by_label("Titel").input_value() == "Feierstunde Teilhabe- und Integrationsgesetz"
    assert_accessible(page)
    page.goto("/veranstaltungen/")
    assert_accessible(page)
    page.goto("/veranstaltungen/neu")
    assert_accessible(page)
    page.goto("/veranstaltungen/kalenderantworten")
    assert_accessible(page)

    # Cancelling takes two steps: the link opens a confirmation page; "Abbrechen" leaves everything as it was.
    page.goto(f"/veranstaltungen/{event_id}")
    page.get_by_role("link", name="Veranstaltung absagen").click()
    page.get_by_role("heading", name="Veranstaltung absagen?").wait_for()
    assert "1 Person hat die Veranstaltung möglicherweise schon" in page.locator("#absage-folgen").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name="Abbrechen").click()
    assert "veröffentlicht" in page.locator("main p strong").first.inner_text()
    page.get_by_role("link", name="Veranstaltung absagen").click()
    page.get_by_label("Grund der Absage").fill("Erkrankung der Rednerin")
    page.get_by_role("button", name="Ja, Veranstaltung absagen").click()
    # The cancellation is a draft in the Postausgang: preview, then "Senden".
    page.get_by_text("1 Absage ist als Entwurf vorbereitet").wait_for()
    assert page.get_by_role("button", name="Senden (1 Nachricht)").is_visible()
    page.goto(f"/veranstaltungen/{event_id}")
    assert "abgesagt" in page.locator("main p strong").first.inner_text()
