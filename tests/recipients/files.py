"""Import files built in code (no binary fixtures in git)."""
from __future__ import annotations

import io

from openpyxl import Workbook

HEADERS = ["Kommune", "Art", "Regierungsbezirk", "Anrede", "Titel", "Vorname", "Nachname", "Funktion",
           "Straße", "PLZ", "Ort", "E-Mail", "Telefon"]
ROWS = [
    ["Kreis Mettmann", "Kreis", "Düsseldorf", "Frau", "Dr.", "Sabine", "Jäger", "Dezernentin für Integration",
     "Düsseldorfer Straße 26", "40822", "Mettmann", "S.Jaeger@Kreis-Mettmann.example", "02104 99-0"],
    ["Köln", "kreisfreie Stadt", "Köln", "Herr", "Prof. Dr.", "Jan", "Koch", "Beigeordneter",
     "Willy-Brandt-Platz 2", "50679", "Köln", "jan.koch@stadt-koeln.example", "0221 221-0"],
    ["StädteRegion Aachen", "StädteRegion", "Köln", "", "", "Kim", "Mayer", "Dezernat Integration",
     "Zollernstraße 10", "52070", "Aachen", "kim.mayer@staedteregion-aachen.example", ""],
]


def csv_data(headers=HEADERS, rows=ROWS, delimiter=";", encoding="cp1252", newline="\r\n", bom=False) -> bytes:
    def quote(cell: str) -> str:
        if any(ch in cell for ch in (delimiter, '"', "\n", "\r")):
            return '"' + cell.replace('"', '""') + '"'
        return cell

    text = newline.join(delimiter.join(quote(str(c)) for c in row) for row in [headers, *rows]) + newline
    data = text.encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def xlsx_data(headers=HEADERS, rows=ROWS, title="Verteiler") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- Workbooks written by hand: shared strings as Excel writes them, and hostile ones --------------

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<workbook xmlns="{MAIN_NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Verteiler" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)


def xlsx_package(sheet_data, shared_strings=()) -> bytes:
    """A minimal workbook. ``sheet_data`` and ``shared_strings`` are iterables of XML text pieces
    (the inside of <sheetData> and of <sst>), written in a stream: a bomb never sits in memory whole."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        for name, head, pieces, tail in (
            ("xl/worksheets/sheet1.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{MAIN_NS}"><sheetData>', sheet_data, "</sheetData></worksheet>"),
            ("xl/sharedStrings.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="{MAIN_NS}">', shared_strings, "</sst>"),
        ):
            with archive.open(name, "w", force_zip64=True) as part:
                part.write(head.encode())
                for piece in pieces:
                    part.write(piece.encode() if isinstance(piece, str) else piece)
                part.write(tail.encode())
    return buffer.getvalue()


def xlsx_shared_strings(table) -> bytes:
    """``table`` (header and rows of text) as Excel writes it: every text a shared string (t="s")."""
    from xml.sax.saxutils import escape

    from openpyxl.utils import get_column_letter

    index: dict[str, int] = {}
    rows = []
    for number, row in enumerate(table, start=1):
        cells = "".join(
            f'<c r="{get_column_letter(column)}{number}" t="s"><v>{index.setdefault(str(value), len(index))}</v></c>'
            for column, value in enumerate(row, start=1) if value not in ("", None)
        )
        rows.append(f'<row r="{number}">{cells}</row>')
    strings = [f'<si><t xml:space="preserve">{escape(text)}</t></si>' for text in index]
    return xlsx_package(rows, strings)


def inline_cell(reference: str, text: str) -> str:
    from xml.sax.saxutils import escape

    return f'<c r="{reference}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'
