"""The shipped circular template: DIN 5008 Form A geometry (standards.md §1, DIN-T1…T6, PAG-T1).

XML checks on the DOCX; positions on the PDF that LibreOffice makes of it (pdftotext -bbox for
words, pdftocairo -svg for the fold and hole marks).
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from docx import Document
from docx2python import docx2python
from lxml import etree

from ki_post.letters import engine, pdf
from ki_post.letters.services import SHIPPED_DIR, sample_context

TEMPLATE = SHIPPED_DIR / "rundschreiben.docx"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
PT_PER_MM = 72 / 25.4
needs_soffice = pytest.mark.skipif(not pdf.pdf_available(), reason="LibreOffice (soffice) fehlt: apt-get install libreoffice-writer-nogui")
slow = pytest.mark.slow
needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftocairo"), reason="poppler-utils (pdftotext) fehlt")


def part(name: str, data: bytes | None = None) -> etree._Element:
    return etree.fromstring(zipfile.ZipFile(io.BytesIO(data or TEMPLATE.read_bytes())).read(name))


def w(name: str) -> str:
    return f"{W}{name}"


def test_build_script_reproduces_the_shipped_template(tmp_path):
    """The committed DOCX is what scripts/build_letter_template.py makes (regenerate after edits)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_letter_template", Path(__file__).parents[2] / "scripts" / "build_letter_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.build(tmp_path / "neu.docx").read_bytes()
    for name in ("word/document.xml", "word/header1.xml", "word/header2.xml", "word/footer1.xml", "word/footer2.xml", "word/styles.xml"):
        assert zipfile.ZipFile(io.BytesIO(fresh)).read(name) == zipfile.ZipFile(TEMPLATE).read(name), name


def test_page_geometry_din_t5():
    sect = part("word/document.xml").find(f"{w('body')}/{w('sectPr')}")
    size, margins = sect.find(w("pgSz")), sect.find(w("pgMar"))
    assert (size.get(w("w")), size.get(w("h"))) == ("11906", "16838")  # DIN-01
    assert abs(int(margins.get(w("left"))) - 1417) <= 1  # DIN-02
    assert abs(int(margins.get(w("right"))) - 1134) <= 1  # DIN-03
    assert sect.find(w("titlePg")) is not None  # DIN-34: a different first page


def test_address_and_info_frames_are_anchored_to_the_page_din_t6():
    frames = {(f.get(w("x")), f.get(w("y")), f.get(w("w")), f.get(w("h"))): f
              for f in part("word/document.xml").iter(w("framePr"))}
    assert ("1134", "1531", "4819", "2551") in frames  # DIN-05 address field 85 × 45 mm at 20/27 mm
    assert ("7087", "1814", "4252", None) in frames  # DIN-09 information block at 125/32 mm, 75 mm wide
    for frame in frames.values():
        assert frame.get(w("hAnchor")) == "page" and frame.get(w("vAnchor")) == "page"


def test_language_title_and_page_fields():
    styles = part("word/styles.xml")
    lang = styles.find(f"{w('docDefaults')}/{w('rPrDefault')}/{w('rPr')}/{w('lang')}")
    assert lang.get(w("val")) == "de-DE"
    assert part("word/settings.xml").find(w("themeFontLang")).get(w("val")) == "de-DE"
    core = Document(TEMPLATE).core_properties
    assert core.title == "{{ betreff }}" and core.language == "de-DE"
    # PAG-T1: both footers (first page and follow-up pages) carry PAGE and NUMPAGES.
    for name in ("word/footer1.xml", "word/footer2.xml"):
        instructions = "".join(t.text for t in part(name).iter(w("instrText")))
        assert " PAGE " in instructions and " NUMPAGES " in instructions, name


def kreis_context(**overrides):
    context = sample_context()
    context.update(overrides)
    return context


def stadt_context():
    context = sample_context()
    context.update(anrede="Sehr geehrter Herr Koch,", ist_kreis=False, ist_kreisfreie_stadt=True,
                   anschrift=["Stadt Köln – Die Oberbürgermeisterin", "Herrn", "Jan Koch", "Willy-Brandt-Platz 2", "50679 Köln"],
                   organisation={**context["organisation"], "name": "Köln"})
    return context


def test_kreis_and_stadt_paragraphs_differ_and_title_is_rendered():
    compiled = engine.compile_template(TEMPLATE.read_bytes())
    kreis = compiled.render(kreis_context())
    stadt = compiled.render(stadt_context())
    with docx2python(io.BytesIO(kreis)) as parsed:
        text = parsed.text
        assert "drei weitere Personalstellen" in text and "1,5 weitere Lehrkräfte" in text
        assert "kreisfreie Stadt" not in text
        assert "8. Februar 2017" in text and "Mit freundlichen Grüßen" in text and "Im Auftrag" in text
        assert "Anton Rütten" in text and "Dr. Norbert Reichel" in text
    with docx2python(io.BytesIO(stadt)) as parsed:
        assert "eine weitere abgeordnete Lehrkraft" in parsed.text and "zwei weitere Personalstellen" in parsed.text
        assert "drei weitere Personalstellen" not in parsed.text
    document = Document(io.BytesIO(stadt))
    assert document.core_properties.title == sample_context()["betreff"]
    betreff = next(p for p in document.paragraphs if p.text == sample_context()["betreff"])
    assert all(run.bold for run in betreff.runs) and not betreff.text.endswith(".")  # DIN-25


def words(pdf_path: Path) -> list[dict]:
    """pdftotext -bbox words with page number, coordinates in mm."""
    html = subprocess.run(["pdftotext", "-bbox", str(pdf_path), "-"], capture_output=True, check=True, text=True).stdout
    result = []
    for number, page in enumerate(html.split("<page ")[1:], start=1):
        for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page):
            x0, y0, x1, y1 = (float(v) / PT_PER_MM for v in m.groups()[:4])
            result.append({"page": number, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "text": m[5]})
    return result


@pytest.fixture(scope="module")
def rendered_pdf(tmp_path_factory):
    if not pdf.pdf_available():
        pytest.skip("LibreOffice (soffice) fehlt: apt-get install libreoffice-writer-nogui")
    compiled = engine.compile_template(TEMPLATE.read_bytes())
    target = tmp_path_factory.mktemp("pdf") / "brief.pdf"
    target.write_bytes(pdf.convert_to_pdf([compiled.render(kreis_context())])[0])
    return target


def line_of(all_words, first_word, page=1):
    start = next(wd for wd in all_words if wd["page"] == page and wd["text"] == first_word)
    return [wd for wd in all_words if wd["page"] == page and abs(wd["y0"] - start["y0"]) < 0.5]


@slow
@needs_soffice
@needs_poppler
def test_address_block_inside_the_anschriftzone_din_t1(rendered_pdf):
    all_words = words(rendered_pdf)
    lines = sample_context()["anschrift"]
    address_words = []
    for line in lines:
        address_words += [wd for wd in line_of(all_words, line.split()[0]) if wd["x0"] < 105]
    assert {wd["text"] for wd in address_words} >= {"Kleve", "Frau", "Schmidt", "47533"}
    for wd in address_words:
        assert 25 - 0.5 <= wd["x0"] and wd["x1"] <= 105 + 0.5, wd
        assert 44.7 - 0.5 <= wd["y0"] and wd["y1"] <= 72 + 0.5, wd
    # No body glyph left of 25 mm or right of 190 mm (DIN-02/03).
    for wd in all_words:
        if 80 < wd["y0"] < 250:
            assert 25 - 0.3 <= wd["x0"] and wd["x1"] <= 190 + 0.3, wd


@slow
@needs_soffice
@needs_poppler
def test_ruecksendeangabe_and_information_block_din_t2_t3(rendered_pdf):
    all_words = words(rendered_pdf)
    back = line_of(all_words, "MAIS")
    assert all(27 <= wd["y0"] and wd["y1"] <= 32 for wd in back), back
    assert all(wd["y1"] - wd["y0"] <= 8 * 1.4 / PT_PER_MM for wd in back)  # 6–8 pt type (DIN-17)
    first = line_of(all_words, "Ansprechperson")
    assert abs(first[0]["y0"] - 32) <= 1 and first[0]["x0"] >= 125 - 0.1
    block = [wd for wd in all_words if wd["page"] == 1 and wd["x0"] >= 124 and 31 <= wd["y0"] <= 80]
    assert {"Telefon", "Telefax", "E-Mail", "Aktenzeichen", "Datum", "9506", "angeben"} <= {wd["text"] for wd in block}
    assert max(wd["x1"] for wd in block) <= 200


@slow
@needs_soffice
@needs_poppler
def test_fold_and_hole_marks_on_page_one_din_t4(rendered_pdf, tmp_path):
    svg = tmp_path / "seite1.svg"
    subprocess.run(["pdftocairo", "-svg", "-f", "1", "-l", "1", str(rendered_pdf), str(svg)], check=True)
    marks = []
    for m in re.finditer(r'd="M ([\d.]+) ([\d.]+) L ([\d.]+) ([\d.]+) "\s+transform="matrix\(([-\d.]+),0,0,([-\d.]+),([-\d.]+),([-\d.]+)\)"', svg.read_text()):
        x0, y0, x1, y1, a, d, e, f = map(float, m.groups())
        if abs(y0 - y1) < 0.01:
            marks.append(((a * x0 + e) / PT_PER_MM, (d * y0 + f) / PT_PER_MM, (a * x1 + e) / PT_PER_MM))
    for y in (87, 148.5, 192):
        assert any(abs(my - y) <= 0.5 and mx1 < 15 for _mx0, my, mx1 in marks), (y, marks)


@slow
@needs_soffice
@needs_poppler
def test_page_numbers_pag_t1(rendered_pdf):
    all_words = words(rendered_pdf)
    pages = max(wd["page"] for wd in all_words)
    assert pages >= 2, "the test letter should run onto a second page"
    for page in range(1, pages + 1):
        seite = line_of(all_words, "Seite", page)
        assert " ".join(wd["text"] for wd in seite) == f"Seite {page} von {pages}"
        assert max(wd["x1"] for wd in seite) >= 185


def test_body_sequence_body_t1():
    """BODY-T1 with blank lines modelled as spacing only: Betreff (bold, 2 lines after), Anrede (1 line after), text."""
    letter = engine.compile_template(TEMPLATE.read_bytes()).render(kreis_context())
    body = [p for p in Document(io.BytesIO(letter)).paragraphs if p._p.pPr is None or p._p.pPr.find(w("framePr")) is None]
    betreff, anrede, first_text = body[0], body[1], body[2]
    assert betreff.text == sample_context()["betreff"] and all(r.bold for r in betreff.runs)
    assert betreff.paragraph_format.space_after.twips >= 2 * 240  # DIN-24/26: two blank lines
    assert anrede.text.endswith(",") and anrede.paragraph_format.space_after.twips >= 240  # DIN-27
    assert first_text.text[0].islower()  # the text after the salutation starts in lower case
    # Word needs a paragraph after the signature table that ends the body: 1 pt high, not a blank line.
    carrier = body[-1]
    assert carrier._p.getprevious().tag == w("tbl") and not carrier.text
    assert carrier.paragraph_format.line_spacing.pt <= 1
    body = body[:-1]
    assert all(p.text.strip() for p in body), "no empty paragraphs: spacing only (never mixed)"
    closing = [p.text for p in body]
    assert closing.index("Mit freundlichen Grüßen") + 1 == closing.index("Im Auftrag")  # DIN-29


@slow
@needs_soffice
@needs_poppler
def test_information_block_values_aligned_inf_t1(rendered_pdf):
    all_words = words(rendered_pdf)
    values = {}
    for label in ("Telefon", "Telefax", "E-Mail", "Aktenzeichen", "Datum"):
        line = sorted(line_of(all_words, label), key=lambda wd: wd["x0"])
        line = [wd for wd in line if wd["x0"] >= 124]
        assert line[0]["text"] == label
        values[label] = line[1:]
    starts = [v[0]["x0"] for v in values.values()]
    assert max(starts) - min(starts) <= 0.3, starts
    label_end = max(line_of(all_words, "Aktenzeichen"), key=lambda wd: wd["x1"] if wd["text"] == "Aktenzeichen" else 0)["x1"]
    assert min(starts) > label_end  # at least a space after the longest lead word (DIN-21)
    phone = re.compile(r"^(\+49 \d{2,5}|0\d{2,5}) \d+(-\d+)?$")
    assert phone.match(" ".join(wd["text"] for wd in values["Telefon"]))
    assert " ".join(wd["text"] for wd in values["Datum"]) == sample_context()["datum"]
