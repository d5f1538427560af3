"""Every route × anonymous and the three roles, generated from ``app.url_map`` (a new route is
walked without touching this file):

- the access rule holds: anonymous → login, a role below the route's → 403, the others get through;
- every POST without a CSRF token is refused with a German 400 and changes nothing;
- GET changes nothing in the database;
- every answer except the static assets says ``Cache-Control: no-store`` (personal data in pages,
  previews, exports and downloads must not stay in a browser or proxy cache).

The expected role of a route is the one its view declares (``requires_role``), else the house rule
(reading: ``lesen``, changing: ``sachbearbeitung``); the sensitive routes are pinned below, so a
loosened decorator fails here.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.models import metadata
from tests.helpers import Client

ROLES = ("lesen", "sachbearbeitung", "admin")
RANK = {"lesen": 0, "sachbearbeitung": 1, "admin": 2}
PINNED = {
    ("auth.users", "GET"): "admin",
    ("auth.user_new", "GET"): "admin",
    ("auth.user_new", "POST"): "admin",
    ("auth.user_edit", "GET"): "admin",
    ("auth.user_edit", "POST"): "admin",
    ("auth.audit_log", "GET"): "admin",
    ("admin.settings_page", "GET"): "admin",
    ("admin.settings_page", "POST"): "admin",
    ("admin.check_smtp", "POST"): "admin",
    ("admin.check_imap", "POST"): "admin",
    ("auth.logout", "POST"): "lesen",
    ("outbox.message_eml", "GET"): "sachbearbeitung",
    # Letter jobs (Briefe erstellen, Aussendung vorbereiten) are for those who may start them.
    ("letters.job_page", "GET"): "sachbearbeitung",
    ("letters.job_status", "GET"): "sachbearbeitung",
    ("letters.job_file", "GET"): "sachbearbeitung",
    ("recipients.export", "POST"): "sachbearbeitung",
    ("recipients.contact_data_export", "POST"): "sachbearbeitung",
    ("recipients.import_upload", "POST"): "sachbearbeitung",
    ("recipients.import_apply", "POST"): "sachbearbeitung",
    ("selfservice.review", "GET"): "lesen",
    ("selfservice.accept", "POST"): "sachbearbeitung",
    ("selfservice.reject", "POST"): "sachbearbeitung",
    ("recipients.contact_merge", "GET"): "sachbearbeitung",
    ("recipients.contact_merge", "POST"): "sachbearbeitung",
    ("letters.preview_page", "GET"): "lesen",  # a reader may look at the preview's page images
    ("events.upload_replies", "POST"): "sachbearbeitung",
    # Printing badges, table cards and address labels is reading: lesen may download them.
    ("events.badges", "GET"): "lesen",
    ("letters.address_labels_pdf", "GET"): "lesen",
    ("events.copy", "GET"): "sachbearbeitung",  # a form page: for those who may send it
    ("events.copy", "POST"): "sachbearbeitung",
    ("events.automatic_reminders", "POST"): "sachbearbeitung",
    # Akten-Export: personal data in bulk (addresses, who was sent what, answers), not for read-only accounts.
    ("records.mailing_export", "GET"): "sachbearbeitung",
    ("records.run_export", "GET"): "sachbearbeitung",
    ("records.event_export", "GET"): "sachbearbeitung",
    # Einlass: everybody logged in may look (also through a QR code); ticking off is for sachbearbeitung.
    ("events.checkin", "GET"): "lesen",
    ("events.checkin_code", "GET"): "lesen",
    ("events.checkin_invitation", "POST"): "sachbearbeitung",
    ("events.checkin_invitation_undo", "POST"): "sachbearbeitung",
    ("events.checkin_walk_in", "POST"): "sachbearbeitung",
    ("events.checkin_walk_in_mark", "POST"): "sachbearbeitung",
    ("events.checkin_walk_in_undo", "POST"): "sachbearbeitung",
    ("events.checkin_walk_in_remove", "POST"): "sachbearbeitung",
    ("events.followup_form", "GET"): "sachbearbeitung",
    ("events.followup", "POST"): "sachbearbeitung",
    # An event's own questions: defining them is for those who may change the event.
    ("events.questions_page", "GET"): "sachbearbeitung",
    ("events.question_new", "POST"): "sachbearbeitung",
    ("events.question_edit", "GET"): "sachbearbeitung",
    ("events.question_save", "POST"): "sachbearbeitung",
    ("events.question_delete", "POST"): "sachbearbeitung",
    ("events.question_move", "POST"): "sachbearbeitung",
}
SAMPLE_VALUES = {"token": "x" * 43, "name": "nachricht.eml", "fmt": "csv", "filename": "ki-post.css"}
MISSING_ID = 999_999
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
CSRF_MESSAGE = "Sicherheitsprüfung fehlgeschlagen"


def is_public(app, endpoint: str) -> bool:
    return endpoint == "static" or bool(getattr(app.view_functions[endpoint], "_public", False))


def expected_role(app, endpoint: str, method: str) -> str:
    if (endpoint, method) in PINNED:
        return PINNED[(endpoint, method)]
    declared = getattr(app.view_functions[endpoint], "_min_role", None)
    return declared or ("lesen" if method == "GET" else "sachbearbeitung")


def routes(app, ident: int) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule and method, ids replaced by ``ident``."""
    samples = {**SAMPLE_VALUES, **app.config.get("WALK_SAMPLES", {})}
    found = []
    for rule in app.url_map.iter_rules():
        url = rule.rule
        for converter, name in ARGUMENT.findall(rule.rule):
            value = str(ident) if converter == "int" else samples.get(name, "x")
            url = ARGUMENT.sub(value, url, count=1)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    assert len(found) > 60
    return found


def snapshot() -> dict[str, list[str]]:
    """Every row of every table (session records aside: a request may note the time of activity)."""
    db.session.expire_all()
    state = {}
    for table in metadata.sorted_tables:
        if table.name == "user_sessions":
            continue
        rows = db.session.execute(select(table)).all()
        state[table.name] = sorted(repr(tuple(row)) for row in rows)
    db.session.rollback()
    return state


def assert_no_store(endpoint: str, response) -> None:
    cache = response.headers.get("Cache-Control", "")
    if endpoint == "static":
        assert "no-store" not in cache
    else:
        assert "no-store" in cache, (endpoint, response.status_code, cache)


@pytest.fixture
def walk_app(app, make_user, demo, tmp_path):
    """Demo data with something behind every id 1: the event invited (mailing, messages, answer
    pages), letters rendered (archive), the messages written as .eml files."""
    from ki_post.demo import load_demo_data
    from ki_post.events.models import Invitation
    from ki_post.outbox.models import OutboxMessage

    load_demo_data()
    db.session.commit()
    for role in ROLES:
        make_user(role)
    app.config["MAIL_RATE_PER_MINUTE"] = 0  # the .eml files at once, not 30 a minute
    runner = app.test_cli_runner()
    for command in (["events", "invite", "1", "--list", "Alle KI-Dezernate"],
                    ["letters", "render", "--template", "rundschreiben", "--out", str(tmp_path / "briefe.zip")],
                    ["outbox", "work", "--once"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 0, (command, result.output)
    db.session.remove()
    assert db.session.get(OutboxMessage, 1) is not None
    files = sorted(path.name for path in (tmp_path / "postausgang").glob("*.eml"))
    from ki_post.recipients.models import Contact, ContactProposal
    from ki_post.recipients.selfservice import link_token, propose_correction

    contact = db.session.scalar(select(Contact).order_by(Contact.id).limit(1))
    self_service_link = link_token(contact)  # a real "Angaben prüfen" page
    propose_correction(contact, {"phone": "0211 1234"})  # a proposal in the review queue
    db.session.commit()
    assert db.session.get(ContactProposal, 1) is not None
    app.config["WALK_SAMPLES"] = {
        "link": self_service_link,
        "token": db.session.scalar(select(Invitation.token).order_by(Invitation.id).limit(1)),  # a real answer page
        "name": files[0],  # a real .eml file
        "key": _preview_key(),  # a letter in the preview cache: its page image is really drawn
    }
    return app


def _preview_key() -> str:
    from ki_post.letters import pages, services
    from ki_post.recipients.models import Contact

    if not pages.available():
        return "x"  # without LibreOffice the route answers 404 for every key, which the walk accepts too
    version = services.version_from_choice("shipped:rundschreiben")
    contacts = list(db.session.scalars(select(Contact).order_by(Contact.id).limit(1)))
    _, document = services.preview_document(version, contacts, services.default_fields(), 0)
    db.session.rollback()
    return pages.prepare(document).key


def browser(app, role: str | None) -> Client:
    client = app.test_client()
    if role:
        client.login(f"{role}@ministerium.example")
    return client


def test_every_route_for_anonymous_and_every_role(walk_app):
    app = walk_app
    gets = [r for r in routes(app, 1) if r[1] == "GET"]
    posts = [r for r in routes(app, MISSING_ID) if r[1] != "GET"]
    clients = {role: browser(app, role) for role in (None, *ROLES)}  # logins write; the walk must not
    before = snapshot()
    problems = []

    for role, client in clients.items():
        for endpoint, method, url in gets:
            response = client.get(url)
            assert_no_store(endpoint, response)
            problems += check_access(app, role, endpoint, method, url, response)
    assert snapshot() == before, "Ein GET hat die Datenbank verändert."

    for role, client in clients.items():
        token = client.csrf_token("/anmelden" if role is None else "/")
        for endpoint, method, url in posts:
            if endpoint == "auth.logout":
                continue  # ends the walk's own session: checked at the end
            response = client.open(url, method=method, data={"csrf_token": token})
            assert_no_store(endpoint, response)
            problems += check_access(app, role, endpoint, method, url, response)
        if role is not None:
            response = client.post("/abmelden", data={"csrf_token": token})
            assert response.status_code == 302, (role, response.status_code)  # 403 before: lesen could not
            assert client.get("/").status_code == 302
    assert not problems, "\n".join(problems)


def check_access(app, role: str | None, endpoint: str, method: str, url: str, response) -> list[str]:
    where = f"{method} {url} als {role or 'anonym'}: {response.status_code}"
    to_login = response.status_code == 302 and "/anmelden" in response.headers.get("Location", "")
    if response.status_code >= 500:
        return [f"{where} (Serverfehler)"]
    if is_public(app, endpoint):
        return []
    if role is None:
        return [] if to_login else [f"{where}, erwartet: Weiterleitung zur Anmeldung"]
    needed = expected_role(app, endpoint, method)
    if RANK[role] < RANK[needed]:
        return [] if response.status_code == 403 else [f"{where}, erwartet: 403 (braucht {needed})"]
    if response.status_code == 403 or to_login:
        return [f"{where}, erwartet: Zugang (braucht {needed})"]
    return []


def test_every_post_without_csrf_token_is_refused_and_changes_nothing(walk_app):
    app = walk_app
    posts = [r for r in routes(app, 1) if r[1] != "GET"]
    anonymous, admin = browser(app, None), browser(app, "admin")
    before = snapshot()
    for endpoint, method, url in posts:
        for client in (anonymous, admin):
            response = client.open(url, method=method, data={"confirm": "ja", "action": "loeschen"})
            assert response.status_code == 400, (method, url, response.status_code)
            assert CSRF_MESSAGE in response.get_data(as_text=True)
            assert_no_store(endpoint, response)
    assert snapshot() == before
    assert admin.get("/").status_code == 200  # the admin was never logged out by a token-less POST
