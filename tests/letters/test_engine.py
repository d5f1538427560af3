"""The DOCX engine: compile once, render parts, copy the rest; validation; sandbox and escaping."""
from __future__ import annotations

import io
import zipfile

import pytest
from docx import Document
from docx2python import docx2python

from ki_post.errors import ValidationError
from ki_post.letters import engine


def make_docx(*paragraphs: str, header: str | None = None) -> bytes:
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if header is not None:
        document.sections[0].header.paragraphs[0].text = header
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def texts(docx: bytes) -> list[str]:
    return [p.text for p in Document(io.BytesIO(docx)).paragraphs]


def test_renders_only_tagged_parts_and_copies_the_others_byte_for_byte():
    template = make_docx("Hallo {{ name }}", "ohne Platzhalter", header="Kopf {{ name }}")
    compiled = engine.compile_template(template)
    assert set(compiled.templates) == {"word/document.xml", "word/header1.xml"}
    letter = compiled.render({"name": "Anna"})

    source = zipfile.ZipFile(io.BytesIO(template))
    result = zipfile.ZipFile(io.BytesIO(letter))
    assert result.testzip() is None
    assert result.namelist() == source.namelist()
    # The styles get the default language de-DE once at compile time (the PDF's /Lang comes from there).
    assert set(compiled.fixed) == {"word/styles.xml"}
    assert b'<w:lang w:val="de-DE"' in result.read("word/styles.xml") and b"en-US" in source.read("word/styles.xml")
    for info in source.infolist():
        if info.filename in compiled.templates or info.filename in compiled.fixed:
            continue
        # Same compressed bytes: copied raw, never re-compressed.
        other = result.getinfo(info.filename)
        assert (other.CRC, other.compress_size, other.compress_type) == (info.CRC, info.compress_size, info.compress_type)
        assert result.read(info.filename) == source.read(info.filename)
    assert texts(letter)[:2] == ["Hallo Anna", "ohne Platzhalter"]
    assert Document(io.BytesIO(letter)).sections[0].header.paragraphs[0].text == "Kopf Anna"


def test_paragraph_conditions_and_loops_like_docxtpl():
    template = make_docx("{%p if kreis %}", "Kreis-Absatz", "{%p else %}", "Stadt-Absatz", "{%p endif %}",
                         "{%p for z in zeilen %}", "{{ z }}", "{%p endfor %}")
    compiled = engine.compile_template(template)
    assert texts(compiled.render({"kreis": True, "zeilen": ["a", "b"]})) == ["Kreis-Absatz", "a", "b"]
    assert texts(compiled.render({"kreis": False, "zeilen": []})) == ["Stadt-Absatz"]


def test_xml_special_characters_in_data_give_a_valid_docx():
    compiled = engine.compile_template(make_docx("Name: {{ name }}"))
    nasty = 'Müller & Söhne <b>fett</b> "zitiert" \'x\' ]]> &amp;'
    letter = compiled.render({"name": nasty})
    assert texts(letter)[0] == f"Name: {nasty}"
    with docx2python(io.BytesIO(letter)) as parsed:
        assert nasty in parsed.text


def test_template_syntax_in_data_stays_literal():
    compiled = engine.compile_template(make_docx("{{ name }}"))
    for payload in ("{{ 7*7 }}", "{% for x in range(3) %}x{% endfor %}", "{{ ''.__class__.__mro__ }}"):
        assert texts(compiled.render({"name": payload}))[0] == payload


def test_template_cannot_reach_python_internals():
    compiled = engine.compile_template(make_docx("{{ name.__class__.__mro__[1].__subclasses__() }}"))
    with pytest.raises(ValidationError, match="unerlaubten Zugriff"):
        compiled.render({"name": "x"})
    # Attribute access to dunders is simply undefined in the sandbox: nothing leaks.
    compiled = engine.compile_template(make_docx("[{{ name.__class__ }}]"))
    assert texts(compiled.render({"name": "x"}))[0] == "[]"


def test_errors_while_rendering_real_letters_are_german_validation_errors():
    """Data the sample check could not foresee: {{ 100 / felder.anzahl }} with anzahl 0."""
    compiled = engine.compile_template(make_docx("Anteil: {{ 100 / felder.anzahl }}"))
    assert texts(compiled.render({"felder": {"anzahl": 4}}))[0] == "Anteil: 25.0"
    with pytest.raises(ValidationError, match="lässt sich nicht mit diesen Angaben füllen: Division durch null"):
        compiled.render({"felder": {"anzahl": 0}})


def test_line_breaks_in_data_become_word_line_breaks():
    compiled = engine.compile_template(make_docx("{{ adresse }}"))
    letter = compiled.render({"adresse": "Fürstenwall 25\n40219 Düsseldorf"})
    assert texts(letter)[0] == "Fürstenwall 25\n40219 Düsseldorf"
    assert b"<w:br/>" in zipfile.ZipFile(io.BytesIO(letter)).read("word/document.xml")


def test_not_a_docx_is_refused():
    with pytest.raises(ValidationError, match="kein Word-Dokument im DOCX-Format"):
        engine.compile_template(b"%PDF-1.7 nope")
    with pytest.raises(ValidationError, match="leer"):
        engine.compile_template(b"")


def test_zip_without_document_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hallo.txt", "kein Word")
    with pytest.raises(ValidationError, match="word/document.xml fehlt"):
        engine.compile_template(buffer.getvalue())


def test_broken_zip_is_refused():
    data = make_docx("Hallo {{ name }}")
    with pytest.raises(ValidationError, match="beschädigt"):
        engine.compile_template(data[: len(data) // 2])
    corrupted = bytearray(data)
    start = data.index(b"word/document.xml") + 40  # inside the compressed document
    corrupted[start:start + 20] = b"\x00" * 20
    with pytest.raises(ValidationError, match="beschädigt"):
        engine.compile_template(bytes(corrupted))


def test_jinja_syntax_error_names_the_tag_and_the_paragraph():
    template = make_docx("Erster Absatz", "Sehr geehrte {{ anrede } und so weiter", "Dritter")
    with pytest.raises(ValidationError) as error:
        engine.compile_template(template)
    message = str(error.value)
    assert "{{ anrede }" in message
    assert "Haupttext, Absatz 2" in message
    assert "Sehr geehrte {{ anrede } und so weiter" in message


def test_unclosed_block_is_a_syntax_error_too():
    with pytest.raises(ValidationError) as error:
        engine.compile_template(make_docx("Text", "{%p if kreis %}", "Text"))
    assert str(error.value).startswith("Fehler im Platzhalter „{%p if kreis %}“ (Haupttext, Absatz 2): der Block wird "
                                       "nicht geschlossen; es fehlt „{% endif %}“")


def test_unknown_placeholders_are_warned_about():
    report = engine.validate_template(make_docx("{{ anrede }} {{ betref }} {{ felder.x }}"), {"anrede": "Hallo"})
    assert [str(u) for u in report.unknown] == ["betref (meinten Sie betreff?)"]
    assert "betref (meinten Sie betreff?)" in report.warnings[0]
    assert report.fields == ["x"] and "felder.x" in report.warnings[1]


def test_condition_across_a_table_boundary_gives_a_broken_document_error():
    # {% if %} in a table cell, {% endif %} after the table: when false, Jinja cuts the table's closing tags.
    document = Document()
    document.add_table(rows=1, cols=1).cell(0, 0).text = "A {% if x %}"
    document.add_paragraph("{% endif %} B")
    buffer = io.BytesIO()
    document.save(buffer)
    with pytest.raises(ValidationError, match="kein gültiges Word-Dokument"):
        engine.validate_template(buffer.getvalue(), {"x": False})


def test_write_letters_zip_streams_and_names_uniquely(tmp_path):
    compiled = engine.compile_template(make_docx("{{ n }}"))
    target = tmp_path / "briefe.zip"
    count = engine.write_letters_zip(target, (("Brief.docx", compiled.render({"n": str(i)})) for i in range(3)))
    assert count == 3
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == ["Brief.docx", "Brief (2).docx", "Brief (3).docx"]
        assert texts(archive.read("Brief (3).docx"))[0] == "2"


def test_document_text_for_the_preview():
    compiled = engine.compile_template(make_docx("Hallo {{ n }}", header="Kopf"))
    text = engine.document_text(compiled.render({"n": "Welt"}))
    assert text.index("Kopf") < text.index("Hallo Welt")


def test_table_row_loops_like_docxtpl():
    document = Document()
    table = document.add_table(rows=3, cols=2)
    table.cell(0, 0).text = "{%tr for p in personen %}"
    table.cell(1, 0).text = "{{ p.name }}"
    table.cell(1, 1).text = "{{ p.funktion }}"
    table.cell(2, 0).text = "{%tr endfor %}"
    buffer = io.BytesIO()
    document.save(buffer)
    letter = engine.compile_template(buffer.getvalue()).render(
        {"personen": [{"name": "Anton Rütten", "funktion": "Abteilung IV"}, {"name": "Dr. Norbert Reichel", "funktion": "Gruppe 32"}]})
    rows = [[cell.text for cell in row.cells] for row in Document(io.BytesIO(letter)).tables[0].rows]
    assert rows == [["Anton Rütten", "Abteilung IV"], ["Dr. Norbert Reichel", "Gruppe 32"]]


def test_zip_bomb_is_refused_before_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (engine.MAX_UNPACKED_BYTES + 1))
    with pytest.raises(ValidationError, match="entpackt zu groß"):
        engine.compile_template(buffer.getvalue())


@pytest.mark.parametrize("tag, reason, technical", [
    ("{{ 1/0 }}", "Division durch null", "ZeroDivisionError"),
    ("{{ 1 + 'a' }}", "Werte passen nicht zusammen, z. B. Zahl und Text", "TypeError"),
    ("{% for x in range(10**9) %}x{% endfor %}", "eine Zahl oder ein Bereich ist zu groß", "OverflowError"),
])
def test_errors_while_filling_in_the_sample_are_german_validation_errors(tag, reason, technical):
    with pytest.raises(ValidationError) as error:
        engine.validate_template(make_docx("Sehr geehrte Damen und Herren,", f"Betrag: {tag}"), {})
    message = str(error.value)
    assert message.startswith(f"Die Vorlage lässt sich nicht mit Beispieldaten füllen: {reason} (Haupttext, Absatz 2).")
    assert technical in message and error.value.field == "file"


def test_error_while_filling_in_a_header_names_the_header():
    with pytest.raises(ValidationError, match=r"Division durch null \(Kopfzeile, Absatz 1\)"):
        engine.validate_template(make_docx("Text", header="Seite {{ 2 // 0 }}"), {})


def test_broken_template_upload_shows_the_error_instead_of_a_500(staff_client):
    data = make_docx("Hallo", "{{ 1/0 }}")
    response = staff_client.submit("/rundschreiben/vorlagen/neu", {"name": "Kaputt", "description": "", "file": (io.BytesIO(data), "kaputt.docx")},
                                   content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="error-summary"' in page
    assert "Die Vorlage lässt sich nicht mit Beispieldaten füllen: Division durch null (Haupttext, Absatz 2)." in page


def test_title_author_and_language_for_the_record():
    """A user template (python-docx: no title, creator "python-docx", en-US) rendered with properties:
    the core properties name the record, the default language is de-DE; the rest stays as it was."""
    template = make_docx("Hallo {{ name }}")
    compiled = engine.compile_template(template)
    properties = engine.DocumentProperties("Rundschreiben: Förderung & Co – Stadt <Köln>", "Ministerium für X")
    letter = compiled.render({"name": "Anna"}, properties)
    core = Document(io.BytesIO(letter)).core_properties
    assert (core.title, core.author, core.language) == ("Rundschreiben: Förderung & Co – Stadt <Köln>", "Ministerium für X", "de-DE")
    assert core.keywords == Document(io.BytesIO(template)).core_properties.keywords
    assert zipfile.ZipFile(io.BytesIO(letter)).testzip() is None
    # Without properties the template's own core properties stay.
    assert Document(io.BytesIO(compiled.render({"name": "Anna"}))).core_properties.author == "python-docx"
    # A second letter gets its own title (the per-part cache must not hand out the first one).
    other = compiled.render({"name": "Berta"}, engine.DocumentProperties("Rundschreiben: Förderung – Stadt Bonn", "Ministerium für X"))
    assert Document(io.BytesIO(other)).core_properties.title == "Rundschreiben: Förderung – Stadt Bonn"


@pytest.mark.parametrize("styles, expected", [
    # Word's and python-docx's defaults: the language is replaced, the other scripts' languages stay.
    (b'<w:styles x="1"><w:docDefaults><w:rPrDefault><w:rPr><w:sz w:val="22"/><w:lang w:val="en-US" w:eastAsia="en-US" '
     b'w:bidi="ar-SA"/></w:rPr></w:rPrDefault></w:docDefaults></w:styles>',
     b'<w:lang w:val="de-DE" w:eastAsia="en-US" w:bidi="ar-SA"/>'),
    (b'<w:styles><w:docDefaults><w:rPrDefault><w:rPr><w:lang w:eastAsia="zh-CN"/></w:rPr></w:rPrDefault></w:docDefaults></w:styles>',
     b'<w:lang w:val="de-DE" w:eastAsia="zh-CN"/>'),
    (b'<w:styles><w:docDefaults><w:rPrDefault><w:rPr><w:sz w:val="22"/></w:rPr></w:rPrDefault></w:docDefaults></w:styles>',
     b'<w:sz w:val="22"/><w:lang w:val="de-DE"/></w:rPr>'),
    (b'<w:styles><w:docDefaults><w:pPrDefault/></w:docDefaults><w:style/></w:styles>',
     b'<w:docDefaults><w:rPrDefault><w:rPr><w:lang w:val="de-DE"/></w:rPr></w:rPrDefault><w:pPrDefault/>'),
    (b'<w:styles><w:style/></w:styles>', b'main"><w:docDefaults><w:rPrDefault><w:rPr><w:lang w:val="de-DE"/>'),
])
def test_default_language_in_every_shape_of_styles(styles, expected):
    from lxml import etree

    from ki_post.letters.docprops import default_language

    namespaced = styles.replace(b"<w:styles", b'<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"', 1)
    patched = default_language(namespaced)
    assert expected in patched
    assert patched.count(b"<w:lang") == 1
    etree.fromstring(patched)  # still well-formed
