import statistics
import time

from ki_post.auth.models import AuditEntry, User
from ki_post.extensions import db

from tests.helpers import PASSWORD, build_config


def test_first_run_creates_admin_and_loads_demo_then_disappears(client):
    assert client.get("/").headers["Location"].endswith("/einrichtung")
    assert client.get("/anmelden").headers["Location"].endswith("/einrichtung")
    response = client.submit("/einrichtung", {
        "name": "Erika Muster", "email": "Erika@Ministerium.example",
        "password": PASSWORD, "password_repeat": PASSWORD, "load_demo": "y",
    })
    assert response.status_code == 302
    admin = db.session.scalar(db.select(User))
    assert admin.email == "erika@ministerium.example" and admin.role == "admin"
    from ki_post.recipients.models import Contact

    assert db.session.scalar(db.select(db.func.count(Contact.id))) == 53
    assert "53 aktive Ansprechpersonen" in client.get("/").get_data(as_text=True)
    assert client.get("/einrichtung").status_code == 404


def test_first_run_validation_errors_are_accessible(client):
    response = client.submit("/einrichtung", {"name": "", "email": "kaputt", "password": "kurz", "password_repeat": "anders"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'class="error-summary" role="alert"' in body
    assert 'aria-invalid="true"' in body and 'aria-describedby="email-fehler"' in body
    assert "Bitte eine gültige E-Mail-Adresse angeben." in body
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def test_wrong_password_and_unknown_user_get_the_same_answer(client, make_user):
    make_user("sachbearbeitung", "sb@ministerium.example")
    wrong = client.submit("/anmelden", {"email": "sb@ministerium.example", "password": "falsch-falsch"})
    unknown = client.submit("/anmelden", {"email": "niemand@ministerium.example", "password": "falsch-falsch"})
    assert wrong.status_code == unknown.status_code == 422
    message = "E-Mail-Adresse oder Passwort ist falsch."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_unknown_user_costs_as_much_time_as_wrong_password(app, make_user):
    from ki_post.auth.services import authenticate

    make_user("lesen", "zeit@ministerium.example")
    def timed(email):
        start = time.perf_counter()
        assert authenticate(email, "falsch-falsch") is None
        return time.perf_counter() - start
    # Interleaved, and the median of each: one try preempted by another process must not decide.
    pairs = [(timed("zeit@ministerium.example"), timed("unbekannt@ministerium.example")) for _ in range(15)]
    known, unknown = statistics.median(k for k, _ in pairs), statistics.median(u for _, u in pairs)
    # Both run one password hash check; without the dummy hash "unknown" would be ~1000x faster.
    assert unknown > known / 3


def test_login_is_throttled(tmp_path, backend):
    from tests.helpers import make_app

    app = make_app(tmp_path, backend, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    with app.app_context():
        from ki_post.auth.services import create_user

        create_user("a@ministerium.example", "A", "admin", PASSWORD)
        db.session.commit()
        client = app.test_client()
        codes = [client.submit("/anmelden", {"email": "a@ministerium.example", "password": "x"}).status_code for _ in range(4)]
        assert codes[:3] == [422, 422, 422]
        assert codes[3] == 429
        assert "Zu viele Anmeldeversuche" in client.submit("/anmelden", {"email": "a", "password": "x"}).get_data(as_text=True)
        db.engine.dispose()


def test_missing_csrf_token_gives_german_400(client, make_user):
    make_user("admin")
    response = client.post("/anmelden", data={"email": "admin@ministerium.example", "password": PASSWORD})
    assert response.status_code == 400
    assert "Sicherheitsprüfung fehlgeschlagen" in response.get_data(as_text=True)


def test_roles_read_only_and_admin_pages(client, make_user):
    make_user("admin")
    reader = make_user("lesen")
    client.login(reader.email)
    assert client.get("/").status_code == 200
    assert client.get("/verwaltung/konten").status_code == 403
    assert "Keine Berechtigung" in client.get("/verwaltung/protokoll").get_data(as_text=True)


def test_sachbearbeitung_cannot_manage_accounts(staff_client):
    assert staff_client.get("/verwaltung/konten").status_code == 403
    token = staff_client.csrf_token("/")
    assert staff_client.post("/verwaltung/konten/neu", data={"csrf_token": token}).status_code == 403


def test_admin_creates_account_and_audit_log_records_it(admin_client):
    response = admin_client.submit("/verwaltung/konten/neu", {
        "name": "Lea Leser", "email": "lea@ministerium.example", "role": "lesen",
        "password": PASSWORD, "password_repeat": PASSWORD,
    })
    assert response.status_code == 302
    created = db.session.scalar(db.select(User).where(User.email == "lea@ministerium.example"))
    assert created.role == "lesen"
    entry = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "konto.angelegt", AuditEntry.object_id == created.id))
    assert entry.user.email == "admin@ministerium.example"
    assert PASSWORD not in str(entry.details)
    log = admin_client.get("/verwaltung/protokoll").get_data(as_text=True)
    assert "Admin hat das Konto <a href=\"/verwaltung/konten/" in log and "„Lea Leser“</a> angelegt (Rolle: Lesen)." in log


def test_last_admin_cannot_demote_itself(admin_client):
    admin = db.session.scalar(db.select(User))
    response = admin_client.submit(f"/verwaltung/konten/{admin.id}", {"role": "lesen", "active": "y"})
    assert "letzte aktive Administrationskonto" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role == "admin"


def test_audit_log_is_append_only(app, make_user):
    import pytest

    make_user("admin")
    entry = db.session.scalar(db.select(AuditEntry))
    entry.action = "verfälscht"
    with pytest.raises(RuntimeError, match="kann nicht geändert"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.scalar(db.select(AuditEntry)))
    with pytest.raises(RuntimeError):
        db.session.flush()
    db.session.rollback()


def test_open_redirect_after_login_is_refused(client, make_user):
    user = make_user("lesen")
    token = client.csrf_token("/anmelden")
    response = client.post("/anmelden?next=//boese.example/", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_cli_creates_users(runner, monkeypatch):
    monkeypatch.setenv("KI_POST_NEW_PASSWORD", PASSWORD)
    result = runner.invoke(args=["users", "create", "--email", "Cli@Ministerium.example", "--role", "sachbearbeitung"])
    assert result.exit_code == 0, result.output
    assert "Konto cli@ministerium.example (sachbearbeitung) angelegt." in result.output
    again = runner.invoke(args=["users", "create", "--email", "cli@ministerium.example", "--role", "lesen"])
    assert again.exit_code == 1 and "bereits ein Konto" in again.output
    short = runner.invoke(args=["users", "create", "--email", "x@ministerium.example", "--role", "lesen", "--password", "kurz"])
    assert "mindestens 10 Zeichen" in short.output
