"""The same file imported by several requests at the same moment: every request gets a German answer,
none a 500, and the Verteiler holds each Kommune and person once (issue 16: 3 of 4 answered 500)."""
from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from ki_post.extensions import db
from ki_post.recipients.importer import CONCURRENT_CHANGE
from ki_post.recipients.models import Contact, Organisation, Verteiler
from tests.helpers import Client
from tests.recipients.files import ROWS, xlsx_data

PARALLEL = 4


def upload(client: Client, data: bytes) -> str:
    response = client.submit("/verteiler/import", {"file": (io.BytesIO(data), "liste.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def test_parallel_imports_of_one_file(app, make_user):
    make_user("admin", "admin@ministerium.example")
    email = make_user("sachbearbeitung").email
    data = xlsx_data()
    db.session.remove()

    prepared: list[tuple[Client, str, str]] = []
    for _ in range(PARALLEL):
        client = app.test_client()
        client.login(email)
        preview = upload(client, data)
        prepared.append((client, preview, client.csrf_token(preview)))
    db.session.remove()

    barrier = threading.Barrier(PARALLEL)
    answers: list[tuple[int, str]] = []

    def apply(client: Client, preview: str, token: str) -> None:
        with app.app_context():
            barrier.wait()
            response = client.post(preview, data={"csrf_token": token, "action": "anwenden", "list_name": "Gleichzeitig"})
            follow = client.get(response.headers.get("Location", "/verteiler/")).get_data(as_text=True)
            answers.append((response.status_code, follow))
            db.session.remove()

    threads = [threading.Thread(target=apply, args=args) for args in prepared]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _ in answers] == [302] * PARALLEL
    assert all("Import abgeschlossen" in page for _, page in answers)
    assert sum("3 neu" in page for _, page in answers) == 1  # one request created them, the others found them
    assert db.session.scalar(select(func.count(Organisation.id))) == len(ROWS)
    assert db.session.scalar(select(func.count(Contact.id))) == len(ROWS)
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == "Gleichzeitig"))
    assert len(verteiler.members) == len(ROWS)


def test_a_kommune_saved_elsewhere_meanwhile_gives_a_german_message_and_a_retry_works(app, backend, staff_client):
    """A form saving the same Kommune between the import's comparison and its writing (PostgreSQL:
    forms do not wait for the import lock) ends in a German message, nothing half-imported."""
    if backend != "postgresql":
        pytest.skip("SQLite: the import holds the database's write lock, no other writer gets in between")
    preview = upload(staff_client, xlsx_data())
    token = staff_client.csrf_token(preview)
    fired: list[bool] = []

    def meanwhile(session, context, instances) -> None:
        if not fired and any(isinstance(item, Organisation) for item in session.new):
            fired.append(True)
            with db.engine.begin() as other:  # another request's transaction, committed first
                other.execute(insert(Organisation).values(name="Kreis Mettmann", kind="kreis"))

    event.listen(Session, "before_flush", meanwhile)
    try:
        response = staff_client.post(preview, data={"csrf_token": token, "action": "anwenden"})
    finally:
        event.remove(Session, "before_flush", meanwhile)
    assert fired and response.status_code == 302 and response.headers["Location"] == preview
    assert CONCURRENT_CHANGE in staff_client.get(preview).get_data(as_text=True)
    assert db.session.scalar(select(func.count(Contact.id))) == 0

    again = staff_client.post(preview, data={"csrf_token": token, "action": "anwenden"})
    assert again.status_code == 302
    assert db.session.scalar(select(func.count(Contact.id))) == len(ROWS)
    assert db.session.scalar(select(func.count(Organisation.id))) == len(ROWS)
