"""Guessable passwords are refused everywhere a password is set; failed logins are throttled per
account as well as per address, with one answer whether or not the account exists."""
from __future__ import annotations

import re

import pytest

from ki_post.auth.models import User
from ki_post.auth.services import create_user
from ki_post.errors import ValidationError
from ki_post.extensions import db
from tests.helpers import PASSWORD, make_app

WEAK = ["1234567890", "passwort1234", "qwertzuiop", "aaaaaaaaaaaa", "geheim12345", "Ministerium2024"]


@pytest.mark.parametrize("password", WEAK)
def test_guessable_passwords_are_refused_by_the_service(app, password):
    with pytest.raises(ValidationError, match="zu leicht zu erraten"):
        create_user("neu@ministerium.example", "Neu", "admin", password)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_password_made_of_the_own_name_is_refused(app):
    with pytest.raises(ValidationError, match="zu leicht zu erraten"):
        create_user("lea.leser@ministerium.example", "Lea Leser", "lesen", "lea.leser2024")
    create_user("lea.leser@ministerium.example", "Lea Leser", "lesen", PASSWORD)  # a good one passes


def test_first_run_refuses_1234567890_for_the_admin(client):
    response = client.submit("/einrichtung", {"name": "Erika Muster", "email": "erika@ministerium.example",
                                              "password": "1234567890", "password_repeat": "1234567890"})
    assert response.status_code == 200
    assert "zu leicht zu erraten" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_admin_form_refuses_weak_new_and_changed_passwords(admin_client, make_user):
    created = admin_client.submit("/verwaltung/konten/neu", {"name": "Lea", "email": "lea@ministerium.example", "role": "admin",
                                                             "password": "1234567890", "password_repeat": "1234567890"})
    assert "zu leicht zu erraten" in created.get_data(as_text=True)
    assert db.session.scalar(db.select(User).where(User.email == "lea@ministerium.example")) is None

    reader = make_user("lesen")
    old_hash = reader.password_hash
    changed = admin_client.submit(f"/verwaltung/konten/{reader.id}", {"role": "lesen", "active": "y", "password": "passwort1234"})
    assert "zu leicht zu erraten" in changed.get_data(as_text=True)
    db.session.refresh(reader)
    assert reader.password_hash == old_hash


def test_cli_refuses_weak_password(runner, monkeypatch):
    monkeypatch.setenv("KI_POST_NEW_PASSWORD", "1234567890")
    result = runner.invoke(args=["users", "create", "--email", "cli@ministerium.example", "--role", "admin"])
    assert result.exit_code == 1 and "zu leicht zu erraten" in result.output


# --- Throttling per account -------------------------------------------------------------------------

@pytest.fixture
def throttled(tmp_path, backend):
    """An app with the real limits on: 3 failures per account, a generous limit per address."""
    app = make_app(tmp_path, backend, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100 per minute",
                   LOGIN_ACCOUNT_RATE_LIMIT="3 per 15 minutes")
    with app.app_context():
        create_user("sb@ministerium.example", "Sb", "sachbearbeitung", PASSWORD)
        create_user("andere@ministerium.example", "Andere", "lesen", PASSWORD)
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def attempt(app, email: str, password: str, address: str):
    """One login from its own browser and its own IP address (the per-address limit never bites)."""
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    token = browser.csrf_token("/anmelden")
    return browser.post("/anmelden", data={"email": email, "password": password, "csrf_token": token})


def test_failed_logins_lock_the_account_even_from_changing_addresses(throttled):
    codes = [attempt(throttled, "sb@ministerium.example", "falsch-falsch-falsch", f"10.0.0.{i}").status_code for i in range(3)]
    assert codes == [422, 422, 422]
    locked = attempt(throttled, "SB@Ministerium.example ", PASSWORD, "10.0.0.99")  # right password, other spelling
    assert locked.status_code == 429
    assert "Zu viele Anmeldeversuche" in locked.get_data(as_text=True)
    assert attempt(throttled, "andere@ministerium.example", PASSWORD, "10.0.0.99").status_code == 302


def test_successful_logins_do_not_count(throttled):
    codes = [attempt(throttled, "sb@ministerium.example", PASSWORD, f"10.0.1.{i}").status_code for i in range(5)]
    assert codes == [302] * 5


def _body(response, email: str) -> str:
    """The page with the two parts that differ by nature blanked: the echoed address, the CSRF token."""
    text = response.get_data(as_text=True).replace(email, "ADRESSE")
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "TOKEN", text)


def test_known_and_unknown_addresses_get_identical_answers(throttled):
    known = [attempt(throttled, "sb@ministerium.example", "falsch-falsch-falsch", "10.0.2.1") for _ in range(4)]
    unknown = [attempt(throttled, "niemand@ministerium.example", "falsch-falsch-falsch", "10.0.2.2") for _ in range(4)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [422, 422, 422, 429]
    assert [_body(r, "sb@ministerium.example") for r in known] == [_body(r, "niemand@ministerium.example") for r in unknown]
    assert "ADRESSE" in _body(known[0], "sb@ministerium.example")
