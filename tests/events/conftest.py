from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from ki_post.events import services
from ki_post.extensions import db
from ki_post.recipients.models import Contact, Organisation
from tests.imap_server import DovecotServer

FIXTURE_UID = "4b1f7d2e-3c6a-4e8b-9f0a-2d5c7e9a1b3c"


def future(days: int, hour: int = 11) -> str:
    day = datetime.now(timezone.utc) + timedelta(days=days)
    return day.strftime(f"%Y-%m-%dT{hour:02d}:00")


@pytest.fixture
def make_event(app):
    def make(**overrides):
        data = dict(title="Feierstunde 5 Jahre Teilhabe- und Integrationsgesetz", start=future(30, 11), end=future(30, 13),
                    place_name="Ministerium", place_address="Fürstenwall 25, 40219 Düsseldorf", room="Raum 101",
                    companions_allowed=2)
        data.update(overrides)
        event = services.create_event(services.EventData(**data))
        db.session.commit()
        return event

    return make


@pytest.fixture
def make_contacts(app):
    def make(n: int, prefix: str = "person"):
        org = Organisation(name=f"Stadt {prefix}", kind="kreisfreie_stadt")
        db.session.add(org)
        contacts = []
        for k in range(n):
            contact = Contact(anrede="frau", first_name="Erika", last_name=f"{prefix.capitalize()}{k}",
                              email=f"{prefix}{k}@stadt.example", organisation=org)
            db.session.add(contact)
            contacts.append(contact)
        db.session.flush()
        return contacts

    return make


@pytest.fixture
def published(make_event, make_contacts):
    """A published event with three invitations (no mails sent)."""
    def make(n: int = 3, **overrides):
        event = make_event(**overrides)
        services.publish_event(event)
        services.add_invitations(event, make_contacts(n))
        db.session.commit()
        return event

    return make


@pytest.fixture(scope="session")
def _dovecot(tmp_path_factory):
    with DovecotServer(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def imap_server(_dovecot):
    """A real Dovecot IMAP server on 127.0.0.1 (plain IMAP, see tests/imap_server.py) with an empty mailbox;
    skips without Dovecot."""
    _dovecot.reset()
    return _dovecot


def answer_at_once(app, tokens: list[str], form: dict[str, str]) -> list[int]:
    """Every token's answer page is loaded, then all post ``form`` at the same moment (one thread each,
    a barrier); the status codes of the posts, in the order they finished."""
    db.session.remove()
    barrier = threading.Barrier(len(tokens))
    results: list[int] = []

    def press(token: str) -> None:
        with app.app_context():
            client = app.test_client()
            csrf = client.csrf_token(f"/antwort/{token}")
            db.session.remove()  # more threads than pooled connections: none held while waiting
            barrier.wait(timeout=120)
            results.append(client.post(f"/antwort/{token}", data={**form, "csrf_token": csrf}).status_code)
            db.session.remove()

    threads = [threading.Thread(target=press, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
