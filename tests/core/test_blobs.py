"""The blob store under concurrency (both backends)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from ki_post.blobs import Blob, load_blob, sha256_of, store_blob
from ki_post.extensions import db


def test_same_new_bytes_stored_by_two_sessions_at_once(app):
    data = b"Rundschreiben 1/2017 " * 500
    key = store_blob(data)  # first session: inserted, not yet committed
    errors: list[BaseException] = []

    def second_session() -> None:
        try:
            with app.app_context():
                assert store_blob(data) == key  # waits for the first session's row, then does nothing
                db.session.commit()
        except BaseException as error:  # noqa: BLE001 - reported to the test thread
            errors.append(error)

    other = threading.Thread(target=second_session)
    other.start()
    other.join(0.5)  # the second session is now waiting for the first one's lock
    db.session.commit()
    other.join(30)
    assert not other.is_alive()
    assert errors == []
    assert db.session.scalar(select(func.count()).select_from(Blob)) == 1
    assert load_blob(key) == data


def test_discard_unreferenced_keeps_what_anything_still_uses(app):
    """After a person's copies are gone: their own bytes go, shared and archived bytes stay."""
    from ki_post.blobs import discard_unreferenced
    from ki_post.letters import services as letters
    from ki_post.letters.models import ArchivedLetter, LetterRun
    from ki_post.outbox.models import OutboxAttachment
    from ki_post.outbox.services import Attachment, create_mailing, enqueue

    shared, archived, own = b"%PDF-1.7 Rundschreiben fuer alle", b"PK Brief wie versandt", b"PK Brief nur fuer sie"
    mailing = create_mailing("allgemein", "Mitteilung")
    for address, files in (("a@kreis.example", [shared, archived, own]), ("b@kreis.example", [shared])):
        enqueue(mailing, to_email=address, subject="Mitteilung", text="Text\n",
                attachments=[Attachment(f"datei{n}.pdf", "application/pdf", data) for n, data in enumerate(files)])
    version = letters.template_by_name("rundschreiben").latest
    db.session.add(ArchivedLetter(run=LetterRun(template_version=version, fields={}), template_version_id=version.id,
                                  filename="brief.docx", sha256=store_blob(archived)))
    db.session.flush()
    keys = [store_blob(data) for data in (shared, archived, own)]
    first = db.session.scalar(select(OutboxAttachment.message_id).order_by(OutboxAttachment.id))
    db.session.execute(OutboxAttachment.__table__.delete().where(OutboxAttachment.message_id == first))

    assert discard_unreferenced([*keys, version.blob_key]) == {keys[2]}
    db.session.commit()
    assert set(db.session.scalars(select(Blob.sha256))) == {keys[0], keys[1], version.blob_key}
    assert load_blob(keys[0]) == shared


def test_store_blobs_keeps_order_and_stores_each_content_once(app):
    from ki_post.blobs import store_blobs

    old = b"PK schon gespeichert"
    store_blob(old)
    documents = [b"PK Brief A", old, b"PK Brief B", b"PK Brief A"]
    keys = store_blobs(documents)
    db.session.commit()
    assert keys == [sha256_of(document) for document in documents]
    assert db.session.scalar(select(func.count()).select_from(Blob)) == 3
    assert [load_blob(key) for key in keys] == documents


STORAGE = text("SELECT attstorage FROM pg_attribute WHERE attrelid = 'blobs'::regclass AND attname = 'data'")


def test_postgresql_does_not_compress_blob_bytes_again(app, backend, tmp_path):
    """DOCX/PDF are compressed already: TOAST stores them out of line as they are (model and migration)."""
    if backend != "postgresql":
        pytest.skip("Speicherart der Spalte gibt es nur in PostgreSQL")
    from flask_migrate import upgrade

    from ki_post import create_app
    from tests import helpers

    assert db.session.scalar(STORAGE) == "e"  # the schema the models create
    db.session.remove()
    migrated = create_app(helpers.build_config(tmp_path, backend), instance_path=str(tmp_path / "instance"))
    with migrated.app_context():
        helpers.empty_postgres_schema(migrated)
        helpers._postgres_ready = False  # the next test recreates the test schema
        upgrade()
        assert db.session.scalar(STORAGE) == "e"  # the schema the migrations create
        db.session.remove()
        db.engine.dispose()
