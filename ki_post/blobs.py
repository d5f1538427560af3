"""Content-addressed file store in the database: identical bytes are stored once (sha256).

Used for letter template versions, archived letters and mail attachments, so several servers
share them and a backup of the database holds everything.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import LargeBinary, String, select
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
    """Store ``data`` unless the same bytes are stored already; returns the sha256 key."""
    key = sha256_of(data)
    if db.session.get(Blob, key) is None:
        db.session.add(Blob(sha256=key, size=len(data), data=data))
        db.session.flush()
    return key


def load_blob(key: str) -> bytes:
    data = db.session.scalar(select(Blob.data).where(Blob.sha256 == key))
    if data is None:
        raise LookupError(f"Datei {key} fehlt im Speicher")
    return data
