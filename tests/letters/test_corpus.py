"""Real-world templates (tests/letters/corpus, see build_corpus.py): the engine against docxtpl.

For every template of the corpus the engine's letter is compared with docxtpl's letter for the same
data, text read back independently (docx2python for headers, body with tables and text boxes,
footers and footnotes; python-docx for the document properties). Where docxtpl itself cannot read
a template (Word's typographic quotes, invisible characters inside a tag), docxtpl must fail on it
and gets its plain twin instead: the same file with those characters typed as ASCII, i.e. what the
author meant. LibreOffice opens every letter the engine makes (converted to PDF in one batch).
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
from docxtpl import DocxTemplate
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from ki_post.letters import engine, pdf, schema

CORPUS = Path(__file__).parent / "corpus"
NAMES = sorted(path.name for path in CORPUS.glob("*.docx"))
# Templates docxtpl cannot read as they are, and the characters their plain twin types as ASCII.
TWIN = {"„": '"', "“": '"', "”": '"', "«": '"', "»": '"', "‚": "'", "‘": "'", "’": "'", "\u00a0": " ", "\u00ad": "", "\u200b": ""}
DOCXTPL_FAILS = {"word_autocorrect.docx": "„", "split_runs.docx": "\xad"}
# docxtpl hands Jinja the XML of a tag: a literal "&" in a string arrives as "&amp;" and, escaped
# once more on output, shows as "&amp;" in the letter. The engine decodes it first.
DOCXTPL_DOUBLE_ESCAPES = {"libreoffice_einladung.docx", "libreoffice_resave.docx"}


def kreis() -> dict:
    context = schema.sample_context()
    context["felder"] = {"frist": "31. Januar 2017"}
    return context


def stadt() -> dict:
    context = schema.sample_context()
    context.update(anrede="Sehr geehrter Herr Koch,", ist_kreis=False, ist_kreisfreie_stadt=True,
                   anschrift=["Stadt Köln – Die Oberbürgermeisterin", "Herrn", "Jan Koch", "Willy-Brandt-Platz 2", "50679 Köln"],
                   organisation={**context["organisation"], "name": "Köln", "art": "kreisfreie Stadt", "ort": "Köln"},
                   unterzeichnende=[{"name": "Anton Rütten", "funktion": ""}, {"name": "B", "funktion": "C"}, {"name": "D", "funktion": "E"}])
    context["kontakt"] = {**context["kontakt"], "nachname": "Koch", "titel": ""}
    return context


def texts(docx: bytes) -> dict[str, list[str]]:
    def flat(node) -> list[str]:
        if isinstance(node, list):
            return [text for child in node for text in flat(child)]
        return [node.strip()] if node.strip() else []

    with docx2python(io.BytesIO(docx)) as parsed:
        parts = {part: flat(getattr(parsed, part)) for part in ("header", "body", "footer", "footnotes", "endnotes")}
    properties = Document(io.BytesIO(docx)).core_properties
    parts["properties"] = [properties.title or "", properties.subject or ""]
    return parts


def docxtpl_letter(template: bytes, context: dict) -> bytes:
    document = DocxTemplate(io.BytesIO(template))
    document.render(context, jinja_env=SandboxedEnvironment(autoescape=True))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def plain_twin(template: bytes) -> bytes:
    """The template with Word's typographic and invisible characters typed as ASCII (in this corpus
    they occur only inside placeholders, which the first assertion checks)."""
    source = zipfile.ZipFile(io.BytesIO(template))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith(".xml"):
                text = data.decode("utf-8")
                outside = re.sub(r"\{[{%].*?[}%]\}", "", re.sub(r"<[^>]+>", "", text))
                assert not any(char in outside for char in "„“”«»‚‘"), f"{info.filename}: typographic quotes outside tags"
                for char, plain in TWIN.items():
                    text = text.replace(char, plain)
                data = text.encode("utf-8")
            target.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize("context", [kreis, stadt], ids=["Kreis", "Stadt"])
@pytest.mark.parametrize("name", NAMES)
def test_engine_letter_reads_like_docxtpls(name, context):
    template = (CORPUS / name).read_bytes()
    ours = texts(engine.compile_template(template).render(context()))
    if name in DOCXTPL_FAILS:
        with pytest.raises(TemplateSyntaxError, match=re.escape(f"unexpected char {DOCXTPL_FAILS[name]!r}")):
            docxtpl_letter(template, context())
        theirs = texts(docxtpl_letter(plain_twin(template), context()))
    else:
        theirs = texts(docxtpl_letter(template, context()))
    if name in DOCXTPL_DOUBLE_ESCAPES:
        assert any("&amp;" in line for line in theirs["body"])  # docxtpl's flaw, shown in the letter
        theirs = {part: [line.replace("&amp;", "&") for line in lines] for part, lines in theirs.items()}
    assert ours == theirs
    assert ours["body"], "the letter has a body"
    for lines in ours.values():
        assert not any(re.search(r"\{[{%#]|[}%#]\}", line) for line in lines), "no placeholder left over"


EXPECTED = {
    "libreoffice_einladung.docx": {
        "header": ["Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen"],
        "body": ["Frau Dr. Anna Schmidt", "Düsseldorf, 28. Dezember 2016",
                 "bitte senden Sie die Unterlagen bis 31. Januar 2017 zurück; Rückfragen an Agnes Heuvelmann & Team.",
                 "Als Kreis erhalten Sie drei weitere Personalstellen.", "Unterzeichnende: höchstens zwei.",
                 "Anton Rütten", "Leiter der Gruppe 32, MSW"],
        "footer": ["Seite 1 · Kreis Kleve"],
        "properties": ["Ausbau der Kommunalen Integrationszentren"],
    },
    "libreoffice_resave.docx": {
        "header": ["Ministerium für Arbeit, Integration und Soziales – des Landes Nordrhein-Westfalen"],
        "body": ["Frist: 31. Januar 2017, Betreff: Ausbau der Kommunalen Integrationszentren.", "Kleiner Kreis & mehr",
                 "Kreis Kleve & Düsseldorf", "Dr. Norbert Reichel"],
        "footer": ["MAIS NRW, 40190 Düsseldorf"],
    },
    "word_autocorrect.docx": {
        "header": ["Ministerium für Arbeit, Integration und Soziales"],
        "body": ["Dr. Anna Schmidt", "Nassauerallee 15–23", "Düsseldorf, 28. Dezember 2016",
                 "Kreis Kleve erhält als Kreis ab 2017 drei weitere Personalstellen.", "Bitte antworten Sie bis 31. Januar 2017.",
                 "Ihre Ansprechperson: Agnes Heuvelmann, Telefon 0211 855-3607.", "Vorgang: Rundschreiben 9506",
                 "Auf Seite zwei: Kleve", "Anlage: keine"],
        "footer": ["Seite 1 – Kreis Kleve"],
    },
    "split_runs.docx": {
        "header": ["Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen"],
        "body": ["An: Dr. Anna Schmidt", "Nachname: Schmidt", "Kommune: Kreis Kleve", "Ort: Kleve", "Nur für Kreise.",
                 "Anrede: Sehr geehrte Frau Dr. Schmidt, / Anna / 47533", "Betreff: Ausbau der Kommunalen Integrationszentren",
                 "Aktenzeichen: 9506."],
        "footer": ["KI Kreis Kleve"],
    },
    "fields_everywhere.docx": {
        "header": ["Erste Seite: Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen", "KI Kreis Kleve",
                   "Folgeseiten: Ausbau der Kommunalen Integrationszentren", "Gerade Seite: Schmidt"],
        "body": ["Kreis Kleve", "47533", "Kleve", "31. Januar 2017"],
        "footer": ["Fürstenwall 25\n40219 Düsseldorf", "Fußzeile: Kreis Kleve", "Gerade Fußzeile: Düsseldorf"],
        "footnotes": ["footnote1)\t Quelle: Rundschreiben vom 28. Dezember 2016"],
        "properties": ["Ausbau der Kommunalen Integrationszentren",
                       "Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen"],
    },
}


def test_every_corpus_template_has_expectations():
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_engine_letter_says_what_the_author_meant(name):
    ours = texts(engine.compile_template((CORPUS / name).read_bytes()).render(kreis()))
    for part, lines in EXPECTED[name].items():
        for line in lines:
            assert line in ours[part], (part, line, ours[part])


def test_stadt_gets_the_other_paragraphs():
    ours = texts(engine.compile_template((CORPUS / "word_autocorrect.docx").read_bytes()).render(stadt()))["body"]
    assert "Köln erhält als kreisfreie Stadt ab 2017 zwei weitere Personalstellen." in ours
    assert not any("als Kreis" in line for line in ours)
    ours = texts(engine.compile_template((CORPUS / "libreoffice_einladung.docx").read_bytes()).render(stadt()))["body"]
    assert "Unterzeichnende: drei oder mehr." in ours and "Als kreisfreie Stadt erhalten Sie zwei weitere Personalstellen." in ours


@pytest.mark.skipif(not pdf.pdf_available() or not shutil.which("pdftotext"), reason="LibreOffice oder pdftotext fehlt")
def test_libreoffice_opens_every_letter_the_engine_makes(tmp_path):
    letters = [engine.compile_template((CORPUS / name).read_bytes()).render(kreis()) for name in NAMES]
    for name, document in zip(NAMES, pdf.convert_to_pdf(letters)):
        target = tmp_path / (name + ".pdf")
        target.write_bytes(document)
        text = " ".join(subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True, check=True).stdout.split())
        body = [line for line in EXPECTED[name]["body"] if "\n" not in line]
        assert all(" ".join(line.split()) in text for line in body), (name, text[:500])
