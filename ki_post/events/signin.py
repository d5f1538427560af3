"""Printable sign-in sheet (Unterschriftenliste) and participant list: DOCX by python-docx, PDF/A via
the one LibreOffice road (letters/pdf.py). The look is in ``printing``."""
from __future__ import annotations

from docx.shared import Cm

from ..formatting import anzahl
from . import attendance, printing
from .questions import questions_of, readable_answers
from .models import Event

SIGN_IN_HEADER = ("Nr.", "Name", "Organisation", "Unterschrift")
# Landscape A4 minus margins: 25.7 cm. Nr. narrow, the signature gets the most room.
SIGN_IN_WIDTHS = (Cm(1.2), Cm(7.0), Cm(7.5), Cm(10.0))
LIST_HEADER = ("Nr.", "Name", "Organisation", "E-Mail", "Begleitung")
# Landscape too (25.7 cm): addresses fit on one line, and the answers to the questions under the name.
LIST_WIDTHS = (Cm(1.0), Cm(8.5), Cm(6.5), Cm(7.3), Cm(2.4))
LIST_WIDTHS_ATTENDANCE = (Cm(1.0), Cm(7.4), Cm(5.6), Cm(6.6), Cm(2.4), Cm(2.7))
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
    """Who accepted, with organisation, address and companions, and under each name their answers to the
    event's own questions; a closing line with the totals. Once the event has ended the list is the record
    of who came: a column with the attendance, the walk-ins below."""
    title = f"Teilnehmerliste: {event.title}"
    document = printing.new_document(title, landscape=True)
    printing.heading(document, title, event)
    accepted = printing.accepted(event)
    rows = [(str(number), i.name or i.email, i.organisation_name, i.email, str(i.companions or ""))
            for number, i in enumerate(accepted, start=1)]
    companions = sum(i.companions for i in accepted)
    totals = f"{len(accepted)} Zusagen, {anzahl(companions, 'Begleitperson', 'Begleitpersonen')}, " \
             f"{len(accepted) + companions} Personen insgesamt."
    if attendance.ended(event):
        marks = attendance.by_invitation(event)
        rows = [(*row, attendance.state_of(event, i, marks.get(i.id)).label) for row, i in zip(rows, accepted)]
        walk_ins = [row for row in attendance.attendances(event) if row.walk_in and row.present]
        rows += [(str(len(rows) + number), row.name, row.organisation_name, row.email or "",
                  str(row.companions_present or ""), "vor Ort angemeldet") for number, row in enumerate(walk_ins, start=1)]
        table = printing.table(document, (*LIST_HEADER, "Anwesenheit"), rows, LIST_WIDTHS_ATTENDANCE)
        came = attendance.counts(event)
        totals += (f" Anwesend: {came['anwesend']} (davon {came['vor_ort']} vor Ort angemeldet) und "
                   f"{anzahl(came['begleitpersonen'], 'Begleitperson', 'Begleitpersonen')}; "
                   f"nicht erschienen: {came['nicht_erschienen']}.")
    else:
        table = printing.table(document, LIST_HEADER, rows, LIST_WIDTHS)
    questions = questions_of(event.id)
    for row, invitation in zip(table.rows[1:], accepted):
        answers = readable_answers(invitation, questions)
        if answers:
            printing.note_line(row.cells[1], "; ".join(f"{label}: {text}" for label, text in answers.items()))
    document.add_paragraph(totals).paragraph_format.space_before = Cm(0.3)
    return printing.save(document)


def participant_list(event: Event, *, pdf: bool = True) -> bytes:
    data = participant_list_docx(event)
    return printing.to_pdf(data) if pdf else data
