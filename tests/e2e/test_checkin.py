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


def _door_of_many(live_app, count: int = 40) -> tuple[int, list[tuple[int, str]]]:
    """A published event with many invitations (the list is longer than a phone screen), half of them Zusagen."""
    with live_app.app_context():
        contacts = list(db.session.scalars(select(Contact).order_by(Contact.id).limit(count)))
        event = services.create_event(services.EventData(
            title="Fachtag Integration", start="2040-02-08T11:00", end="2040-02-08T15:00", place_name="Ministerium",
            companions_allowed=2))
        services.publish_event(event)
        services.add_invitations(event, contacts)
        for invitation in event.invitations[::2]:
            services.answer(invitation, "zugesagt", companions=0, channel="sachbearbeitung")
        db.session.commit()
        return event.id, [(i.id, i.name) for i in event.invitations]


def _in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844


def test_door_list_on_a_phone_search_on_the_first_screen_filter_kept_walk_in_near_top(page, live_app):
    event_id, people = _door_of_many(live_app)
    assert len(people) >= 20
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "sachbearbeitung")
    page.goto(f"/veranstaltungen/{event_id}/einlass")

    # The first screen: the search field (and the walk-in link beside it) without scrolling; the navigation
    # folded behind „Menü“, reachable by keyboard.
    assert page.evaluate("window.scrollY") == 0
    search = page.get_by_label("Suche nach Name oder Kommune/Organisation")
    box = search.bounding_box()
    assert box["y"] + box["height"] < 844, box
    assert _in_view(page, ".checkin-walk-in-link")
    assert _in_view(page, ".checkin-entry >> nth=0")  # the first person too
    assert page.locator(".site-header").bounding_box()["height"] < 100
    assert not page.get_by_role("navigation", name="Hauptnavigation").is_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    _large_enough(page)
    assert_accessible(page)
    page.locator(".checkin-menu > summary").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Hauptnavigation")).to_be_visible()
    assert_accessible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Hauptnavigation")).to_be_hidden()

    # „nur Zusagen“ hides people without an answer while ticked, and says how many.
    total = page.locator(".checkin-entry:not([hidden])").count()
    page.get_by_label("nur Zusagen").check()
    expect(page.locator("#einlass-ausgeblendet")).to_contain_text("ohne Zusage ausgeblendet")
    shown = page.locator(".checkin-entry:not([hidden])").count()
    assert 0 < shown < total
    assert str(total - shown) in page.locator("#einlass-ausgeblendet").inner_text()
    page.get_by_label("nur Zusagen").uncheck()
    expect(page.locator(".checkin-entry:not([hidden])")).to_have_count(total)

    # Type a filter, tick a person: after the reload the list is still filtered and the message is at the person.
    target_id, target_name = people[-2]  # near the end of the list
    needle = target_name.split()[-1][:5].lower()
    search.press_sequentially(needle, delay=20)
    expect(page.locator(".checkin-entry:not([hidden])")).not_to_have_count(total)
    filtered = page.locator(".checkin-entry:not([hidden])").count()
    page.get_by_role("button", name=f"Anwesend: {target_name}").click()
    page.get_by_text(f"{target_name} ist anwesend").wait_for()
    assert f"q={needle}" in page.url
    assert search.input_value() == needle
    assert page.locator(".checkin-entry:not([hidden])").count() == filtered  # still filtered, not all again
    message = page.locator(f"#einladung-{target_id} .checkin-message")
    assert target_name in message.inner_text()
    assert _in_view(page, f"#einladung-{target_id} .checkin-message")  # seen without scrolling
    assert "Zurücknehmen" in page.locator(f"#einladung-{target_id}").inner_text()
    assert_accessible(page)

    # Without a filter: a person far down the list; the page comes back at that person, with the message.
    page.goto(f"/veranstaltungen/{event_id}/einlass")
    last = page.locator(".checkin-entry").last
    last_key, last_name = last.get_attribute("id"), last.locator(".checkin-name").inner_text()
    last.get_by_role("button", name=f"Anwesend: {last_name}").click()
    page.get_by_text(f"{last_name} ist anwesend").wait_for()
    assert page.evaluate("window.scrollY") > 844
    assert _in_view(page, f"#{last_key} .checkin-message")

    # The walk-in form sits below the list; the link beside the search jumps there, then back to the new line.
    page.goto(f"/veranstaltungen/{event_id}/einlass")
    page.get_by_role("link", name="Person vor Ort hinzufügen").click()
    name_field = page.get_by_label("Name", exact=True)
    expect(name_field).to_be_focused()
    assert _in_view(page, "#vor-ort-formular [name=name]")
    page.keyboard.type("Max Gast")
    page.get_by_label("Kommune oder Organisation").fill("Kreis Wesel")
    page.get_by_role("button", name="Vor Ort hinzufügen").click()
    page.get_by_text("Max Gast ist als vor Ort angemeldet").wait_for()
    new_line = page.locator(".checkin-entry", has_text="Max Gast")
    assert "Max Gast ist als vor Ort angemeldet" in new_line.locator(".checkin-message").inner_text()
    assert _in_view(page, ".checkin-entry:has-text('Max Gast') .checkin-message")
    assert_accessible(page)
