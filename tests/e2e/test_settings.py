"""Verwaltung → Einstellungen in the browser: save, "Verbindung prüfen" against the test SMTP server on
127.0.0.1 (success and a wrong port), the page passes axe in every state."""
from __future__ import annotations

import pytest

from ki_post.extensions import db
from tests.e2e.conftest import assert_accessible, login
from tests.helpers import PASSWORD, make_app
from tests.smtp_server import SmtpServer, free_port

SECRET = "Postfach-Kennwort-7391"


@pytest.fixture
def live_app(tmp_path):
    """Like the shared one, but the SMTP server is left to the settings page (not fixed by configuration)."""
    app = make_app(tmp_path, "sqlite", unset=("MAIL_SERVER",), BASE_URL="")
    with app.app_context():
        from ki_post.auth.services import create_user

        for role in ("admin", "sachbearbeitung"):
            create_user(f"{role}@ministerium.example", role.capitalize(), role, PASSWORD)
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def smtp():
    # Login without TLS: the test server has no certificate the browser test would need to trust.
    with SmtpServer(users={"kipost": SECRET}, auth_require_tls=False) as server:
        yield server


def test_settings_saved_and_connection_checked_in_the_browser(page, live_app, smtp):
    login(page, "admin")
    assert page.get_by_text("Kein Absender eingerichtet").is_visible()
    page.get_by_role("link", name="Verwaltung → Einstellungen").click()
    page.wait_for_url("**/verwaltung/einstellungen")
    assert page.get_by_role("navigation", name="Verwaltung").get_by_role("link", name="Einstellungen").get_attribute("aria-current") == "page"
    assert_accessible(page)

    page.get_by_label("Absendername").fill("MKJFGFI NRW – Veranstaltungen")
    page.get_by_label("Absenderadresse (Funktionspostfach)").fill("veranstaltungen@ministerium.example")
    page.get_by_label("Nachrichten je Minute").fill("20")
    page.get_by_label("SMTP-Server").fill("127.0.0.1")
    page.get_by_label("SMTP-Port").fill(str(smtp.port))
    page.locator("#mail_security").select_option("none")
    page.locator("#mail_username").fill("kipost")
    page.locator("#mail_password").fill(SECRET)

    # Check before saving: the entered values, against the real server; nothing is sent or saved.
    page.get_by_role("button", name="SMTP-Verbindung prüfen").click()
    result = page.locator(".check-result")
    result.wait_for()
    assert "SMTP: Verbindung in Ordnung" in result.inner_text()
    assert f"Verbunden mit 127.0.0.1:{smtp.port}" in result.inner_text()
    assert "Anmeldung als kipost erfolgreich" in result.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('check-result')")  # focus on the answer
    assert page.get_by_label("SMTP-Port").input_value() == str(smtp.port)  # what was typed stays
    assert smtp.handler.received == [] and live_app.config["MAIL_SERVER"] == ""
    assert_accessible(page)

    # A wrong port: a German failure message, within a few seconds.
    page.get_by_label("SMTP-Port").fill(str(free_port()))
    page.locator("#mail_password").fill(SECRET)
    page.get_by_role("button", name="SMTP-Verbindung prüfen").click()
    page.wait_for_selector(".check-result.message-error")
    text = page.locator(".check-result").inner_text()
    assert "SMTP: Verbindung fehlgeschlagen" in text and "Verbindung abgelehnt" in text
    assert_accessible(page)

    page.get_by_label("SMTP-Port").fill(str(smtp.port))
    page.locator("#mail_password").fill(SECRET)
    page.get_by_role("button", name="Speichern").first.click()
    page.wait_for_selector(".message-success")
    assert "Die Einstellungen wurden gespeichert" in page.locator(".messages").inner_text()
    assert page.locator("#mail_password").input_value() == ""  # never shown again
    assert page.get_by_text("Ein Passwort ist gespeichert (verschlüsselt)").is_visible()
    assert SECRET not in page.content()
    assert live_app.config["MAIL_SERVER"] == "127.0.0.1" and live_app.config["MAIL_RATE_PER_MINUTE"] == 20
    assert_accessible(page)

    # The saved password is used when the field stays empty.
    page.get_by_role("button", name="SMTP-Verbindung prüfen").click()
    page.wait_for_selector(".check-result")
    assert "Anmeldung als kipost erfolgreich" in page.locator(".check-result").inner_text()
    assert smtp.handler.received == []

    page.goto("/")
    assert page.get_by_text("Kein Absender eingerichtet").count() == 0
