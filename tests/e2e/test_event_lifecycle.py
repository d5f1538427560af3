"""Browser: invitations wait as a draft in the Postausgang; changing the event shows them written anew
there; a reminder needs its confirmation page; cancelling shows them withdrawn."""
from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from ki_post.events import services
from ki_post.extensions import db
from ki_post.outbox.models import OutboxMessage
from tests.e2e.conftest import assert_accessible, login


def test_change_and_cancel_show_in_the_postausgang(page, live_app):
    with live_app.app_context():
        event = services.create_event(services.EventData(
            title="Fachtag Integration", start="2040-02-08T10:00", end="2040-02-08T12:00", place_name="Ministerium",
            room="Raum 101"))
        db.session.commit()
        event_id = event.id
    login(page)
    page.goto(f"/veranstaltungen/{event_id}")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_role("button", name="Einladungen vorbereiten").click()
    page.get_by_text("53 Einladungen sind als Entwurf vorbereitet").wait_for()
    mailing_url = page.url
    assert "/postausgang/" in mailing_url
    rows = page.locator("table tbody tr")
    expect(rows.first).to_contain_text("Einladung: Fachtag Integration am 8. Februar 2040")
    expect(rows.first).not_to_contain_text("aktualisiert")
    assert_accessible(page)

    # Move the event by a day and a half hour: the waiting invitations are written anew at once.
    page.goto(f"/veranstaltungen/{event_id}/bearbeiten")
    page.get_by_label("Datum (Beginn)").fill("2040-02-09")
    page.get_by_label("Uhrzeit (Beginn)").fill("10:30")
    page.get_by_label("Datum (Ende)").fill("2040-02-09")
    page.get_by_label("Uhrzeit (Ende)").fill("12:30")
    page.get_by_role("button", name="Speichern").click()
    page.get_by_text("53 noch nicht versendete Nachrichten wurden mit den neuen Angaben neu erstellt.").wait_for()
    assert page.get_by_role("link", name="Einladung: 53 Nachrichten").is_visible()  # the draft, linked from the event
    page.goto(mailing_url)
    expect(rows.first).to_contain_text("Einladung: Fachtag Integration am 9. Februar 2040")
    expect(rows.first).to_contain_text("aktualisiert")
    assert page.locator("table tbody tr", has_text="8. Februar 2040").count() == 0
    page.locator("table tbody tr").first.get_by_role("link", name="Vorschau").click()
    expect(page.locator("main")).to_contain_text("Zeit: 10:30 bis 12:30 Uhr")
    assert_accessible(page)

    # A reminder first asks: nobody's invitation went out yet.
    page.goto(f"/veranstaltungen/{event_id}/erinnern")
    expect(page.locator("#erinnerung-zahl")).to_contain_text("0 Personen")
    assert_accessible(page)

    # Cancel with a reason: nobody had the event, so no cancellation is sent; the draft is withdrawn.
    page.goto(f"/veranstaltungen/{event_id}")
    page.get_by_role("link", name="Veranstaltung absagen").click()
    expect(page.locator("#absage-folgen")).to_contain_text("Es werden keine Absagen versendet")
    page.get_by_role("button", name="Ja, Veranstaltung absagen").click()
    page.get_by_text("Bitte geben Sie den Grund der Absage an.").first.wait_for()  # the reason is required
    assert_accessible(page)
    page.get_by_label("Grund der Absage").fill("Der Saal steht nicht zur Verfügung.")
    page.get_by_role("button", name="Ja, Veranstaltung absagen").click()
    page.get_by_text("53 noch nicht versendete Nachrichten wurden zurückgezogen").wait_for()
    expect(page.locator("#abgesagt")).to_contain_text("Der Saal steht nicht zur Verfügung.")
    assert page.get_by_role("link", name="Bearbeiten").count() == 0
    page.goto(mailing_url)
    expect(page.locator("[data-feld=withdrawn]")).to_have_text("53")
    expect(rows.first).to_contain_text("zurückgezogen")
    expect(rows.first).to_contain_text("Veranstaltung ist abgesagt")
    assert page.get_by_role("button", name="Senden").count() == 0  # nothing left to send
    expect(page.locator("main")).to_contain_text("keine Nachricht mehr, die gesendet werden kann")
    assert_accessible(page)
    with live_app.app_context():
        states = set(db.session.scalars(select(OutboxMessage.state)))
    assert states == {"zurueckgezogen"}
