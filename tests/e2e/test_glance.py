"""In the browser: the answers bar and seats gauge with their text equivalent, the start page at a glance,
picking Verteiler members with the keyboard; axe-core finds nothing serious or critical.

Screenshots go to $KI_POST_SCREENSHOTS when set (looked at by hand; nothing asserts on pixels)."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from ki_post.events import services as events
from ki_post.events.models import Event
from ki_post.extensions import db
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import start_mailing
from tests.e2e.conftest import assert_accessible, login
from tests.e2e.test_outbox import make_mailing


def _shot(page, name: str) -> None:
    folder = os.environ.get("KI_POST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _answered_demo_event(app) -> int:
    """The demo event (published, capacity 120) with a few answers of each kind."""
    with app.app_context():
        event = db.session.scalar(select(Event).order_by(Event.id))
        if event.state == "draft":
            events.publish_event(event)
        events.add_invitations(event, [])
        from ki_post.recipients.models import Contact

        events.add_invitations(event, list(db.session.scalars(select(Contact).order_by(Contact.id).limit(12))))
        db.session.flush()
        plan = ["zugesagt", "zugesagt", "zugesagt", "abgesagt", "abgesagt", "vorlaeufig"]
        for invitation, state in zip(event.invitations, plan):
            events.answer(invitation, state, companions=1 if state == "zugesagt" and event.companions_allowed else 0,
                          channel="telefon", notify=False)
        db.session.commit()
        return event.id


def test_event_charts_have_their_text_equivalent(page, live_app):
    event_id = _answered_demo_event(live_app)
    login(page, "lesen")
    page.goto(f"/veranstaltungen/{event_id}")
    bar = page.locator("#antworten-balken svg[role=img]")
    label = bar.get_attribute("aria-label")
    assert label.startswith("Antworten (53 insgesamt): Zusage: 3, vorläufig: 1, Warteliste: 0, Absage: 2, offen: 47")
    assert page.get_by_role("img", name=label).is_visible()  # what a screen reader is told
    legend = " ".join(page.locator("#antworten-balken figcaption").inner_text().split())
    for words in ("Zusage: 3", "Absage: 2", "vorläufig: 1", "offen: 47", "Warteliste: 0"):
        assert words in legend  # the numbers are on the page, not in the colours
    box = bar.bounding_box()
    assert box["width"] > 200 and box["height"] >= 20
    # The parts are drawn with their patterns, widths in proportion (3 Zusagen, 47 offen of 53).
    widths = {key: page.locator(f"#antworten-balken rect[data-teil={key}]").bounding_box()["width"]
              for key in ("zugesagt", "offen", "abgesagt")}
    assert widths["offen"] > widths["zugesagt"] > widths["abgesagt"]
    seats = " ".join(page.locator("#plaetze-anzeige").inner_text().split())
    assert "von 120 Plätzen belegt" in seats
    _shot(page, "veranstaltung-diagramme")
    assert_accessible(page)
    # Forced colours / no colour at all: the legend still names every part with its number.
    page.emulate_media(forced_colors="active")
    assert "Zusage: 3" in " ".join(page.locator("#antworten-balken figcaption").inner_text().split())


def test_start_page_shows_running_mailing_and_next_event(page, live_app):
    _answered_demo_event(live_app)
    mailing_id = make_mailing(live_app, 6)
    with live_app.app_context():
        from ki_post.outbox.models import Mailing

        start_mailing(db.session.get(Mailing, mailing_id))
        for message, state in zip(db.session.scalars(select(OutboxMessage).where(OutboxMessage.mailing_id == mailing_id)
                                                      .order_by(OutboxMessage.id)), ("gesendet", "gesendet", "fehlgeschlagen", "unklar")):
            message.state = state
        db.session.commit()
    login(page, "sachbearbeitung")
    page.goto("/")
    running = page.locator("#laufende-aussendungen")
    assert "2 von 6 gesendet" in running.inner_text() and "1 fehlgeschlagen, 1 unklar" in running.inner_text()
    assert running.get_by_role("img").get_attribute("aria-label").endswith("gesendet: 2, fehlgeschlagen: 1, unklar: 1, wartend: 2.")
    events_list = page.locator("#naechste-veranstaltungen")
    assert events_list.get_by_role("img").first.get_attribute("aria-label").startswith("Antworten zu „")
    assert "Plätze:" in events_list.inner_text()
    _shot(page, "start")
    assert_accessible(page)
    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # the bars reflow


def test_member_picker_by_keyboard(page, live_app):
    login(page, "sachbearbeitung")
    page.goto("/verteiler/listen/neu")
    page.get_by_label("Name").fill("Dezernate Köln")
    search = page.get_by_label("Ansprechpersonen suchen")
    search.fill("Köln")
    search.press("Enter")  # the first submit button of the form: Suchen
    page.wait_for_selector("#suchergebnisse")
    assert "Treffer" in page.locator("#suchergebnisse").inner_text()
    first = page.locator("input[id^=treffer-]").first
    first.focus()
    page.keyboard.press("Space")
    assert first.is_checked()
    _shot(page, "verteiler-auswahl")
    assert_accessible(page)
    page.get_by_role("button", name="Speichern").click()
    page.wait_for_url("**/verteiler/listen/*")
    assert "Der Verteiler ist gespeichert." in page.content()
    page.goto(page.url + "/bearbeiten")
    assert page.locator("input[id^=mitglied-]:checked").count() == 1
    assert_accessible(page)


def test_lesen_sees_read_only_pages_and_may_preview(page, live_app):
    login(page, "lesen")
    page.goto("/rundschreiben/")
    page.get_by_role("link", name="Briefe in der Vorschau ansehen").click()
    assert page.get_by_role("button", name="Briefe erstellen und herunterladen").count() == 0
    page.get_by_label("Betreff").fill("Förderung 2027")
    page.get_by_label("Verteiler").select_option(label="Alle KI-Dezernate")
    page.get_by_role("button", name="Vorschau").click()
    assert page.get_by_role("heading", name="Vorschau: Brief 1 von 53").is_visible()
    assert_accessible(page)
