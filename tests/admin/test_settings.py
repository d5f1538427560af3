"""Verwaltung → Einstellungen: saved in the database, audited, configuration still wins, passwords
encrypted and never shown again, the worker and the IMAP poll use what was saved without a restart,
"Verbindung prüfen" against real servers on 127.0.0.1 (both databases)."""
from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import select

from ki_post import settings
from ki_post.auth.models import AuditEntry
from ki_post.extensions import db
from ki_post.models import metadata
from ki_post.outbox.services import create_mailing, enqueue, start_mailing
from ki_post.outbox.worker import Worker
from tests.helpers import PASSWORD, claim, make_app

URL = "/verwaltung/einstellungen"
SMTP_SECRET = "Postfach-Kennwort-7391"
SENDER = "MKJFGFI NRW – Veranstaltungen <veranstaltungen@ministerium.example>"


def form(**changes) -> dict:
    """A complete submission of the settings page, as a browser sends it."""
    data = {
        "ansprechperson": "Agnes Heuvelmann", "funktion": "Veranstaltungsteam", "organisationseinheit": "Abteilung IV",
        "ministerium": "Ministerium für Kinder, Jugend, Familie, Gleichstellung, Flucht und Integration",
        "dienstgebaeude": "Völklinger Straße 4\n40219 Düsseldorf", "telefon": "0211 837-2000", "email": "",
        "sender_name": "MKJFGFI NRW – Veranstaltungen", "sender_address": "veranstaltungen@ministerium.example",
        "reply_to": "", "rate_per_minute": "30", "daily_cap": "0",
        "mail_server": "", "mail_port": "587", "mail_security": "starttls", "mail_username": "", "mail_password": "",
        "imap_server": "", "imap_port": "993", "imap_security": "ssl", "imap_username": "", "imap_password": "",
        "imap_folder": "INBOX",
    }
    data.update(changes)
    return data


def all_rows() -> str:
    db.session.expire_all()
    text = "\n".join(repr(tuple(row)) for table in metadata.sorted_tables for row in db.session.execute(select(table)))
    db.session.rollback()
    return text


def test_saved_settings_take_effect_and_are_audited_by_name(settings_app, admin):
    assert settings_app.config["MAIL_RATE_PER_MINUTE"] == 30 and settings.sender_missing()
    response = admin.submit(URL, form(rate_per_minute="12", daily_cap="400", mail_server="127.0.0.1", mail_port="2525",
                                      mail_security="none", mail_username="kipost", mail_password=SMTP_SECRET,
                                      reply_to="antworten@ministerium.example"))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    config = settings_app.config
    assert (config["MAIL_RATE_PER_MINUTE"], config["MAIL_DAILY_CAP"]) == (12, 400)
    assert (config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_USE_TLS"], config["MAIL_USE_SSL"]) == ("127.0.0.1", 2525, False, False)
    assert (config["MAIL_USERNAME"], config["MAIL_PASSWORD"]) == ("kipost", SMTP_SECRET)
    assert config["MAIL_DEFAULT_SENDER"] == SENDER and not settings.sender_missing()
    assert config["MAIL_REPLY_TO"] == "antworten@ministerium.example"

    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "einstellungen.geaendert"))
    assert entry is not None and entry.user.email == "admin@ministerium.example"
    named = set(entry.details["geaendert"].split(", "))
    assert {"MAIL_RATE_PER_MINUTE", "MAIL_DAILY_CAP", "MAIL_SERVER", "MAIL_PASSWORD", "MAIL_DEFAULT_SENDER"} <= named
    assert SMTP_SECRET not in repr(entry.details)
    # The sender identity is the one sender profile of the letters (and of mails and the answer page).
    from ki_post.letters.services import signature_lines

    assert signature_lines() == ["Agnes Heuvelmann", "Veranstaltungsteam, Abteilung IV",
                                 "Ministerium für Kinder, Jugend, Familie, Gleichstellung, Flucht und Integration"]

    # Emptied fields fall back to the configuration's value.
    assert admin.submit(URL, form(rate_per_minute="", mail_server="127.0.0.1", mail_port="", mail_security="none")).status_code == 302
    assert config["MAIL_RATE_PER_MINUTE"] == 30 and config["MAIL_PORT"] == 587


def test_configuration_wins_over_the_database_and_is_shown_as_fixed(tmp_path, backend, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text('MAIL_REPLY_TO = "config@ministerium.example"\n')
    monkeypatch.setenv("KI_POST_MAIL_DAILY_CAP", "5")
    app = make_app(tmp_path, backend, unset=("MAIL_SERVER",), MAIL_RATE_PER_MINUTE=7)
    with app.app_context():
        from ki_post.auth.services import create_user

        create_user("admin@ministerium.example", "Admin", "admin", PASSWORD)
        # Rows saved before the operator fixed these values in configuration.
        db.session.add_all([settings.Setting(key="MAIL_RATE_PER_MINUTE", value="99"),
                            settings.Setting(key="MAIL_DAILY_CAP", value="1000"),
                            settings.Setting(key="MAIL_REPLY_TO", value="db@ministerium.example"),
                            settings.Setting(key="MAIL_PORT", value="2600")])
        db.session.commit()
        settings.refresh(app, force=True)
        assert settings.fixed(app) >= {"MAIL_RATE_PER_MINUTE", "MAIL_DAILY_CAP", "MAIL_REPLY_TO"}
        assert "MAIL_SERVER" not in settings.fixed(app)
        assert app.config["MAIL_RATE_PER_MINUTE"] == 7  # overrides (the factory's) over the database
        assert app.config["MAIL_DAILY_CAP"] == 5  # environment over the database
        assert app.config["MAIL_REPLY_TO"] == "config@ministerium.example"  # instance/config.py over the database
        assert app.config["MAIL_PORT"] == 2600  # the database over the default

        client = app.test_client()
        client.login("admin@ministerium.example")
        page = client.get(URL).get_data(as_text=True)
        for name in ("rate_per_minute", "daily_cap", "reply_to"):
            tag = page[page.index(f'id="{name}"') - 200:page.index(f'id="{name}"') + 200]
            assert "disabled" in tag, name
        assert "Festgelegt durch die Konfiguration (MAIL_DAILY_CAP" in page
        assert 'id="mail_port"' in page and "disabled" not in page[page.index('id="mail_port"') - 200:page.index('id="mail_port"') + 200]
        # A forged submission of a fixed value changes nothing.
        assert client.submit(URL, form(rate_per_minute="1", daily_cap="2", reply_to="x@ministerium.example")).status_code == 302
        assert db.session.get(settings.Setting, "MAIL_RATE_PER_MINUTE").value == "99"
        assert app.config["MAIL_RATE_PER_MINUTE"] == 7 and app.config["MAIL_DAILY_CAP"] == 5
        db.session.remove()
        db.engine.dispose()


def test_password_is_encrypted_never_shown_kept_when_empty_and_can_be_cleared(settings_app, admin):
    assert admin.submit(URL, form(mail_server="127.0.0.1", mail_username="kipost", mail_password=SMTP_SECRET,
                                  imap_server="127.0.0.1", imap_username="postfach", imap_password="Imap-Geheimnis-55")).status_code == 302
    rows = all_rows()
    assert SMTP_SECRET not in rows and "Imap-Geheimnis-55" not in rows
    stored = db.session.get(settings.Setting, "MAIL_PASSWORD")
    assert stored.secret and stored.value.startswith("gAAAA")  # a Fernet token
    key_file = os.path.join(settings_app.instance_path, "settings_key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    page = admin.get(URL).get_data(as_text=True)
    assert SMTP_SECRET not in page and "Imap-Geheimnis-55" not in page
    assert "Ein Passwort ist gespeichert (verschlüsselt)" in page
    # Saved again with the field empty: the password stays.
    assert admin.submit(URL, form(mail_server="127.0.0.1", mail_username="kipost", rate_per_minute="5")).status_code == 302
    assert settings_app.config["MAIL_PASSWORD"] == SMTP_SECRET
    # Cleared on request.
    assert admin.submit(URL, form(mail_server="127.0.0.1", mail_username="kipost", mail_password_clear="y")).status_code == 302
    assert settings_app.config["MAIL_PASSWORD"] == "" and db.session.get(settings.Setting, "MAIL_PASSWORD") is None
    assert settings_app.config["IMAP_PASSWORD"] == "Imap-Geheimnis-55"

    # Without the key (instance folder lost) the stored password counts as unset, and the page says so.
    os.remove(key_file)
    settings.refresh(settings_app, force=True)
    assert settings_app.config["IMAP_PASSWORD"] == ""
    assert "lässt sich mit dem Schlüssel dieser Installation aber nicht lesen" in admin.get(URL).get_data(as_text=True)


def test_bad_input_gets_german_messages_and_changes_nothing(settings_app, admin):
    before = all_rows()
    for changes, message in [({"sender_address": "kein-at-zeichen"}, "keine gültige E-Mail-Adresse"),
                             ({"mail_port": "70000"}, "zwischen 1 und 65535"),
                             ({"rate_per_minute": "viele"}, "ganze Zahl"),
                             ({"mail_server": "smtp example"}, "ohne Leerzeichen"),
                             ({"sender_name": "Name\r\nBcc: x@y.de"}, "Zeilenumbrüche")]:
        response = admin.submit(URL, form(**changes))
        assert response.status_code == 422, changes
        assert message in response.get_data(as_text=True), changes
    assert all_rows().count("einstellungen.geaendert") == before.count("einstellungen.geaendert")
    assert settings_app.config["MAIL_PORT"] == 587


def test_only_admins_and_never_without_csrf_or_by_get(settings_app, admin):
    for role in ("sachbearbeitung", "lesen"):
        client = settings_app.test_client()
        client.login(f"{role}@ministerium.example")
        assert client.get(URL).status_code == 403
        token = client.csrf_token("/")
        for path in (URL, URL + "/smtp-pruefen", URL + "/imap-pruefen"):
            assert client.post(path, data={**form(mail_server="127.0.0.1"), "csrf_token": token}).status_code == 403
    assert settings_app.config["MAIL_SERVER"] == ""
    for path in (URL, URL + "/smtp-pruefen"):
        response = admin.post(path, data=form(mail_server="127.0.0.1"))
        assert response.status_code == 400 and "Sicherheitsprüfung fehlgeschlagen" in response.get_data(as_text=True)
    assert admin.get(URL + "/smtp-pruefen").status_code == 405
    assert settings_app.config["MAIL_SERVER"] == "" and db.session.get(settings.Setting, "MAIL_SERVER") is None


def test_start_page_and_outbox_ask_for_a_sender_until_one_is_set(settings_app, admin):
    for path in ("/", "/postausgang/"):
        assert "Kein Absender eingerichtet" in admin.get(path).get_data(as_text=True)
    clerk = settings_app.test_client()
    clerk.login("sachbearbeitung@ministerium.example")
    assert "Bitte die Administration bitten" in clerk.get("/").get_data(as_text=True)
    assert admin.submit(URL, form()).status_code == 302
    for path in ("/", "/postausgang/"):
        assert "Kein Absender eingerichtet" not in admin.get(path).get_data(as_text=True)


def _queue(count: int):
    mailing = create_mailing("rundschreiben", "Rundschreiben")
    for number in range(count):
        enqueue(mailing, to_email=f"person{number}@kreis.example", to_name=f"Person {number}", subject="Betreff", text="Text\n")
    start_mailing(mailing)
    db.session.commit()
    return mailing


def test_a_running_worker_takes_up_a_new_server_and_sender(settings_app, admin, smtp):
    worker = Worker(settings_app)  # started before anything was set: .eml files
    assert worker.transport.kind == "datei"
    assert admin.submit(URL, form(mail_server="127.0.0.1", mail_port=str(smtp.port), mail_security="none",
                                  rate_per_minute="0")).status_code == 302
    _queue(2)
    summary = worker.run(once=True)
    assert summary.sent == 2 and worker.transport.kind == "smtp"
    messages = smtp.messages()
    assert len(messages) == 2
    assert str(messages[0]["From"]) == SENDER
    outbox_dir = settings_app.config["OUTBOX_DIR"]
    assert not os.path.isdir(outbox_dir) or os.listdir(outbox_dir) == []  # nothing went to .eml files


def test_a_running_worker_takes_up_a_changed_rate(settings_app, admin):
    assert admin.submit(URL, form(rate_per_minute="0")).status_code == 302
    worker = Worker(settings_app)
    _queue(4)
    worker.follow_settings(force=True)
    assert claim(worker) is not None and claim(worker) is not None  # no limit: one after the other
    assert admin.submit(URL, form(rate_per_minute="1")).status_code == 302
    worker.follow_settings(force=True)
    assert claim(worker) is None  # one a minute now, and one went out just now


def test_smtp_check_reports_success_and_refusal_and_sends_nothing(settings_app, admin, smtp):
    response = admin.submit(URL + "/smtp-pruefen", form(mail_server="127.0.0.1", mail_port=str(smtp.port), mail_security="none"),
                            form_url=URL)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "SMTP: Verbindung in Ordnung" in page and f"Verbunden mit 127.0.0.1:{smtp.port}" in page
    assert smtp.handler.received == []
    assert settings_app.config["MAIL_SERVER"] == "" and db.session.get(settings.Setting, "MAIL_SERVER") is None

    smtp.stop()
    page = admin.submit(URL + "/smtp-pruefen", form(mail_server="127.0.0.1", mail_port=str(smtp.port), mail_security="none"),
                        form_url=URL).get_data(as_text=True)
    assert "SMTP: Verbindung fehlgeschlagen" in page and "Verbindung abgelehnt" in page


def test_smtp_check_with_starttls_login_and_certificates(settings_app, admin, tmp_path):
    from tests.smtp_server import SmtpServer, make_certificates

    certificates = make_certificates(tmp_path / "ca")
    with SmtpServer(tls="starttls", certificates=certificates, users={"kipost": SMTP_SECRET}) as server:
        values = form(mail_server="127.0.0.1", mail_port=str(server.port), mail_security="starttls", mail_username="kipost")
        # The CA is unknown to this installation: a certificate problem, before the password goes out.
        page = admin.submit(URL + "/smtp-pruefen", {**values, "mail_password": SMTP_SECRET}, form_url=URL).get_data(as_text=True)
        assert "Zertifikatsproblem" in page and server.handler.logins == []
        settings_app.config["MAIL_CA_FILE"] = certificates.ca_file
        page = admin.submit(URL + "/smtp-pruefen", {**values, "mail_password": "falsch"}, form_url=URL).get_data(as_text=True)
        assert "STARTTLS in Ordnung" in page and "Anmeldung fehlgeschlagen" in page
        # The saved password is used when none is typed.
        assert admin.submit(URL, {**values, "mail_password": SMTP_SECRET}).status_code == 302
        page = admin.submit(URL + "/smtp-pruefen", values, form_url=URL).get_data(as_text=True)
        assert "Anmeldung als kipost erfolgreich" in page and "SMTP: Verbindung in Ordnung" in page
        assert server.handler.received == []


def test_imap_check_and_poll_use_the_saved_mailbox(settings_app, admin, imap_server):
    values = form(imap_server=imap_server.host, imap_port=str(imap_server.port), imap_security="none",
                  imap_username=imap_server.username)
    page = admin.submit(URL + "/imap-pruefen", {**values, "imap_password": "falsch"}, form_url=URL).get_data(as_text=True)
    assert "IMAP: Verbindung fehlgeschlagen" in page and "Anmeldung fehlgeschlagen" in page
    page = admin.submit(URL + "/imap-pruefen", {**values, "imap_password": imap_server.password}, form_url=URL).get_data(as_text=True)
    assert "IMAP: Verbindung in Ordnung" in page and "Ordner „INBOX“ geöffnet" in page

    assert admin.submit(URL, {**values, "imap_password": imap_server.password}).status_code == 302
    result = settings_app.test_cli_runner().invoke(args=["rsvp", "poll-imap"])
    assert result.exit_code == 0, result.output


def test_outbox_work_starts_with_the_saved_server(settings_app, admin, smtp):
    assert admin.submit(URL, form(mail_server="127.0.0.1", mail_port=str(smtp.port), mail_security="none",
                                  rate_per_minute="0")).status_code == 302
    _queue(1)
    # As a fresh `flask outbox work` process starts: the configuration's values, the database not read yet.
    settings_app.config["MAIL_SERVER"] = ""
    settings._state(settings_app).loaded_at = float("-inf")
    result = settings_app.test_cli_runner().invoke(args=["outbox", "work", "--once"])
    assert result.exit_code == 0, result.output
    assert "sendet über SMTP 127.0.0.1" in result.output
    assert len(smtp.messages()) == 1
