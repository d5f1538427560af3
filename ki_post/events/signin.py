"""Printable sign-in sheet (Unterschriftenliste) and participant list: DOCX by python-docx, PDF/A via
the one LibreOffice road (letters/pdf.py). The look is in ``printing``."""
from __future__ import annotations

from docx.shared import Cm

from ..formatting import anzahl
from . import attendance, printing
from .models import Event

SIGN_IN_HEADER = ("Nr.", "Name", "Organisation", "Unterschrift")
# Landscape A4 minus margins: 25.7 cm. Nr. narrow, the signature gets the most room.
SIGN_IN_WIDTHS = (Cm(1.2), Cm(7.0), Cm(7.5), Cm(10.0))
LIST_HEADER = ("Nr.", "Name", "Organisation", "E-Mail", "Begleitpersonen")
LIST_WIDTHS = (Cm(1.0), Cm(4.2), Cm(4.4), Cm(4.6), Cm(2.8))  # portrait A4 minus margins: 17 cm
LIST_WIDTHS_ATTENDANCE = (Cm(1.0), Cm(3.4), Cm(3.4), Cm(3.8), Cm(2.8), Cm(2.6))
WALK_IN_LINES = 5


def sign_in_rows(event: Event) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for invitation in printing.accepted(event):
        name = invitation.name or invitation.email
        rows.append((str(len(rows) + 1), name, invitation.organisation_name, ""))
        for k in range(invitation.companions):
            rows.append((str(len(rows) + 1), f"Begleitperson {k + 1} von {name}", invitation.organisation_name, ""))
    for _ in range(WALK_IN_LINES):  # blank lines for walk-ins
        rows.append((str(len(rows) + 1), "", "", ""))
    return rows


def sign_in_docx(event: Event) -> bytes:
    title = f"Unterschriftenliste: {event.title}"
    document = printing.new_document(title, landscape=True)
    printing.heading(document, title, event)
    printing.table(document, SIGN_IN_HEADER, sign_in_rows(event), SIGN_IN_WIDTHS, row_height=Cm(1.1))
    return printing.save(document)


def sign_in_sheet(event: Event, *, pdf: bool = False) -> bytes:
    data = sign_in_docx(event)
    return printing.to_pdf(data) if pdf else data


def participant_list_docx(event: Event) -> bytes:
    """Who accepted, with organisation, address and companions; a closing line with the totals. Once the
    event has ended the list is the record of who came: a column with the attendance, the walk-ins below."""
    title = f"Teilnehmerliste: {event.title}"
    document = printing.new_document(title, landscape=False)
    printing.heading(document, title, event)
    accepted = printing.accepted(event)
    rows = [(str(number), i.name or i.email, i.organisation_name, i.email, str(i.companions or ""))
            for number, i in enumerate(accepted, start=1)]
    companions = sum(i.companions for i in accepted)
    totals = f"{len(accepted)} Zusagen, {companions} Begleitpersonen, {len(accepted) + companions} Personen insgesamt."
    if attendance.ended(event):
        marks = attendance.by_invitation(event)
        rows = [(*row, attendance.state_of(event, i, marks.get(i.id)).label) for row, i in zip(rows, accepted)]
        walk_ins = [row for row in attendance.attendances(event) if row.walk_in and row.present]
        rows += [(str(len(rows) + number), row.name, row.organisation_name, row.email or "",
                  str(row.companions_present or ""), "vor Ort angemeldet") for number, row in enumerate(walk_ins, start=1)]
        printing.table(document, (*LIST_HEADER, "Anwesenheit"), rows, LIST_WIDTHS_ATTENDANCE)
        came = attendance.counts(event)
        totals += (f" Anwesend: {came['anwesend']} (davon {came['vor_ort']} vor Ort angemeldet) und "
                   f"{anzahl(came['begleitpersonen'], 'Begleitperson', 'Begleitpersonen')}; "
                   f"nicht erschienen: {came['nicht_erschienen']}.")
    else:
        printing.table(document, LIST_HEADER, rows, LIST_WIDTHS)
    document.add_paragraph(totals).paragraph_format.space_before = Cm(0.3)
    return printing.save(document)


def participant_list(event: Event, *, pdf: bool = True) -> bytes:
    data = participant_list_docx(event)
    return printing.to_pdf(data) if pdf else data
