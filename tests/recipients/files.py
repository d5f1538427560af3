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
