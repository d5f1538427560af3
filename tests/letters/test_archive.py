"""Archiving a run in batches (both databases): the same rows and bytes as one letter at a time,
identical bytes stored once, and a number of queries that does not grow with the letters."""
from __future__ import annotations

import io
import zipfile

from sqlalchemy import event, func, select

from ki_post.blobs import Blob, load_blob, sha256_of
from ki_post.extensions import db
from ki_post.letters import services
from ki_post.letters.models import ArchivedLetter, LetterRun
from ki_post.recipients.services import resolve_recipients, verteiler_by_name

FIELDS = {"datum": "2016-12-28", "betreff": "Ausbau der Kommunalen Integrationszentren", "aktenzeichen": "9506"}


def shipped():
    return services.template_by_name("rundschreiben").latest


def everyone():
    return resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)


def test_batches_archive_every_letter_and_identical_bytes_once(app, demo, monkeypatch):
    monkeypatch.setattr(services, "ARCHIVE_BATCH", 7)  # batch boundaries inside the run, a short last batch
    contacts = everyone()[:10]
    contacts = [*contacts, contacts[0], contacts[3]]  # two letters exactly like two others
    target = io.BytesIO()
    result = services.produce(shipped(), contacts, FIELDS, "zip", target, user="test")
    db.session.commit()
    archive = zipfile.ZipFile(io.BytesIO(target.getvalue()))
    letters = db.session.scalars(select(ArchivedLetter).where(ArchivedLetter.run_id == result.run.id)
                                 .order_by(ArchivedLetter.id)).all()
    assert [letter.filename for letter in letters] == archive.namelist()
    assert [letter.contact_id for letter in letters] == [contact.id for contact in contacts]
    for letter in letters:
        assert letter.sha256 == sha256_of(archive.read(letter.filename)) and load_blob(letter.sha256) == archive.read(letter.filename)
        assert letter.created_at is not None and letter.addressee_erased_at is None
    assert len({letter.sha256 for letter in letters}) == 10
    blobs = db.session.scalar(select(func.count()).select_from(Blob).where(Blob.sha256.in_([letter.sha256 for letter in letters])))
    assert blobs == 10
    assert len(result.run.letters) == 12  # the run's collection shows the rows inserted in bulk

    # The same run again: the same bytes, nothing stored twice.
    before = db.session.scalar(select(func.count()).select_from(Blob))
    services.produce(shipped(), contacts, FIELDS, "zip", io.BytesIO(), user="test")
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Blob)) == before
    assert db.session.scalar(select(func.count()).select_from(ArchivedLetter)) == 24
    assert db.session.scalar(select(func.count()).select_from(LetterRun)) == 2


def test_archiving_costs_a_few_queries_not_one_per_letter(app, demo):
    contacts = everyone()
    shipped()  # registers the shipped template outside the count
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        services.produce(shipped(), contacts, FIELDS, "zip", io.BytesIO(), user="test")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(contacts) == 53
    assert len(statements) <= 15, "\n".join(statements)
