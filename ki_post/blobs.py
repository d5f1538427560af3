"""Content-addressed file store in the database: identical bytes are stored once (sha256).

Used for letter template versions, archived letters and mail attachments, so several servers
share them and a backup of the database holds everything.

A column that holds blob keys either has a foreign key to ``blobs.sha256`` or says so with
``info={"blob_reference": True}`` (for tables that must not depend on this one); that is how
``discard_unreferenced`` knows, without importing the packages above, what still needs a blob.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import DDL, Column, LargeBinary, String, delete, event, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from .db_types import UTCDateTime, utcnow
from .extensions import db


class Blob(db.Model):
    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# DOCX, PDF and ZIP are compressed already: PostgreSQL's attempt to compress them again (TOAST's
# default) only cost time, two thirds of inserting a run's letters. Same in the migration.
STORAGE_EXTERNAL = "ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL"
event.listen(Blob.__table__, "after_create", DDL(STORAGE_EXTERNAL).execute_if(dialect="postgresql"))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_blob(data: bytes) -> str:
    """Store ``data`` unless the same bytes are stored already; returns the sha256 key."""
    return store_blobs([data])[0]


def store_blobs(documents: Sequence[bytes]) -> list[str]:
    """Store each of ``documents`` unless the same bytes are stored already; returns their sha256 keys.

    One query finds which keys exist and one statement inserts the rest, so a run of 2,000 letters
    costs a few round trips instead of 2,000 (a blob depends on no other row, so nothing pending in
    the session needs flushing first). Two processes may store the same new bytes at the same
    moment (two staff members mailing the same circular): the loser's insert does nothing instead of
    failing its whole transaction.
    """
    keys = [sha256_of(data) for data in documents]
    new: dict[str, bytes] = {}
    for key, data in zip(keys, documents):
        new.setdefault(key, data)
    pending = list(new.items())
    with db.session.no_autoflush:
        for start in range(0, len(pending), _BATCH):
            batch = dict(pending[start:start + _BATCH])
            existing = set(db.session.scalars(select(Blob.sha256).where(Blob.sha256.in_(list(batch)))))
            now = utcnow()
            rows = [{"sha256": key, "size": len(data), "data": data, "created_at": now}
                    for key, data in batch.items() if key not in existing]
            if rows:
                insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
                db.session.execute(insert(Blob).on_conflict_do_nothing(index_elements=[Blob.sha256]), rows)
    return keys


# Keys per query: well below SQLite's bound parameters and small enough for a quick IN lookup.
_BATCH = 500


def load_blob(key: str) -> bytes:
    data = db.session.scalar(select(Blob.data).where(Blob.sha256 == key))
    if data is None:
        raise LookupError(f"Datei {key} fehlt im Speicher")
    return data


def _reference_columns() -> list[Column]:
    columns = []
    for table in db.metadata.tables.values():
        for column in table.columns:
            if column.info.get("blob_reference") or any(fk.target_fullname == "blobs.sha256" for fk in column.foreign_keys):
                columns.append(column)
    return columns


def discard_unreferenced(keys: Iterable[str]) -> set[str]:
    """Delete those of ``keys`` that no row references any more (after erasing a person's copies);
    returns the deleted keys. Shared bytes (one circular attached to 50 invitations) stay."""
    candidates = {key for key in keys if key}
    if not candidates:
        return set()
    db.session.flush()
    still_used: set[str] = set()
    for column in _reference_columns():
        still_used.update(db.session.scalars(select(column).where(column.in_(candidates)).distinct()))
    unused = candidates - still_used
    if unused:
        db.session.execute(delete(Blob).where(Blob.sha256.in_(unused)), execution_options={"synchronize_session": False})
    return unused
