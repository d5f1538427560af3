"""The look of printed event lists (sign-in sheet, participant list): an official list, not Word's defaults.

Liberation Sans (metric-compatible with Arial, installed with LibreOffice) in black, a bold heading, a
line with the event's facts, a table with its header row repeated on every page, and "Seite X von Y"
in the footer. Title, author (the sending ministry) and language de-DE are set, so the PDF/A names them.
"""
from __future__ import annotations

import io
from collections.abc import Sequence

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from ..errors import KiPostError, ValidationError
from ..formatting import datum_zeit, zeit
from ..letters import docprops, pdf
from ..letters.services import sender_profile
from .models import Event, Invitation, InvitationState

FONT = "Liberation Sans"
BLACK = RGBColor(0, 0, 0)


def author() -> str:
    from flask import current_app

    return sender_profile().ministerium or current_app.config.get("APP_NAME", "KI-Post")


def _font(style, size: float, bold: bool = False) -> None:
    style.font.name = FONT
    style.font.size = Pt(size)
    style.font.bold = bold
    style.font.color.rgb = BLACK
    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    for attribute in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attribute), FONT)
    for attribute in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
        fonts.attrib.pop(qn(attribute), None)


def new_document(title: str, *, landscape: bool) -> Document:
    document = Document()
    section = document.sections[0]
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    else:
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2)
    section.top_margin, section.bottom_margin = Cm(1.8), Cm(1.8)
    docprops.apply_to_document(document, title=title, author=author())
    _font(document.styles["Normal"], 10)
    document.styles["Normal"].paragraph_format.space_after = Pt(0)
    heading = document.styles["Heading 1"]
    _font(heading, 15, bold=True)
    heading.paragraph_format.space_before, heading.paragraph_format.space_after = Pt(0), Pt(6)
    _footer(section)
    return document


def _field(paragraph, instruction: str) -> None:
    """A Word field (PAGE, NUMPAGES) with a placeholder value; Word and LibreOffice fill it in."""
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, instruction), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
        elif text == instruction:
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = f" {instruction} "
        else:
            element = OxmlElement("w:t")
            element.text = text
        run._r.append(element)


def _footer(section) -> None:
    paragraph = section.footer.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    paragraph.add_run("Seite ")
    _field(paragraph, "PAGE")
    paragraph.add_run(" von ")
    _field(paragraph, "NUMPAGES")
    for run in paragraph.runs:
        run.font.size = Pt(9)


def heading(document, title: str, event: Event) -> None:
    document.add_heading(title, level=1)
    facts = [f"{datum_zeit(event.start_at)} bis {zeit(event.end_at)} Uhr"]
    if event.location:
        facts.append(event.location)
    paragraph = document.add_paragraph(" · ".join(facts))
    paragraph.paragraph_format.space_after = Pt(10)


def _repeat_header(row) -> None:
    properties = row._tr.get_or_add_trPr()
    marker = OxmlElement("w:tblHeader")
    marker.set(qn("w:val"), "true")
    properties.append(marker)


def _fixed_widths(table, widths: Sequence[Cm]) -> None:
    table.autofit = False
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    table._tbl.tblPr.append(layout)
    grid = table._tbl.tblGrid
    for column, width in zip(grid.findall(qn("w:gridCol")), widths):
        column.set(qn("w:w"), str(int(width.twips)))


def table(document, header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[Cm], *,
          row_height: Cm | None = None):
    """A bordered table with a bold, shaded header row repeated on every page and fixed column widths."""
    result = document.add_table(rows=1, cols=len(header))
    result.style = "Table Grid"
    result.alignment = WD_TABLE_ALIGNMENT.CENTER
    _repeat_header(result.rows[0])
    for cell, text in zip(result.rows[0].cells, header):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
        shading = OxmlElement("w:shd")
        shading.set(qn("w:val"), "clear")
        shading.set(qn("w:fill"), "E6E6E6")
        cell._tc.get_or_add_tcPr().append(shading)
    for values in rows:
        cells = result.add_row().cells
        for cell, value in zip(cells, values):
            cell.text = value
    _fixed_widths(result, widths)
    for row in result.rows:
        if row_height is not None:
            row.height = row_height
        for cell, width in zip(row.cells, widths):
            cell.width = width
    # A row never breaks across pages (a signature would be cut in half).
    for row in result.rows:
        row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
    return result


def note_line(cell, text: str) -> None:
    """A smaller second line in a table cell (e.g. the answers under a name)."""
    run = cell.add_paragraph().add_run(text)
    run.font.size = Pt(8.5)


def save(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def accepted(event: Event) -> list[Invitation]:
    return sorted((i for i in event.invitations if i.state == InvitationState.ZUGESAGT),
                  key=lambda i: (i.organisation_name.lower(), i.name.lower()))


def to_pdf(docx: bytes) -> bytes:
    """The one road to PDF (PDF/A-2b with tags); LibreOffice missing is a German error the page shows."""
    try:
        return pdf.convert_to_pdf([docx])[0]
    except KiPostError as error:
        raise ValidationError(f"PDF ist nicht verfügbar: {error} Bitte nutzen Sie die Word-Datei.") from None
