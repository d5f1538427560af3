"""Browser: the compose preview as page images with previous/next and search; calendar replies uploaded as files."""
from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.letters import pdf
from tests.e2e.conftest import assert_accessible, login


def drawn_width(page) -> int:
    """The picture really arrived and was drawn (not a broken-image icon): its natural width."""
    return page.locator("img.preview-page").evaluate("img => img.decode().then(() => img.naturalWidth, () => 0)")


@pytest.mark.skipif(not pdf.pdf_available() or not shutil.which("pdftoppm"), reason="LibreOffice oder pdftoppm fehlt")
def test_preview_shows_the_letter_as_a_page(page, live_app):
    login(page, "sachbearbeitung")
    page.goto("/rundschreiben/erstellen")
    page.get_by_label("Betreff").fill("Ausbau der Kommunalen Integrationszentren")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_role("button", name="Vorschau").click()

    expect(page.get_by_role("heading", name="Vorschau: Brief 1 von 53")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "vorschau-titel"  # focus moved to the preview
    image = page.locator("img.preview-page")
    alt = image.get_attribute("alt")
    assert alt.startswith("Seite 1 von ") and " des Briefs an " in alt
    # The picture really arrived and was drawn (not a broken-image icon).
    assert drawn_width(page) == 827
    assert "Sehr geehrte" in page.locator("details pre").text_content()  # the text alternative
    assert_accessible(page)
    first_alt = alt

    page.get_by_role("button", name="Nächster Brief").click()
    expect(page.get_by_role("heading", name="Vorschau: Brief 2 von 53")).to_be_visible()
    assert page.locator("img.preview-page").get_attribute("alt") != first_alt
    assert drawn_width(page) == 827
    page.get_by_role("button", name="Vorheriger Brief").click()
    expect(page.get_by_role("heading", name="Vorschau: Brief 1 von 53")).to_be_visible()
    assert page.locator("img.preview-page").get_attribute("alt") == first_alt

    page.get_by_label("Empfängerin oder Empfänger suchen (Name oder Kommune)").fill("Münster")
    page.get_by_role("button", name="Suchen").click()
    expect(page.locator(".preview-recipient")).to_contain_text("Münster")
    recipient = page.locator(".preview-recipient").inner_text()
    assert "Münster" in recipient and "Brief 1 von 53" not in page.locator("#vorschau-titel").inner_text()
    assert recipient.removeprefix("An ") in page.locator("img.preview-page").get_attribute("alt")
    if page.get_by_role("button", name="Seite 2").count():
        page.get_by_role("button", name="Seite 2").click()
        expect(page.locator("img.preview-page")).to_have_attribute("alt", re.compile("^Seite 2 von "))
        assert drawn_width(page) == 827
        assert page.locator("img.preview-page").get_attribute("alt").startswith("Seite 2 von ")
        assert "Münster" in page.locator(".preview-recipient").inner_text()
    assert_accessible(page)


def test_upload_calendar_replies(page, live_app, tmp_path):
    from ki_post.events.models import Event, Invitation

    with live_app.app_context():
        event = db.session.scalar(select(Event))
        invitation = db.session.scalar(select(Invitation).where(Invitation.event_id == event.id).order_by(Invitation.id))
        uid, email, invitation_id = event.uid, invitation.email, invitation.id
    reply = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//DE\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
             f"DTSTAMP:20260101T100000Z\r\nSEQUENCE:0\r\nATTENDEE;PARTSTAT=ACCEPTED;CN=Test:mailto:{email}\r\n"
             "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()

    login(page, "sachbearbeitung")
    page.goto("/veranstaltungen/kalenderantworten")
    assert_accessible(page)
    page.get_by_label("Dateien mit Kalenderantworten").set_input_files([
        {"name": "zusage.ics", "mimeType": "text/calendar", "buffer": reply},
        {"name": "kaputt.eml", "mimeType": "message/rfc822", "buffer": b"\x00\x01 kein Mailformat"},
        {"name": "outlook.msg", "mimeType": "application/vnd.ms-outlook", "buffer": b"\xd0\xcf\x11\xe0"},
    ])
    page.get_by_role("button", name="Dateien einlesen").click()
    expect(page.get_by_role("heading", name="Ergebnis des Hochladens")).to_be_visible()
    result = page.locator("section", has=page.get_by_role("heading", name="Ergebnis des Hochladens"))
    text = result.inner_text()
    assert f"{email} (ACCEPTED): übernommen" in text
    assert "kaputt.eml: nicht übernommen" in text and "outlook.msg: nicht übernommen" in text
    assert page.evaluate("document.activeElement.classList.contains('check-result')")
    assert_accessible(page)
    with live_app.app_context():
        assert db.session.get(Invitation, invitation_id).state == "zugesagt"
