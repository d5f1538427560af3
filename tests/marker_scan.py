"""Find marker strings anywhere KI-Post keeps data: every column of every table, every blob, files.

Independent of the product's code: the tables come from reflecting the live database (not from the
models), and each value is also read the ways it may have been encoded on its way in: HTML and XML
entities, tags between Word runs, iCalendar line folding and backslash escapes, JSON's \\uXXXX,
ZIP members (DOCX), MIME encodings of .eml files. Matching ignores case (addresses are stored lower-case).
"""
from __future__ import annotations

import email
import html
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path

from sqlalchemy import MetaData, select

from ki_post.extensions import db

_TAG = re.compile(r"<[^>]+>")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_ICS_ESCAPE = re.compile(r"\\([\\;,nN])")


@dataclass(frozen=True)
class Hit:
    table: str  # table name, "blob" or "file"
    where: str  # column and primary key, sha256 (and ZIP member), or path
    marker: str


def readings(text: str) -> Iterator[str]:
    """The text as stored and as a reader would see it after each encoding KI-Post applies."""
    yield text
    yield html.unescape(text)
    yield html.unescape(_TAG.sub("", text))  # Word splits text into runs: <w:t>Zwir</w:t>…<w:t>belmeyer</w:t>
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    yield _ICS_ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), unfolded)
    yield _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _texts_of_bytes(data: bytes, *, mail: bool = False) -> Iterator[tuple[str, str]]:
    yield "", data.decode("utf-8", "replace")
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                yield name, archive.read(name).decode("utf-8", "replace")
    if mail:  # headers in RFC 2047, bodies in quoted-printable or base64
        message = email.message_from_bytes(data, policy=policy.default)
        yield "headers", "\n".join(f"{name}: {value}" for name, value in message.items())
        for number, part in enumerate(message.walk()):
            if not part.is_multipart():
                yield from ((f"part{number}/{name}" if name else f"part{number}", text)
                            for name, text in _texts_of_bytes(part.get_payload(decode=True) or b""))


def _texts_of(value: object) -> Iterator[tuple[str, str]]:
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        yield from _texts_of_bytes(value)
    elif isinstance(value, (dict, list)):
        yield "", json.dumps(value, ensure_ascii=False)
    else:
        yield "", str(value)


def _match(text: str, markers: Iterable[str]) -> set[str]:
    seen = [reading.casefold() for reading in readings(text)]
    return {marker for marker in markers if any(marker.casefold() in reading for reading in seen)}


def scan_database(markers: Iterable[str]) -> list[Hit]:
    """Every column of every table of the live database (reflected, so no table can be forgotten)."""
    markers = list(markers)
    db.session.commit()
    metadata = MetaData()
    metadata.reflect(bind=db.engine)
    hits: list[Hit] = []
    with db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            key_columns = list(table.primary_key.columns) or list(table.columns)[:1]
            for row in connection.execute(select(table)).mappings():
                key = ",".join(str(row[column.name]) for column in key_columns)
                for column in table.columns:
                    for member, text in _texts_of(row[column.name]):
                        for marker in _match(text, markers):
                            where = f"{column.name}#{key}" + (f"/{member}" if member else "")
                            hits.append(Hit(table.name, where, marker))
    return hits


def scan_files(folders: Iterable[Path], markers: Iterable[str], *, skip_suffixes: tuple[str, ...] = ()) -> list[Hit]:
    markers = list(markers)
    hits = []
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(skip_suffixes)):
            for member, text in _texts_of_bytes(path.read_bytes(), mail=path.suffix == ".eml"):
                hits += [Hit("file", f"{path}" + (f"/{member}" if member else ""), marker) for marker in _match(text, markers)]
    return hits


def docx_text(data: bytes) -> str:
    """All text of a DOCX (python-docx reads it independently of the product's engine)."""
    from docx import Document

    document = Document(io.BytesIO(data))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for section in document.sections:
        parts += [paragraph.text for paragraph in section.header.paragraphs + section.footer.paragraphs]
    for table in document.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    return "\n".join(parts)
