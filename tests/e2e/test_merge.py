"""Browser: merging a duplicate with axe-core on each step (choose, values, preview, error, done)."""
from __future__ import annotations

from sqlalchemy import select

from ki_post.extensions import db
from ki_post.recipients.models import Contact
from tests.e2e.conftest import assert_accessible, login


def test_merge_a_duplicate_step_by_step(page, live_app):
    with live_app.app_context():
        original = db.session.scalar(select(Contact).where(Contact.organisation_id.is_not(None)).order_by(Contact.id).limit(1))
        twin = Contact(first_name=original.first_name.upper(), last_name=original.last_name.upper(), email="zwilling@ministerium.example",
                       phone="0211 123-45", organisation_id=original.organisation_id, extra={})
        db.session.add(twin)
        db.session.commit()
        original_id, twin_id = original.id, twin.id

    login(page)
    page.goto(f"/verteiler/kontakte/{original_id}")
    page.get_by_role("link", name="Mit doppeltem Eintrag zusammenführen").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Doppelte Einträge zusammenführen"
    assert_accessible(page)
    page.locator("#wahrscheinlich a").click()
    page.wait_for_url(f"**/zusammenfuehren?mit={twin_id}")
    assert_accessible(page)

    page.locator("#feld-phone-uebernehmen").check()
    page.get_by_role("button", name="Vorschau").click()
    assert "0211 123-45" in page.locator("tr", has=page.locator("#feld-phone-titel")).locator(".ergebnis").inner_text()
    assert_accessible(page)
    page.get_by_role("button", name="Zusammenführen").click()  # not confirmed yet
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page)

    page.get_by_label("Beide Einträge sind dieselbe Person").check()
    page.get_by_role("button", name="Zusammenführen").click()
    page.wait_for_url(f"**/verteiler/kontakte/{original_id}")
    assert "Die Einträge sind zusammengeführt" in page.locator("main").inner_text()
    assert "0211 123-45" in page.locator("main").inner_text()
    with live_app.app_context():
        assert db.session.get(Contact, twin_id) is None
