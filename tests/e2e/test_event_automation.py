"""Browser: switch on an automatic reminder on the event page, then copy the event one year later (axe on each page)."""
from __future__ import annotations

from ki_post.events import services
from ki_post.extensions import db
from tests.e2e.conftest import assert_accessible, login


def test_switch_automatic_reminders_and_copy_the_event(page, live_app):
    with live_app.app_context():
        event = services.create_event(services.EventData(
            title="Fachtag Integration", start="2040-02-08T11:00", end="2040-02-08T13:00", place_name="Ministerium",
            deadline="2040-02-01T23:59"))
        db.session.commit()
        event_id = event.id
    login(page, "sachbearbeitung")
    page.goto(f"/veranstaltungen/{event_id}")
    page.get_by_label("Tage vor der Antwortfrist an alle ohne Antwort").fill("3")
    page.get_by_role("button", name="Automatische Erinnerungen speichern").click()
    page.get_by_text("Die automatischen Erinnerungen sind gespeichert.").wait_for()
    assert "geplant für 29. Januar 2040, 09:00 Uhr" in page.locator("#automatik-offene").inner_text()
    assert_accessible(page)

    page.get_by_role("link", name="Kopieren …").click()
    assert page.get_by_label("Datum (Beginn)").input_value() == "2041-02-08"
    assert_accessible(page)
    page.get_by_role("button", name="Kopie anlegen").click()
    page.get_by_text("wurde als Entwurf kopiert").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == "Fachtag Integration"
    assert "geplant für 29. Januar 2041, 09:00 Uhr" in page.locator("#automatik-offene").inner_text()
    assert_accessible(page)
