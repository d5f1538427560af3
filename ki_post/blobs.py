"""Content-addressed file store in the database: identical bytes are stored once (sha256).

Used for letter template versions, archived letters and mail attachments, so several servers
share them and a backup of the database holds everything.

A column that holds blob keys either has a foreign key to ``blobs.sha256`` or says so with
``info={"blob_reference": True}`` (for tables that must not depend on this one); that is how
``discard_unreferenced`` knows, without importing the packages above, what still needs a blob.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, LargeBinary, String, delete, select
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


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_blob(data: bytes) -> str:
    """Store ``data`` unless the same bytes are stored already; returns the sha256 key.

    Two processes may store the same new bytes at the same moment (two staff members mailing the
    same circular): the loser's insert does nothing instead of failing its whole transaction.
    """
    key = sha256_of(data)
    if db.session.get(Blob, key) is None:
        insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        db.session.execute(insert(Blob).values(sha256=key, size=len(data), data=data, created_at=utcnow())
                           .on_conflict_do_nothing(index_elements=[Blob.sha256]))
    return key


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
