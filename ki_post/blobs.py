"""Content-addressed file store in the database: identical bytes are stored once (sha256).

Used for letter template versions, archived letters and mail attachments, so several servers
share them and a backup of the database holds everything.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import LargeBinary, String, select
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
