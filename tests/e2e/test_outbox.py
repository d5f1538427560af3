"""Browser: start a mailing with "Senden" and watch its progress reach 100 % without reloading."""
from __future__ import annotations

import threading

from playwright.sync_api import expect

from ki_post.extensions import db
from ki_post.outbox.services import Attachment, create_mailing, enqueue
from ki_post.outbox.worker import Worker
from tests.e2e.conftest import assert_accessible, login


def make_mailing(app, count: int = 6) -> int:
    with app.app_context():
        mailing = create_mailing("rundschreiben", "Rundschreiben 1/2027: Förderrichtlinie")
        for number in range(count):
            enqueue(mailing, to_email=f"dezernat{number}@kommune.example", to_name=f"Dezernentin {number}",
                    subject="Rundschreiben: Förderrichtlinie", text="Sehr geehrte Damen und Herren,\nanbei das Rundschreiben.\n",
                    html="<p>Sehr geehrte Damen und Herren,</p><p>anbei das Rundschreiben.</p>",
                    attachments=[Attachment("rundschreiben.pdf", "application/pdf", b"%PDF-1.7 Rundschreiben")])
        db.session.commit()
        return mailing.id


def test_send_mailing_and_watch_progress(page, live_app):
    # 120 per minute: six messages take about three seconds, so the page sees the numbers move.
    live_app.config["MAIL_RATE_PER_MINUTE"] = 120
    mailing_id = make_mailing(live_app)
    worker = Worker(live_app)  # file transport: no MAIL_SERVER in tests

    def run() -> None:
        with live_app.app_context():
            worker.run(once=False, poll_seconds=0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        login(page)
        page.goto("/postausgang/")
        assert_accessible(page)
        page.get_by_role("link", name="Rundschreiben 1/2027: Förderrichtlinie").click()
        assert page.locator("h1").inner_text() == "Aussendung: Rundschreiben 1/2027: Förderrichtlinie"
        assert page.locator("[data-feld=percent]").inner_text() == "0"
        assert_accessible(page)
        page.get_by_role("button", name="Senden (6 Nachrichten)").click()
        page.wait_for_url(f"**/postausgang/{mailing_id}")
        assert page.get_by_text("Die Aussendung wird gesendet.").is_visible()
        # No reload from here on: the script fills the aria-live region.
        expect(page.locator("[data-feld=percent]")).to_have_text("100", timeout=60000)
        assert page.locator("#fortschritt-balken").get_attribute("value") in ("100", "100.0")
        assert page.locator("[data-feld=sent]").inner_text() == "6"
        assert page.locator("[data-feld=eta]").inner_text() == "Fertig."
        assert page.locator("#fortschritt-text").get_attribute("aria-live") == "polite"
        assert_accessible(page)

        page.get_by_role("link", name="Vorschau der Nachricht an dezernat0@kommune.example").click()
        assert page.locator("h1").inner_text() == "Nachricht an Dezernentin 0"
        assert_accessible(page)
        page.goto("/postausgang/dateien")
        assert page.get_by_text("Diese Nachrichten wurden nicht versendet.").is_visible()
        assert page.locator("table tbody tr").count() == 6
        assert_accessible(page)
    finally:
        worker.stop_event.set()
        thread.join(timeout=10)


def test_decide_all_unklar_messages_at_once(page, live_app):
    """The mailing page offers the bulk decision; the confirmation page names count and recipients."""
    from sqlalchemy import select, update

    from ki_post.outbox.models import Mailing, OutboxMessage

    mailing_id = make_mailing(live_app, count=4)
    with live_app.app_context():
        db.session.execute(update(Mailing).where(Mailing.id == mailing_id).values(state="pausiert"))
        ids = db.session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id).limit(3)).all()
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(
            state="unklar", server_reply="Verbindung während der Übergabe abgebrochen"))
        db.session.commit()
    login(page)
    page.goto(f"/postausgang/{mailing_id}")
    page.get_by_role("link", name="Alle unklaren als gesendet markieren …").click()
    assert page.locator("h1").inner_text() == "3 unklare Nachrichten als gesendet markieren?"
    assert page.locator("table tbody tr").count() == 3
    assert_accessible(page)
    page.get_by_role("button", name="Ja, alle 3 als gesendet markieren").click()
    page.wait_for_url(f"**/postausgang/{mailing_id}")
    assert page.get_by_text("3 unklare Nachrichten sind als gesendet markiert.").is_visible()
    assert page.get_by_role("link", name="Alle unklaren als gesendet markieren …").count() == 0
    assert_accessible(page)
