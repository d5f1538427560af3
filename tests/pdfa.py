"""What a PDF for the files must show, checked part by part: PDF/A-2b identification in XMP, a tag
structure, language de-DE, title and author in DocInfo and XMP, every font embedded (poppler's pdffonts).

The whole PDF/A-2b profile is validated as well, by the validator ``page`` (PyPI: page-validation, a
Rust validator that passes the veraPDF corpus)."""
from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import pikepdf
import pytest


def fonts(data: bytes) -> list[dict[str, str]]:
    """pdffonts' table: name, type and the "emb" column per font."""
    binary = shutil.which("pdffonts")
    if binary is None:
        pytest.skip("pdffonts fehlt (poppler-utils)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "datei.pdf"
        path.write_bytes(data)
        output = subprocess.run([binary, str(path)], capture_output=True, text=True, check=True).stdout
    lines = output.splitlines()
    header, rows = lines[0], lines[2:]  # lines[1] is the ruler
    emb = header.index("emb")
    return [{"name": row.split()[0], "emb": row[emb:emb + 3].strip()} for row in rows if row.strip()]


def assert_pdfa(data: bytes, *, title: str, author: str) -> None:
    pdf = pikepdf.open(io.BytesIO(data))
    with pdf.open_metadata() as xmp:
        assert xmp.get("pdfaid:part") == "2", xmp.get("pdfaid:part")
        assert xmp.get("pdfaid:conformance") == "B", xmp.get("pdfaid:conformance")
        assert xmp.get("dc:title") == title
        assert list(xmp.get("dc:creator") or []) == [author]
    assert "/StructTreeRoot" in pdf.Root, "keine Tag-Struktur"
    assert bool(pdf.Root.MarkInfo.get("/Marked")) is True
    assert str(pdf.Root.Lang) == "de-DE"
    assert str(pdf.docinfo["/Title"]) == title
    assert str(pdf.docinfo["/Author"]) == author
    found = fonts(data)
    assert found, "keine Schriften gefunden"
    assert all(font["emb"] == "yes" for font in found), found
    validate(data)


def validate(data: bytes) -> None:
    import page  # type: ignore[import-not-found]

    report = page.validate_pdf_bytes(data, profile="2b")
    assert report.is_compliant, [(failure.rule_id, failure.message) for failure in report.failures]
