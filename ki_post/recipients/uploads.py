"""An import file between its preview and "Übernehmen": kept for the user who uploaded it, for a day."""
from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta

from sqlalchemy import delete, select

from ..db_types import utcnow
from ..errors import NotFound
from ..extensions import db
from .importer import ImportResult, apply_import, preview_import
from .models import ImportUpload

UPLOAD_MAX_AGE_HOURS = 24


def store_upload(data: bytes, filename: str, user_id: int | None, limit: int) -> tuple[str, ImportResult]:
    """Check the file (ImportFileError when unreadable), keep it for the preview; returns (token, preview)."""
    preview = preview_import(data, filename, limit=limit)
    db.session.execute(delete(ImportUpload).where(ImportUpload.created_at < utcnow() - timedelta(hours=UPLOAD_MAX_AGE_HOURS)))
    token = secrets.token_urlsafe(32)
    db.session.add(ImportUpload(token=token, filename=(filename or "")[-255:], data=data, user_id=user_id))
    db.session.flush()
    return token, preview


def load_upload(token: str, user_id: int | None) -> ImportUpload:
    upload = db.session.scalar(select(ImportUpload).where(ImportUpload.token == token))
    if upload is None or upload.user_id != user_id:
        raise NotFound("Diese hochgeladene Datei gibt es nicht mehr. Bitte laden Sie sie erneut hoch.")
    return upload


def apply_upload(upload: ImportUpload, mapping: Mapping[str, str], list_name: str = "",
                 confirmed_duplicates: Iterable[int] = ()) -> ImportResult:
    result = apply_import(upload.data, upload.filename, dict(mapping), list_name=list_name,
                          confirmed_duplicates=confirmed_duplicates)
    db.session.delete(upload)
    db.session.flush()
    return result


def discard_upload(upload: ImportUpload) -> None:
    db.session.delete(upload)
    db.session.flush()
