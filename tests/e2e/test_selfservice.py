"""The officer's "Angaben prüfen" page on a phone (375 × 667): readable, operable, axe-clean, and what
she sends lands in the secretariat's review queue."""
from __future__ import annotations

from sqlalchemy import select

from ki_post.extensions import db
from tests.e2e.conftest import assert_accessible, login

PHONE = {"width": 375, "height": 667}


def _link(app) -> tuple[str, int]:
    from ki_post.recipients.models import Contact
    from ki_post.recipients.selfservice import link_token

    with app.app_context():
        contact = db.session.scalar(select(Contact).where(Contact.active.is_(True)).order_by(Contact.id).limit(1))
        token = link_token(contact)
        db.session.commit()
        return f"/angaben/{token}", contact.id


def test_officer_page_on_a_phone(page, live_app):
    from ki_post.recipients.models import Contact, ContactProposal

    url, contact_id = _link(live_app)
    page.set_viewport_size(PHONE)
    page.goto(url)
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("heading", name="Ihre Angaben im Verteiler").is_visible()
    assert page.get_by_role("heading", name="Warum, wie lange, wer sie sieht").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)

    page.get_by_role("button", name="Alles richtig").click()
    assert page.get_by_text("Sie haben bestätigt, dass Ihre Angaben stimmen").is_visible()
    assert_accessible(page)

    page.get_by_label("PLZ").fill("ABC")  # refused with the error at the field
    page.get_by_role("button", name="Korrektur senden").click()
    assert page.locator(".error-summary").is_visible()
    assert page.get_by_label("PLZ").get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    page.get_by_label("PLZ").fill("40210")
    page.get_by_label("Telefon").fill("0211 4711")
    page.get_by_role("button", name="Korrektur senden").click()
    assert page.get_by_text("Ihre Korrektur ist eingegangen").is_visible()

    page.get_by_label("Nachname der Nachfolge").fill("Nachfolger")
    page.get_by_label("E-Mail-Adresse der Nachfolge").fill("nachfolge@kommune.example")
    page.get_by_role("button", name="Nachfolge mitteilen").click()
    assert page.get_by_text("Ihre Mitteilung ist eingegangen").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)

    with live_app.app_context():
        kinds = sorted(p.kind for p in db.session.scalars(select(ContactProposal).where(ContactProposal.contact_id == contact_id)))
        assert kinds == ["korrektur", "uebergabe"]
        contact = db.session.get(Contact, contact_id)
        assert contact.active and contact.phone != "0211 4711" and contact.confirmed_at is not None

    login(page, "sachbearbeitung")
    page.goto("/verteiler/vorschlaege")
    assert page.get_by_role("button", name="Übernehmen").count() == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)
