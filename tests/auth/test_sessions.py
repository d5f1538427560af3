"""Sessions: every role can log out, a logout sticks (also for a copied cookie), SESSION_MINUTES is an
idle timeout that each request restarts, SESSION_MAX_HOURS caps a session, a new password or a
deactivated account ends the other sessions, and the database never holds a usable session secret."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from ki_post.auth.models import User, UserSession
from ki_post.auth.sessions import SESSION_KEY
from ki_post.db_types import utcnow
from ki_post.extensions import db
from tests.helpers import PASSWORD

NEW_PASSWORD = "Mosel-Fähre-Karussell-42"


def copy_of(app, client):
    """A second browser holding a copy of ``client``'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def cookie_secret(app, client) -> str:
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.loads(client.get_cookie("session").value)[SESSION_KEY]


def signed_in(client) -> bool:
    response = client.get("/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def only_record(email: str) -> UserSession:
    db.session.expire_all()
    [record] = db.session.scalars(db.select(UserSession).join(User).where(User.email == email)).all()
    return record


def shift(record: UserSession, *, created: timedelta | None = None, seen: timedelta | None = None) -> None:
    now = utcnow()
    if created is not None:
        record.created_at = now - created
    if seen is not None:
        record.last_seen_at = now - seen
    db.session.commit()


@pytest.mark.parametrize("role", ["lesen", "sachbearbeitung", "admin"])
def test_every_role_can_log_out_and_the_logout_sticks(app, client, make_user, role):
    make_user("admin", "chef@ministerium.example")
    user = make_user(role)
    client.login(user.email)
    copied = copy_of(app, client)
    assert signed_in(copied)  # the copy works while the session lives: copying is what an attacker does

    response = client.submit("/abmelden", form_url="/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/anmelden")
    assert "Sie sind abgemeldet." in client.get("/anmelden").get_data(as_text=True)
    assert not signed_in(client)
    assert not signed_in(copied)
    assert db.session.scalar(db.select(db.func.count(UserSession.id))) == 0


def test_database_holds_only_a_hash_of_the_session_secret(app, client, make_user):
    user = make_user("lesen")
    client.login(user.email)
    secret = cookie_secret(app, client)
    assert len(secret) >= 40
    record = only_record(user.email)
    assert record.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(value) for row in db.session.execute(db.text("SELECT * FROM user_sessions")) for value in row)
    assert secret not in stored


def test_a_signed_user_id_without_a_live_record_is_no_login(app, client, make_user):
    """Before the records, the signed user id alone was a login for as long as the cookie lived."""
    user = make_user("admin")
    client.login(user.email)
    forged = app.test_client()
    serializer = app.session_interface.get_signing_serializer(app)
    content = serializer.loads(client.get_cookie("session").value)
    content[SESSION_KEY] = "erfunden"
    forged.set_cookie("session", serializer.dumps(content))
    assert not signed_in(forged)
    assert signed_in(client)


def test_session_minutes_is_an_idle_timeout_that_every_request_restarts(app, client, make_user):
    minutes = app.config["SESSION_MINUTES"]
    user = make_user("lesen")
    client.login(user.email)

    # Active for longer than SESSION_MINUTES in all, never idle that long: still signed in.
    shift(only_record(user.email), created=timedelta(minutes=minutes + 60), seen=timedelta(minutes=minutes - 1))
    assert signed_in(client)
    touched = only_record(user.email)
    assert utcnow() - touched.last_seen_at < timedelta(seconds=30)  # the request moved the deadline

    shift(touched, seen=timedelta(minutes=minutes - 1))
    assert signed_in(client)

    shift(only_record(user.email), seen=timedelta(minutes=minutes, seconds=30))
    response = client.get("/verteiler/")
    assert response.status_code == 302 and "/anmelden" in response.headers["Location"]
    assert "Ihre Sitzung ist abgelaufen" in client.get("/anmelden").get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(UserSession.id))) == 0
    assert not signed_in(client)


def test_session_max_hours_ends_even_an_active_session(app, client, make_user):
    user = make_user("lesen")
    client.login(user.email)
    shift(only_record(user.email), created=timedelta(hours=app.config["SESSION_MAX_HOURS"], minutes=1), seen=timedelta(0))
    assert not signed_in(client)


def test_new_password_ends_the_users_other_sessions(app, make_user):
    make_user("admin")
    reader = make_user("lesen")
    admin_here, admin_there = app.test_client(), app.test_client()
    reader_a, reader_b = app.test_client(), app.test_client()
    for browser, email in ((admin_here, "admin@ministerium.example"), (admin_there, "admin@ministerium.example"),
                           (reader_a, reader.email), (reader_b, reader.email)):
        browser.login(email)

    response = admin_here.submit(f"/verwaltung/konten/{reader.id}", {"role": "lesen", "active": "y", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert not signed_in(reader_a) and not signed_in(reader_b)
    assert signed_in(admin_there)  # someone else's password: the admin's own sessions stay

    admin = db.session.scalar(db.select(User).where(User.email == "admin@ministerium.example"))
    response = admin_here.submit(f"/verwaltung/konten/{admin.id}", {"role": "admin", "active": "y", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert signed_in(admin_here)  # the browser that changed it stays signed in
    assert not signed_in(admin_there)
    reader_a.login(reader.email, NEW_PASSWORD)
    assert signed_in(reader_a)


def test_deactivated_account_is_signed_out_at_once(app, admin_client, make_user):
    reader = make_user("lesen")
    browser = app.test_client()
    browser.login(reader.email)
    assert signed_in(browser)
    admin_client.submit(f"/verwaltung/konten/{reader.id}", {"role": "lesen"})  # "active" unticked
    assert not signed_in(browser)
    token = browser.csrf_token("/anmelden")
    refused = browser.post("/anmelden", data={"email": reader.email, "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 422
