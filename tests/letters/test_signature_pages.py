"""The shipped circular on paper: closing and both signatories stay together, side by side, and
never stand alone on a page (DIN-29; the reference circular is co-signed by two heads of unit).

LibreOffice converts the letters; pdftotext reads each page on its own (``-f N -l N``), and
``-bbox`` gives the positions for "side by side".
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from docx import Document
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.letters import engine, pdf, services
from ki_post.letters.services import SHIPPED_DIR, sample_context
from ki_post.recipients.addressing import address_lines, salutation
from ki_post.recipients.models import Contact
from tests.helpers import make_app

TEMPLATE = SHIPPED_DIR / "rundschreiben.docx"
SIGNATORIES = sample_context()["unterzeichnende"]
CLOSING = ("Mit freundlichen Grüßen", "Im Auftrag", *(person[key] for person in SIGNATORIES for key in ("name", "funktion")))
PT_PER_MM = 72 / 25.4

needs_pdf_tools = pytest.mark.skipif(
    not pdf.pdf_available() or not shutil.which("pdftotext"),
    reason="LibreOffice (soffice) oder pdftotext fehlt: apt-get install libreoffice-writer-nogui poppler-utils")


def page_texts(document: bytes, tmp_path: Path) -> list[str]:
    """One text per page, each read by its own pdftotext call on that page only."""
    target = tmp_path / f"brief-{abs(hash(document))}.pdf"
    target.write_bytes(document)
    texts = []
    for page in range(1, pdf.page_count(document) + 1):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(target), "-"],
                              capture_output=True, text=True, check=True).stdout
        texts.append(" ".join(text.split()))
    return texts


def body_words(page: str) -> str:
    """What a page says besides the closing block, the running header, the footer and "Seite k von n"."""
    for line in (*CLOSING, *(str(v) for v in sample_context()["absender"].values())):
        page = page.replace(" ".join(str(line).split()), " ")
    page = re.sub(r"Seite \d+ von \d+", " ", page)
    page = re.sub(r"(Dienstgebäude und Lieferanschrift|Öffentliche Verkehrsmittel):", " ", page)
    return " ".join(page.split())


def assert_signature_block_whole_and_accompanied(document: bytes, tmp_path: Path, who: str) -> None:
    pages = page_texts(document, tmp_path)
    holding = [number for number, text in enumerate(pages, start=1) if any(line in text for line in CLOSING)]
    assert len(holding) == 1, f"{who}: Grußformel und Unterschriften über die Seiten {holding} verteilt"
    page = pages[holding[0] - 1]
    missing = [line for line in CLOSING if line not in page]
    assert not missing, f"{who}: auf Seite {holding[0]} fehlt {missing}"
    # Not alone: at least the end of the last text paragraph goes with the closing.
    assert len(body_words(page).split()) >= 10, f"{who}: Seite {holding[0]} trägt nur den Schlussblock: {page!r}"


def names_side_by_side(document: bytes, tmp_path: Path) -> None:
    target = tmp_path / "nebeneinander.pdf"
    target.write_bytes(document)
    html = subprocess.run(["pdftotext", "-bbox", str(target), "-"], capture_output=True, check=True, text=True).stdout
    found = {}
    for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)</word>', html):
        found.setdefault(m[3], (float(m[1]) / PT_PER_MM, float(m[2]) / PT_PER_MM))
    first, second = found["Rütten"], found["Reichel"]
    assert abs(first[1] - second[1]) < 0.5, "the two signatories are not on one line"
    assert second[0] > first[0] + 60, "the second signatory does not stand beside the first"
    anton = found["Anton"]
    assert abs(anton[0] - 25) <= 0.5, f"the first signatory does not start at the Fluchtlinie (25 mm): {anton[0]:.1f} mm"


@pytest.fixture
def demo_app(tmp_path):
    """The demo recipients and sender on SQLite (the layout does not depend on the database)."""
    from ki_post.demo import load_demo_verteiler
    from ki_post.letters.demo import load_demo

    app = make_app(tmp_path, "sqlite")
    with app.app_context():
        load_demo_verteiler()
        load_demo()
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.mark.slow
@needs_pdf_tools
def test_demo_letters_keep_closing_and_both_signatories_together(demo_app, tmp_path):
    contacts = list(db.session.scalars(select(Contact).order_by(Contact.id)))
    version = services.template_by_name("rundschreiben").latest
    fields = {**services.default_fields(), "betreff": "Ausbau der Kommunalen Integrationszentren im Jahre 2016/2017",
              "datum": "2016-12-28"}
    letters = dict(services.render_letters_for(contacts, version, fields))
    longest_address = max(contacts, key=lambda c: (len(address_lines(c)), sum(map(len, address_lines(c))) + len(salutation(c))))
    longest_letter = max(contacts, key=lambda c: len(engine.document_text(letters[c])))
    chosen = {contact.id: contact for contact in (contacts[0], longest_address, longest_letter)}
    assert len(chosen) >= 2
    converted = pdf.convert_to_pdf([letters[contact] for contact in chosen.values()])
    for contact, document in zip(chosen.values(), converted):
        assert_signature_block_whole_and_accompanied(document, tmp_path, f"{contact.full_name} ({contact.organisation.name})")
    names_side_by_side(converted[0], tmp_path)


@pytest.mark.slow
@needs_pdf_tools
def test_signature_block_stays_whole_wherever_the_page_breaks(tmp_path):
    """The text grows half a line at a time (a long town name in the paragraph for kreisfreie
    Städte), so the page break passes through every line of the last paragraphs and the closing."""
    compiled = engine.compile_template(TEMPLATE.read_bytes())
    lengths = range(0, 96, 4)
    documents = []
    for extra in lengths:
        context = sample_context()
        context.update(ist_kreis=False, ist_kreisfreie_stadt=True,
                       organisation={**context["organisation"], "name": "Köln" + " Rheinufer" * extra})
        documents.append(compiled.render(context))
    converted = pdf.convert_to_pdf(documents)
    for extra, document in zip(lengths, converted):
        assert_signature_block_whole_and_accompanied(document, tmp_path, f"{extra} Wörter mehr")
    assert {pdf.page_count(document) for document in converted} == {1, 2}, "the sweep should cross the page break"


def signature_rows(document: bytes) -> list[list[str]]:
    table = Document(io.BytesIO(document)).tables[-1]
    return [[" / ".join(p.text for p in cell.paragraphs if p.text) for cell in row.cells] for row in table.rows]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_signatories_two_to_a_row(count):
    """One signatory leaves the right cell empty; a third and fourth continue in a second row."""
    people = [{"name": f"Person {n}", "funktion": f"Funktion {n}"} for n in range(1, count + 1)]
    context = sample_context()
    context["unterzeichnende"] = people
    rows = signature_rows(engine.compile_template(TEMPLATE.read_bytes()).render(context))
    expected = [[f"Person {n} / Funktion {n}" if n <= count else "" for n in (first, first + 1)] for first in range(1, count + 1, 2)]
    assert rows == expected
