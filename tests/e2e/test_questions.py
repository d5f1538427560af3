"""Browser: the event's own questions on the personal answer page (a full tour shown as full, a required
choice refused at the field) and the staff's question pages, each checked with axe."""
from __future__ import annotations

import re

from sqlalchemy import select

from ki_post.events import questions
from ki_post.events.models import Invitation
from ki_post.extensions import db
from tests.e2e.conftest import assert_accessible, login


def test_answer_page_with_questions_and_the_staff_pages(page, live_app):
    with live_app.app_context():  # the demo event asks for a tour (required) and for step-free access
        invitation = db.session.scalars(select(Invitation).where(Invitation.event_id == 1).order_by(Invitation.id)).first()
        token, invitation_id = invitation.token, invitation.id
        tour = questions.questions_of(1)[0]
        tour.options[1].capacity = 0  # the 14:00 tour is full
        tour_id = tour.id
        db.session.commit()

    page.goto(f"/antwort/{token}")
    assert page.get_by_label("Führung um 14:00 Uhr – ausgebucht").is_disabled()
    assert "ebenfalls je einen Platz" in page.locator(f"#frage-{tour_id}-begleitung").inner_text()  # companions allowed
    assert_accessible(page)
    page.get_by_label("Ich nehme teil (Zusage)").check()
    page.get_by_role("button", name="Antwort senden").click()
    page.locator(".error-summary").wait_for()
    assert "Pflichtangabe bei einer Zusage" in page.locator(f"#frage-{tour_id}-fehler").inner_text()
    assert_accessible(page)
    page.get_by_label("Führung um 13:15 Uhr (noch 25 Plätze frei)").check()
    page.get_by_label("Ja", exact=True).check()
    page.get_by_role("button", name="Antwort senden").click()
    page.get_by_text("Ihre Zusage ist gespeichert").wait_for()
    assert page.get_by_label("Führung um 13:15 Uhr").is_checked()
    assert_accessible(page)
    with live_app.app_context():
        assert db.session.get(Invitation, invitation_id).state == "zugesagt"

    login(page, "sachbearbeitung")
    page.goto("/veranstaltungen/1")
    assert "Führung durch das Haus teilnehmen?: Führung um 13:15 Uhr" in page.locator("main").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name="Fragen an die Eingeladenen (2)").click()
    page.get_by_role("heading", name="Fragen an die Eingeladenen").wait_for()
    assert_accessible(page)
    # The question's label is visually hidden: Chrome names the link "Bearbeiten : …" (a space at the hidden box).
    page.get_by_role("link", name=re.compile(r"^Bearbeiten\s*: Möchten Sie im Anschluss")).click()
    page.get_by_role("heading", name="Frage bearbeiten").wait_for()
    assert_accessible(page)

    # A place count in a new row without a name: refused at that row, the summary links to it.
    page.goto(f"/veranstaltungen/1/fragen/{tour_id}")
    rows = page.locator("#options tbody tr").count()
    page.get_by_label(f"Plätze für Möglichkeit {rows}", exact=True).fill("5")
    page.get_by_role("button", name="Speichern").click()
    page.locator(".error-summary").wait_for()
    assert page.locator(f"#option_label-{rows - 1}-fehler").inner_text() == "Bei einer Platzzahl fehlt der Name der Möglichkeit."
    assert page.get_by_label(f"Möglichkeit {rows}", exact=True).get_attribute("aria-invalid") == "true"
    assert "Begleitpersonen einer Zusage belegen" in page.locator("#options-begleitung").inner_text()
    assert_accessible(page)
