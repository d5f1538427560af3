"""Sign-in sheet and participant list: an official list's look, and PDF/A-2b for the files."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from io import BytesIO
from pathlib import Path

import pytest
from docx import Document
from docx.oxml.ns import qn

from ki_post.events import services
from ki_post.events.signin import participant_list, participant_list_docx, sign_in_docx, sign_in_sheet
from ki_post.extensions import db
from ki_post.letters.pdf import pdf_available
from ki_post.letters.services import update_sender_profile
from tests.pdfa import assert_pdfa

MINISTRY = "Ministerium für Kinder, Jugend, Familie, Gleichstellung, Flucht und Integration"


def _text(pdf: bytes) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext fehlt (poppler-utils)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "liste.pdf"
        path.write_bytes(pdf)
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def answered(published):
    update_sender_profile({"ministerium": MINISTRY})
    event = published(3)
    a, b, c = event.invitations
    services.answer(a, "zugesagt", companions=2)
    services.answer(b, "zugesagt")
    services.answer(c, "abgesagt")
    db.session.commit()
    return event


def test_sign_in_sheet_looks_like_an_official_list(answered):
    document = Document(BytesIO(sign_in_docx(answered)))
    table = document.tables[0]
    widths = [int(col.get(qn("w:w"))) for col in table._tbl.tblGrid.findall(qn("w:gridCol"))]
    assert widths[0] < widths[1] < widths[3] and widths[3] == max(widths)  # Nr. narrow, Unterschrift widest
    assert table._tbl.tblPr.find(qn("w:tblLayout")).get(qn("w:type")) == "fixed"
    assert table.rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None  # repeated on every page
    assert [c.text for c in table.rows[0].cells] == ["Nr.", "Name", "Organisation", "Unterschrift"]
    assert len(table.rows) == 1 + 3 + 1 + 5  # header, a + 2 companions, b, five blank lines
    for name in ("Normal", "Heading 1"):
        style = document.styles[name]
        assert style.font.name == "Liberation Sans" and str(style.font.color.rgb) == "000000"
    footer = document.sections[0].footer._element.xml
    assert "Seite " in footer and " PAGE " in footer and " NUMPAGES " in footer
    assert "Ministerium, Raum 101" in document.paragraphs[1].text  # the event's facts under the heading
    properties = document.core_properties
    assert properties.title == f"Unterschriftenliste: {answered.title}" and properties.author == MINISTRY
    lang = document.styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr")).find(qn("w:lang"))
    assert lang.get(qn("w:val")) == "de-DE"


def test_participant_list_names_who_accepted(answered):
    a, b, c = answered.invitations
    document = Document(BytesIO(participant_list_docx(answered)))
    rows = [[cell.text for cell in row.cells] for row in document.tables[0].rows]
    assert rows[0] == ["Nr.", "Name", "Organisation", "E-Mail", "Begleitung"]
    names = {row[1]: row for row in rows[1:]}
    assert set(names) == {a.name, b.name}
    assert names[a.name][2:] == [a.organisation_name, a.email, "2"]
    assert "2 Zusagen, 2 Begleitpersonen, 4 Personen insgesamt." in document.paragraphs[-1].text


def test_after_the_event_the_participant_list_records_who_came(answered):
    """Before the end the list is the plan; after it, the record: attendance per person, walk-ins below."""
    from datetime import timedelta

    from ki_post.db_types import utcnow
    from ki_post.events import attendance

    a, b, _c = answered.invitations
    attendance.check_in(a, companions_present=1)
    attendance.add_walk_in(answered, "Max Gast", "Kreis Wesel")
    db.session.commit()
    before = Document(BytesIO(participant_list_docx(answered)))
    assert "Anwesenheit" not in [cell.text for cell in before.tables[0].rows[0].cells]
    answered.start_at, answered.end_at = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=1)
    db.session.commit()
    document = Document(BytesIO(participant_list_docx(answered)))
    rows = [[cell.text for cell in row.cells] for row in document.tables[0].rows]
    assert rows[0][-1] == "Anwesenheit"
    assert {row[1]: row[-1] for row in rows[1:]} == {a.name: "anwesend", b.name: "nicht erschienen",
                                                     "Max Gast": "vor Ort angemeldet"}
    assert ("Anwesend: 2 (davon 1 vor Ort angemeldet) und 1 Begleitperson; nicht erschienen: 1."
            in document.paragraphs[-1].text)


@pytest.mark.skipif(not pdf_available(), reason="LibreOffice (soffice) fehlt")
def test_event_lists_are_pdfa_with_page_numbers(answered):
    sheet = sign_in_sheet(answered, pdf=True)
    assert_pdfa(sheet, title=f"Unterschriftenliste: {answered.title}", author=MINISTRY)
    text = _text(sheet)
    assert "Seite 1 von 1" in text and answered.invitations[0].name in text
    listing = participant_list(answered)
    assert_pdfa(listing, title=f"Teilnehmerliste: {answered.title}", author=MINISTRY)
    assert answered.invitations[2].name not in _text(listing)  # declined: not on the list


def test_participant_list_download(staff_client, answered):
    response = staff_client.get(f"/veranstaltungen/{answered.id}/teilnehmerliste.pdf")
    if not pdf_available():
        assert response.status_code == 302
        return
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"] == f'attachment; filename="teilnehmerliste-{answered.id}.pdf"'


def test_participant_list_shows_the_answers_to_the_events_questions_under_the_name(published):
    from ki_post.events.questions import OptionData, QuestionData, add_question

    event = published(2)
    workshop = add_question(event, QuestionData("Workshop", "einfachauswahl",
                                                options=[OptionData("Sprachmittlung"), OptionData("Ehrenamt")]))
    a, b = event.invitations
    services.answer(a, "zugesagt", responses={workshop.id: [str(workshop.options[1].id)]})
    services.answer(b, "zugesagt")
    db.session.commit()
    document = Document(BytesIO(participant_list_docx(event)))
    cells = {row.cells[3].text: row.cells[1] for row in document.tables[0].rows[1:]}
    assert [p.text for p in cells[a.email].paragraphs] == [a.name, "Workshop: Ehrenamt"]
    assert [p.text for p in cells[b.email].paragraphs] == [b.name]
