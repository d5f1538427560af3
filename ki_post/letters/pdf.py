"""PDF via LibreOffice: one headless process converts a whole batch (never one process per file)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context

from ..errors import KiPostError

INSTALL_HINT = (
    "Für PDF wird LibreOffice benötigt, das auf diesem Server nicht installiert ist. "
    "Bitte die IT bitten, es zu installieren (Debian/Ubuntu: „apt-get install libreoffice-writer-nogui“). "
    "DOCX-Dateien lassen sich auch ohne LibreOffice erzeugen."
)


class LibreOfficeMissing(KiPostError):
    pass


def find_soffice(configured: str | None = None) -> str | None:
    """The LibreOffice binary: the given path, else SOFFICE_PATH of the app, KI_POST_SOFFICE, then PATH."""
    if configured is None and has_app_context():
        configured = current_app.config.get("SOFFICE_PATH") or None
    for candidate in (configured, os.environ.get("KI_POST_SOFFICE"), "soffice", "libreoffice"):
        if candidate:
            found = shutil.which(candidate)
            if found:
                return found
    return None


def pdf_available(configured: str | None = None) -> bool:
    return find_soffice(configured) is not None


def convert_to_pdf(documents: list[bytes], *, soffice: str | None = None, timeout: float = 1800,
                   missing_ok: bool = False) -> list[Any]:
    """Convert DOCX documents to PDF, in order, with ONE LibreOffice process and its own throw-away profile.

    With ``missing_ok`` a document LibreOffice could not convert is ``None`` in the result (the
    caller records it for that recipient) instead of failing the whole batch.
    """
    if not documents:
        return []
    binary = find_soffice(soffice)
    if binary is None:
        raise LibreOfficeMissing(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="kipost-pdf-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        (work / "out").mkdir()
        names = []
        for index, document in enumerate(documents):
            path = work / "in" / f"brief-{index:06d}.docx"
            path.write_bytes(document)
            names.append(path)
        # A private profile: parallel conversions and a user's running LibreOffice never collide.
        command = [
            binary, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless", "--norestore",
            "--nolockcheck", "--convert-to", "pdf", "--outdir", str(work / "out"), *map(str, names),
        ]
        try:
            result = subprocess.run(command, capture_output=True, timeout=timeout, cwd=tmp, check=False)
        except subprocess.TimeoutExpired:
            raise KiPostError("LibreOffice hat die PDF-Umwandlung nicht rechtzeitig beendet.") from None
        pdfs = []
        for path in names:
            target = work / "out" / (path.stem + ".pdf")
            if not target.exists() and missing_ok:
                pdfs.append(None)
                continue
            if not target.exists():
                detail = result.stderr.decode("utf-8", "replace").strip()[-300:]
                raise KiPostError(f"LibreOffice konnte „{path.name}“ nicht in PDF umwandeln. {detail}".strip())
            pdfs.append(target.read_bytes())
        return pdfs


def page_count(pdf: bytes) -> int:
    """Pages of a PDF written by LibreOffice (its page objects are plain dictionaries)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def unite_pdfs(pdfs: list[bytes]) -> bytes:
    """Concatenate PDFs with poppler's pdfunite."""
    if len(pdfs) == 1:
        return pdfs[0]
    binary = shutil.which("pdfunite")
    if binary is None:
        raise KiPostError("Zum Zusammenfügen der PDF-Dateien wird „pdfunite“ benötigt (Debian: apt-get install poppler-utils).")
    with tempfile.TemporaryDirectory(prefix="kipost-pdfunite-") as tmp:
        paths = []
        for index, pdf in enumerate(pdfs):
            path = Path(tmp) / f"{index:06d}.pdf"
            path.write_bytes(pdf)
            paths.append(str(path))
        target = Path(tmp) / "gesamt.pdf"
        subprocess.run([binary, *paths, str(target)], check=True, capture_output=True, timeout=600)
        return target.read_bytes()
