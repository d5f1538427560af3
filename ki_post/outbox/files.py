"""The file transport's folder: .eml files written instead of sending when no SMTP server is set
(``OUTBOX_DIR``), listed and read back by the outbox pages."""
from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app

from ..errors import NotFound

_EML_NAME = re.compile(r"^[0-9A-Za-z._-]+\.eml$")


def outbox_dir() -> Path:
    return Path(current_app.config["OUTBOX_DIR"])


def eml_files() -> list[dict[str, Any]]:
    folder = outbox_dir()
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        stat = path.stat()
        files.append({"name": path.name, "size": stat.st_size,
                      "modified": datetime.fromtimestamp(stat.st_mtime).astimezone()})
    return files


def read_eml(name: str) -> bytes:
    if not _EML_NAME.match(name):
        raise NotFound("Diese Datei gibt es nicht.")
    path = outbox_dir() / name
    if not path.is_file():
        raise NotFound("Diese Datei gibt es nicht.")
    return path.read_bytes()


def write_eml(mailing_id: int, message_id: int, data: bytes) -> str:
    folder = outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{mailing_id:05d}-{message_id:07d}.eml"
    tmp = folder / (name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, folder / name)
    return name
