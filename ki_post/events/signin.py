"""Printable sign-in sheet (Unterschriftenliste): DOCX by python-docx, PDF via LibreOffice. Pure apart from soffice."""
from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from flask import current_app

from ..formatting import datum_zeit, zeit
from ..errors import ValidationError
from .models import Event, InvitationState


def _repeat_header(row) -> None:
    properties = row._tr.get_or_add_trPr()
    marker = OxmlElement("w:tblHeader")
    marker.set(qn("w:val"), "true")
    properties.append(marker)


def sign_in_docx(event: Event) -> bytes:
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(2))
    document.core_properties.title = f"Unterschriftenliste: {event.title}"
    document.core_properties.language = "de-DE"
    document.add_heading(f"Unterschriftenliste: {event.title}", level=1)
    document.add_paragraph(f"{datum_zeit(event.start_at)} bis {zeit(event.end_at)} Uhr" + (f", {event.location}" if event.location else ""))
    accepted = sorted((i for i in event.invitations if i.state == InvitationState.ZUGESAGT),
                      key=lambda i: (i.organisation_name.lower(), i.name.lower()))
    table = document.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    header = table.rows[0]
    _repeat_header(header)
    for cell, text in zip(header.cells, ("Nr.", "Name", "Organisation", "Unterschrift")):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
    number = 0
    for invitation in accepted:
        number += 1
        cells = table.add_row().cells
        cells[0].text, cells[1].text, cells[2].text = str(number), invitation.name or invitation.email, invitation.organisation_name
        for k in range(invitation.companions):
            number += 1
            cells = table.add_row().cells
            cells[0].text, cells[1].text = str(number), f"Begleitperson {k + 1} von {invitation.name or invitation.email}"
            cells[2].text = invitation.organisation_name
    for _ in range(5):  # blank lines for walk-ins
        number += 1
        table.add_row().cells[0].text = str(number)
    for row in table.rows:
        row.height = Cm(1.1)
        for cell, width in zip(row.cells, (Cm(1.5), Cm(8), Cm(8), Cm(8))):
            cell.width = width
            for paragraph in cell.paragraphs:
                for run in paragraph.runs:
                    run.font.size = Pt(11)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def soffice_binary() -> str | None:
    configured = current_app.config.get("SOFFICE_PATH") or ""
    return configured or shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(data: bytes) -> bytes:
    binary = soffice_binary()
    if not binary:
        raise ValidationError("PDF ist nicht verfügbar: LibreOffice ist nicht installiert. Bitte nutzen Sie die Word-Datei.")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "liste.docx"
        source.write_bytes(data)
        profile = Path(folder) / "profile"
        result = subprocess.run(
            [binary, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf", "--outdir", folder, str(source)],
            capture_output=True, timeout=120,
        )
        target = Path(folder) / "liste.pdf"
        if result.returncode != 0 or not target.exists():
            raise ValidationError("Die PDF-Umwandlung mit LibreOffice ist fehlgeschlagen.")
        return target.read_bytes()


def sign_in_sheet(event: Event, *, pdf: bool = False) -> bytes:
    data = sign_in_docx(event)
    return docx_to_pdf(data) if pdf else data
