"""The compose page's preview as page images: DOCX → PDF (LibreOffice) → PNG (poppler's pdftoppm).

Everything is cached in the instance folder under the sha256 of the rendered DOCX, so the same letter
is never converted twice (the same recipient, fields and template give the same bytes). Nothing here
touches the database: looking at a preview changes nothing. The work is bounded: one LibreOffice
conversion at a time per process and a timeout; whoever cannot get a turn gets the text preview.
A missing binary degrades to the text preview as well, never to an error page.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from ..errors import KiPostError, NotFound
from . import pdf

DPI = 100
KEY = re.compile(r"[0-9a-f]{64}")
# Only one conversion per process: a burst of previews queues here instead of starting LibreOffice n times.
_convert_lock = threading.Lock()

MISSING_HINT = ("Die Seitenansicht braucht LibreOffice und „pdftoppm“ (Debian: apt-get install libreoffice-writer-nogui "
                "poppler-utils), die auf diesem Server fehlen. Hier der Text des Briefs.")
BUSY_HINT = "Die Seitenansicht ist gerade ausgelastet. Hier der Text des Briefs; bitte gleich noch einmal „Vorschau“ wählen."


@dataclass(frozen=True)
class PagedPreview:
    key: str  # sha256 of the DOCX
    pages: int


class PreviewUnavailable(KiPostError):
    """No page images now (binary missing, busy, conversion failed): the caller shows the text instead."""


def _pdftoppm() -> str | None:
    return shutil.which(current_app.config.get("PDFTOPPM_PATH") or "pdftoppm")


def available() -> bool:
    return pdf.pdf_available() and _pdftoppm() is not None


def cache_dir() -> Path:
    path = Path(current_app.config.get("PREVIEW_CACHE_DIR") or Path(current_app.instance_path) / "vorschau")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, data: bytes) -> None:
    """Atomic, so that a second process never reads half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def _to_pdf(key: str, docx: bytes) -> bytes:
    target = cache_dir() / f"{key}.pdf"
    timeout = float(current_app.config.get("PREVIEW_TIMEOUT", 60))
    if not _convert_lock.acquire(timeout=timeout):
        raise PreviewUnavailable(BUSY_HINT)
    try:
        if target.exists():  # converted while this request waited for its turn
            return target.read_bytes()
        try:
            (result,) = pdf.convert_to_pdf([docx], timeout=timeout)
        except pdf.LibreOfficeMissing:
            raise PreviewUnavailable(MISSING_HINT) from None
        except KiPostError as error:
            raise PreviewUnavailable(f"Die Seitenansicht ließ sich nicht erzeugen ({error}). Hier der Text des Briefs.") from None
        _write(target, result)
        return result
    finally:
        _convert_lock.release()


def prepare(docx: bytes) -> PagedPreview:
    """Cache the letter and its PDF; raises PreviewUnavailable when the pages cannot be shown."""
    if not available():
        raise PreviewUnavailable(MISSING_HINT)
    key = hashlib.sha256(docx).hexdigest()
    folder = cache_dir()
    if not (folder / f"{key}.docx").exists():
        _write(folder / f"{key}.docx", docx)
    cached = folder / f"{key}.pdf"
    data = cached.read_bytes() if cached.exists() else _to_pdf(key, docx)
    _prune(folder)
    return PagedPreview(key, max(1, pdf.page_count(data)))


def page_image(key: str, page: int) -> bytes:
    """PNG of one page (1-based) of a prepared letter; NotFound for an unknown letter or page."""
    if not KEY.fullmatch(key) or page < 1:
        raise NotFound("Diese Vorschau gibt es nicht (mehr).")
    folder = cache_dir()
    png = folder / f"{key}-{page}.png"
    if png.exists():
        return png.read_bytes()
    pdf_path = folder / f"{key}.pdf"
    if not pdf_path.exists():
        docx = folder / f"{key}.docx"
        if not docx.exists():
            raise NotFound("Diese Vorschau gibt es nicht (mehr). Bitte „Vorschau“ erneut wählen.")
        _to_pdf(key, docx.read_bytes())
    if page > pdf.page_count(pdf_path.read_bytes()):
        raise NotFound("Diese Seite gibt es in dem Brief nicht.")
    binary = _pdftoppm()
    if binary is None:
        raise NotFound(MISSING_HINT)
    with tempfile.TemporaryDirectory(prefix="kipost-seite-") as tmp:
        out = Path(tmp) / "seite"
        try:
            subprocess.run([binary, "-png", "-r", str(DPI), "-f", str(page), "-l", str(page), "-singlefile", str(pdf_path), str(out)],
                           check=True, capture_output=True, timeout=float(current_app.config.get("PREVIEW_TIMEOUT", 60)))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            raise PreviewUnavailable("Das Seitenbild ließ sich nicht erzeugen.") from None
        data = (out.with_suffix(".png")).read_bytes()
    _write(png, data)
    return data


def _prune(folder: Path) -> None:
    """Keep the cache bounded: the oldest letters go first (they are made again on demand)."""
    limit = int(current_app.config.get("PREVIEW_CACHE_LETTERS", 500))
    letters = sorted(folder.glob("*.docx"), key=lambda path: path.stat().st_mtime)
    for old in letters[:-limit] if len(letters) > limit else []:
        for path in folder.glob(f"{old.stem}*"):
            path.unlink(missing_ok=True)
