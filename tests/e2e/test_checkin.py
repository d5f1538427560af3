"""Browser: Einlass on a phone-sized screen — search as you type, tick off with a companion, undo, add a
walk-in; every control at least 44 px high, no sideways scrolling, no axe violations."""
from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from ki_post.events import attendance, services
from ki_post.extensions import db
from ki_post.recipients.models import Contact
from tests.e2e.conftest import assert_accessible, login


def _event_with_zusagen(live_app) -> tuple[int, list[tuple[int, str, str]]]:
    with live_app.app_context():
        contacts = list(db.session.scalars(select(Contact).where(Contact.organisation_id.is_not(None))
                                           .order_by(Contact.id).limit(6)))
        event = services.create_event(services.EventData(
            title="Fachtag Integration", start="2040-02-08T11:00", end="2040-02-08T15:00", place_name="Ministerium",
            companions_allowed=2))
        services.publish_event(event)
        services.add_invitations(event, contacts)
        for invitation in event.invitations[:4]:
            services.answer(invitation, "zugesagt", companions=1, channel="sachbearbeitung")
        db.session.commit()
        people = [(i.id, i.name, i.organisation_name) for i in event.invitations[:4]]
        return event.id, people


def _large_enough(page) -> None:
    small = page.evaluate("""() => [...document.querySelectorAll('main button, main input:not([type=hidden]), main .button')]
        .filter(el => el.offsetParent !== null)
        .map(el => [el.textContent.trim() || el.name, el.getBoundingClientRect().height])
        .filter(([, height]) => height < 44)""")
    assert not small, small


def test_check_in_on_a_phone(page, live_app):
    event_id, people = _event_with_zusagen(live_app)
    (first_id, first_name, first_org), (second_id, second_name, _), *_ = people
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "sachbearbeitung")
    page.goto(f"/veranstaltungen/{event_id}/einlass")
    assert page.locator("#einlass-noch-nicht-da").inner_text() == "4"
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    _large_enough(page)
    assert_accessible(page)

    # Search as you type: the list narrows without a page load.
    entries = page.locator(".checkin-entry:visible")
    total = entries.count()
    assert total >= 4
    page.get_by_label("Suche nach Name oder Kommune/Organisation").press_sequentially(first_name[:12].lower(), delay=20)
    expect(page.locator(".checkin-entry:not([hidden])")).not_to_have_count(total)
    assert first_name in page.locator(".checkin-entry:not([hidden])").first.inner_text()
    assert page.evaluate("location.search") == ""  # no round trip
    assert "Person" in page.locator("#einlass-treffer").inner_text()

    row = page.locator(f"#einladung-{first_id}")
    row.get_by_label(f"Begleitpersonen von {first_name}").fill("1")
    row.get_by_role("button", name=f"Anwesend: {first_name}").click()
    page.get_by_text(f"{first_name} ist anwesend, mit 1 Begleitperson.").wait_for()
    assert page.locator("#einlass-anwesend").inner_text() == "1"
    assert page.locator("#einlass-begleitpersonen").inner_text() == "1"
    assert "anwesend" in page.locator(f"#einladung-{first_id}").inner_text()
    assert_accessible(page)

    page.locator(f"#einladung-{first_id}").get_by_role("button", name=f"Zurücknehmen: {first_name}").click()
    page.get_by_text(f"Zurückgenommen: {first_name}").wait_for()
    assert page.locator("#einlass-anwesend").inner_text() == "0"
    with live_app.app_context():
        from ki_post.events.models import Invitation

        assert not attendance.attendance_for(db.session.get(Invitation, first_id)).present

    # By organisation, then a walk-in.
    page.goto(f"/veranstaltungen/{event_id}/einlass")
    page.get_by_label("Suche nach Name oder Kommune/Organisation").press_sequentially(first_org, delay=10)
    expect(page.locator(".checkin-entry:not([hidden])")).not_to_have_count(page.locator(".checkin-entry").count())
    assert all(first_org.lower() in text.lower()
               for text in page.locator(".checkin-entry:not([hidden])").all_inner_texts())
    page.get_by_label("Name", exact=True).fill("Max Gast")
    page.get_by_label("Kommune oder Organisation").fill("Kreis Wesel")
    page.get_by_role("button", name="Vor Ort hinzufügen").click()
    page.get_by_text("Max Gast ist als vor Ort angemeldet").wait_for()
    assert page.locator("#einlass-vor-ort").inner_text() == "1"
    assert "vor Ort angemeldet" in page.locator(".checkin-entry", has_text="Max Gast").inner_text()
    _large_enough(page)
    assert_accessible(page)

    # The event page on the same phone: its wide tables scroll sideways and can be reached by keyboard.
    page.goto(f"/veranstaltungen/{event_id}")
    assert page.locator("#zahl-anwesend").inner_text().startswith("1")
    assert_accessible(page)


def test_check_in_search_without_javascript(browser, live_server, live_app):
    event_id, people = _event_with_zusagen(live_app)
    context = browser.new_context(base_url=live_server.url, locale="de-DE", java_script_enabled=False,
                                  viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        login(page, "lesen")
        page.goto(f"/veranstaltungen/{event_id}/einlass")
        page.get_by_label("Suche nach Name oder Kommune/Organisation").fill(people[1][1])
        page.get_by_role("button", name="Suchen").click()
        page.wait_for_url("**q=*")
        texts = page.locator(".checkin-entry").all_inner_texts()
        assert len(texts) == 1 and people[1][1] in texts[0]
        assert page.get_by_role("button", name=f"Anwesend: {people[1][1]}").count() == 0  # lesen only looks
    finally:
        context.close()
