"""STARTTLS, implicit TLS and SMTP login against a real aiosmtpd server with a throw-away CA (both backends).

The certificate is always verified: an unknown CA, a self-signed certificate or a wrong name stops
the connection before anything (the password included) goes out, and so does a server without
STARTTLS while MAIL_USE_TLS is on.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import select

from ki_post.auth.services import create_user
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, start_mailing
from ki_post.outbox.worker import Worker
from tests.helpers import PASSWORD as STAFF_PASSWORD
from tests.helpers import make_app
from tests.outbox.conftest import smtp_config
from tests.smtp_server import Certificates, SmtpServer, make_certificates

# aiosmtpd itself sets its deprecated Session.login_data after every successful AUTH.
pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")

LOGIN = "ki-post@ministerium.example"
SECRET = "Postfach-Kennwort-2024"
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    """Server certificate for 127.0.0.1, signed by a CA that only MAIL_CA_FILE knows."""
    return make_certificates(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("self-signed"), self_signed=True)


@pytest.fixture(scope="module")
def wrong_name(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("wrong-name"), name="DNS:mail.ministerium.example")


@pytest.fixture
def sending_app(tmp_path, backend):
    @contextmanager
    def make(server: SmtpServer, **config) -> Iterator[Flask]:
        app = make_app(tmp_path, backend, **smtp_config(server.port, **config))
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()

    return make


def make_mailing(count: int) -> Mailing:
    mailing = create_mailing("rundschreiben", "Rundschreiben 2/2017")
    for number in range(count):
        enqueue(mailing, to_email=f"person{number}@kreis.example", to_name=f"Person {number}",
                subject="Rundschreiben: Förderung", text=f"Hallo Person {number}\n")
    start_mailing(mailing)
    db.session.commit()
    return mailing


def messages(mailing_id: int) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.mailing_id == mailing_id)
                                   .order_by(OutboxMessage.id)))


def assert_connection_refused(mailing: Mailing, summary, reply_start: str) -> OutboxMessage:
    """Nothing sent, the claimed message waits with backoff and the reason, the rest untouched, mailing active."""
    assert summary.sent == 0 and summary.retry == 1
    assert summary.stopped_because == "SMTP-Server nicht erreichbar"
    first, *rest = messages(mailing.id)
    assert first.state == "wartend" and first.attempts == 1
    assert first.next_attempt_at > first.first_failure_at  # backoff (a short one in tests)
    assert first.server_reply.startswith(reply_start), first.server_reply
    assert [(m.state, m.attempts, m.server_reply) for m in rest] == [("wartend", 0, "")] * len(rest)
    assert db.session.get(Mailing, mailing.id).state == "aktiv"
    return first


def test_starttls_with_login_and_internal_ca(sending_app, certificates):
    with SmtpServer(tls="starttls", certificates=certificates, users={LOGIN: SECRET}) as smtp, \
            sending_app(smtp, MAIL_USE_TLS=True, MAIL_CA_FILE=certificates.ca_file,
                        MAIL_USERNAME=LOGIN, MAIL_PASSWORD=SECRET) as app:
        mailing = make_mailing(3)
        assert Worker(app).run(once=True).sent == 3
        assert sorted(smtp.recipients()) == [f"person{n}@kreis.example" for n in range(3)]
        # Every message went over the upgraded connection, logged in as the configured user, once.
        assert {(r.tls in TLS_VERSIONS, r.login) for r in smtp.handler.received} == {(True, LOGIN)}
        assert smtp.handler.logins == [LOGIN]
        assert [m.state for m in messages(mailing.id)] == ["gesendet"] * 3


def test_implicit_tls_with_login(sending_app, certificates):
    # MAIL_USE_TLS stays at its default (on): with SSL from the start no STARTTLS is tried on top.
    with SmtpServer(tls="ssl", certificates=certificates, users={LOGIN: SECRET}) as smtp, \
            sending_app(smtp, MAIL_USE_SSL=True, MAIL_USE_TLS=True, MAIL_CA_FILE=certificates.ca_file,
                        MAIL_USERNAME=LOGIN, MAIL_PASSWORD=SECRET) as app:
        mailing = make_mailing(2)
        assert Worker(app).run(once=True).sent == 2
        assert {(r.tls in TLS_VERSIONS, r.login) for r in smtp.handler.received} == {(True, LOGIN)}
        assert [m.state for m in messages(mailing.id)] == ["gesendet"] * 2


def test_wrong_password_keeps_the_mailing(sending_app, certificates):
    with SmtpServer(tls="starttls", certificates=certificates, users={LOGIN: "ein anderes Kennwort"}) as smtp, \
            sending_app(smtp, MAIL_USE_TLS=True, MAIL_CA_FILE=certificates.ca_file,
                        MAIL_USERNAME=LOGIN, MAIL_PASSWORD=SECRET) as app:
        mailing = make_mailing(3)
        summary = Worker(app).run(once=True)
        assert set(smtp.handler.logins) == {LOGIN}  # smtplib tries PLAIN, then LOGIN
        assert smtp.handler.received == []
        assert_connection_refused(mailing, summary, "Anmeldung/Verbindung abgelehnt: 535")
        # Once the mailbox accepts the password, the waiting messages go out (after the short test backoff).
        smtp.users[LOGIN] = SECRET
        assert Worker(app).run(once=True).sent == 3
        assert [m.state for m in messages(mailing.id)] == ["gesendet"] * 3


@pytest.mark.parametrize("mode, certs, ca_file, reason", [
    ("starttls", "certificates", False, "unable to get local issuer certificate"),
    ("ssl", "certificates", False, "unable to get local issuer certificate"),
    ("starttls", "self_signed", False, "self-signed certificate"),
    ("ssl", "self_signed", False, "self-signed certificate"),
    ("starttls", "wrong_name", True, "address mismatch"),
])
def test_untrusted_certificate_sends_nothing(request, sending_app, mode, certs, ca_file, reason):
    server_certs: Certificates = request.getfixturevalue(certs)
    config = {"MAIL_USE_TLS": mode == "starttls", "MAIL_USE_SSL": mode == "ssl",
              "MAIL_USERNAME": LOGIN, "MAIL_PASSWORD": SECRET}
    if ca_file:
        config["MAIL_CA_FILE"] = server_certs.ca_file
    with SmtpServer(tls=mode, certificates=server_certs, users={LOGIN: SECRET}) as smtp, \
            sending_app(smtp, **config) as app:
        mailing = make_mailing(2)
        summary = Worker(app).run(once=True)
        assert smtp.handler.received == []
        assert smtp.handler.logins == []  # the password never reached the untrusted server
        message = assert_connection_refused(
            mailing, summary, f"Das Zertifikat des SMTP-Servers 127.0.0.1:{smtp.port} konnte nicht verifiziert werden")
        assert reason in message.server_reply
        assert "MAIL_CA_FILE" in message.server_reply

        # The mailing page shows the reason next to the recipient.
        create_user("admin@ministerium.example", "Admin", "admin", STAFF_PASSWORD)
        create_user("sb@ministerium.example", "Sachbearbeitung", "sachbearbeitung", STAFF_PASSWORD)
        db.session.commit()
        client = app.test_client()
        client.login("sb@ministerium.example")
        page = client.get(f"/postausgang/{mailing.id}").get_data(as_text=True)
        assert "konnte nicht verifiziert werden" in page


def test_missing_starttls_never_falls_back_to_clear_text(sending_app):
    # This server would even take the login in clear text; the worker must not offer it one.
    with SmtpServer(users={LOGIN: SECRET}, auth_require_tls=False) as smtp, \
            sending_app(smtp, MAIL_USE_TLS=True, MAIL_USERNAME=LOGIN, MAIL_PASSWORD=SECRET) as app:
        mailing = make_mailing(2)
        summary = Worker(app).run(once=True)
        assert smtp.handler.received == []
        assert smtp.handler.logins == []
        message = assert_connection_refused(mailing, summary, f"Der SMTP-Server 127.0.0.1:{smtp.port} bietet kein STARTTLS an")
        assert "unverschlüsselt wird nicht gesendet" in message.server_reply


def test_login_configured_but_not_offered(sending_app):
    # Without TLS this server does not offer AUTH; sending without the configured login would be a surprise.
    with SmtpServer(users={LOGIN: SECRET}) as smtp, \
            sending_app(smtp, MAIL_USE_TLS=False, MAIL_USERNAME=LOGIN, MAIL_PASSWORD=SECRET) as app:
        mailing = make_mailing(1)
        summary = Worker(app).run(once=True)
        assert smtp.handler.received == []
        assert_connection_refused(mailing, summary, f"Der SMTP-Server 127.0.0.1:{smtp.port} bietet keine Anmeldung (AUTH) an")


def test_unreadable_ca_file_is_named(sending_app, certificates, tmp_path):
    missing = tmp_path / "fehlt.pem"
    with SmtpServer(tls="starttls", certificates=certificates) as smtp, \
            sending_app(smtp, MAIL_USE_TLS=True, MAIL_CA_FILE=str(missing)) as app:
        mailing = make_mailing(1)
        summary = Worker(app).run(once=True)
        assert smtp.handler.received == []
        assert_connection_refused(mailing, summary, f"MAIL_CA_FILE {missing} lässt sich nicht laden")
