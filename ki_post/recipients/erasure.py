"""Erasure helpers every package uses, and the Verteiler's own part of it.

When a contact is anonymised or deleted (``signals.contact_erasing``), each package scrubs the copies
it keeps (outbox/erasure.py, events/erasure.py, letters/erasure.py). Copies that carry no contact id,
only an e-mail address, are found by the address in every spelling it may have been stored in.
The Verteiler's own copy outside the ``contacts`` row is a pending import file (uploaded, previewed,
not yet applied): it is discarded, otherwise applying it later would bring the person back.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..extensions import db
from .addresses import address_forms
from .importer import ImportFileError, read_table
from .models import Contact, ImportUpload
from .signals import contact_erasing

_ERASED_KEY = "erasure_committing"


def _rows_mentioning(upload: ImportUpload, forms: set[str]) -> list[dict[str, str]]:
    try:
        table = read_table(upload.data, upload.filename)
    except ImportFileError:
        return []  # unreadable: it cannot be applied either
    return [dict(zip(table.headers, row)) for _, row in table.rows
            if any((cell or "").strip().lower() in forms for cell in row)]


def pending_upload_rows(contact: Contact) -> list[dict[str, Any]]:
    """The rows about this person in import files still waiting in their preview (for the export)."""
    forms = address_forms([contact.email])
    found = []
    for upload in db.session.scalars(select(ImportUpload).order_by(ImportUpload.id)):
        rows = _rows_mentioning(upload, forms)
        if rows:
            found.append({"datei": upload.filename, "hochgeladen": upload.created_at.isoformat(), "zeilen": rows})
    return found


def discard_pending_uploads(contact: Contact) -> int:
    """Delete import files waiting for their preview to be applied that list this person."""
    forms = address_forms([contact.email])
    doomed = [upload.id for upload in db.session.scalars(select(ImportUpload)) if _rows_mentioning(upload, forms)]
    if doomed:
        db.session.execute(delete(ImportUpload).where(ImportUpload.id.in_(doomed)))
    return len(doomed)


def _on_contact_erasing(sender: object, *, contact: Contact, **_: object) -> dict[str, int]:
    db.session.info[_ERASED_KEY] = True
    return {"importdateien": discard_pending_uploads(contact)}


@sa_event.listens_for(Session, "after_commit")
def _empty_sqlite_log(session: Session) -> None:
    """SQLite keeps earlier page images in its write-ahead log until they are overwritten; after an
    erasure they are written back and the log is emptied (best effort: never more than 2 s waiting)."""
    if not session.info.pop(_ERASED_KEY, False) or db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA busy_timeout=2000")
        try:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.exec_driver_sql("PRAGMA busy_timeout=30000")


@sa_event.listens_for(Session, "after_rollback")
def _nothing_erased(session: Session) -> None:
    session.info.pop(_ERASED_KEY, None)


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contact_erasing.connect(_on_contact_erasing)


def scrub_anonymised() -> tuple[int, dict[str, int]]:
    """Scrub the copies of contacts anonymised before erasure reached every package (idempotent).

    Their copies still carry the contact id, so each package finds them as on the day of the
    anonymisation. Returns (contacts, counts per kind) and records it in the audit log.
    """
    from ..auth.services import audit

    contacts = list(db.session.scalars(select(Contact).where(Contact.anonymised_at.is_not(None)).order_by(Contact.id)))
    counts: Counter[str] = Counter()
    for contact in contacts:
        for _receiver, result in contact_erasing.send(None, contact=contact, delete=False):
            counts.update(result or {})
    db.session.flush()
    audit("kontakte.nachbereinigt", None, kontakte=len(contacts), **counts)
    return len(contacts), dict(counts)
