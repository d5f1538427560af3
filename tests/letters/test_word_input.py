"""Templates as Word and LibreOffice write them: entities, typographic quotes, invisible characters,
and error messages that name the character, quote the text and say where it is in Word's terms."""
from __future__ import annotations

import io

import pytest
from docx import Document
from hypothesis import given, settings, strategies as st

from ki_post.errors import ValidationError
from ki_post.letters import engine, wordml
from tests.letters.corpus.build_corpus import (
    SPELL_END, SPELL_START, base_with_header_footer, cell, document_xml, header_xml, para, replace_parts, run, table, textbox,
)
from tests.letters.test_engine import make_docx, texts


def word_docx(*body: str, header: str | None = None) -> bytes:
    data, sect = base_with_header_footer()
    parts = {"word/document.xml": document_xml("".join(body), sect)}
    if header is not None:
        parts["word/header1.xml"] = header_xml("hdr", para(run(header)))
    return replace_parts(data, parts)


def error_of(data: bytes) -> str:
    with pytest.raises(ValidationError) as error:
        engine.validate_template(data)
    return str(error.value)


# -- normalising the inside of a tag ---------------------------------------------------------------
@pytest.mark.parametrize("written, jinja", [
    ("organisation.art == „Kreis“", 'organisation.art == "Kreis"'),
    ("x|default(‚–‘)", "x|default('–')"),
    ("x|default(“n. a.”)", 'x|default("n. a.")'),
    ("«Rundschreiben » ~ x", '"Rundschreiben " ~ x'),
    ("»Rundschreiben« ~ x", '"Rundschreiben" ~ x'),
    ("‹a› ~ x", "'a' ~ x"),
    ("„Kreis\"", '"Kreis"'),  # opened typographically, closed plainly (a half-corrected quote)
    ("„Müller’s“", '"Müller\\u2019s"'),  # an apostrophe of the other family stays text
])
def test_typographic_quotes_become_plain_strings(written, jinja):
    assert wordml.normalise_tag_text(written) == jinja


def test_typographic_quotes_inside_a_plain_string_stay_text():
    compiled = engine.compile_template(make_docx('Zitat: {{ "„Kreis“ und ‚Stadt‘" }}'))
    assert texts(compiled.render({}))[0] == "Zitat: „Kreis“ und ‚Stadt‘"


def test_invisible_and_special_spaces_inside_a_tag():
    assert wordml.normalise_tag_text("\u00a0kon\u00adtakt.\u200bname\u202f") == " kontakt.name "


def test_entities_are_decoded_inside_tags_only():
    xml = '<w:t>A &amp; B {{ x|default(&quot;–&quot;) ~ &apos;&amp;&apos; }} &lt;c&gt; {% if a &lt; b %}</w:t>'
    assert wordml.normalise_tags(xml) == '<w:t>A &amp; B {{ x|default("–") ~ \'&\' }} &lt;c&gt; {% if a &lt; b %}</w:t>'


def test_libreoffice_entities_render_like_the_author_meant():
    # As LibreOffice stores them: &quot; &apos; &amp; &lt; in the document XML.
    data = word_docx(para('<w:r><w:t>{{ x|default(&quot;vier Wochen&quot;) }} / {{ y|default(&apos;–&apos;) }} / '
                          '{{ &quot;A &amp; B&quot; }} / {% if 1 &lt; 2 %}klein{% endif %}</w:t></w:r>'))
    assert texts(engine.compile_template(data).render({}))[0] == "vier Wochen / – / A & B / klein"


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
       quotes=st.sampled_from(["„“", "“”", "‚‘", "‘’", "«»", "»«", "‹›"]))
def test_any_text_in_typographic_quotes_renders_as_that_text(text, quotes):
    """Oracle: the text itself. Whatever the author writes between Word's quotes comes out unchanged
    (unless it contains a quote of the same family, which ends the string as in Word's reading)."""
    family = wordml._DOUBLE if quotes[0] in wordml._DOUBLE else wordml._SINGLE
    plain = '"' if quotes[0] in wordml._DOUBLE else "'"
    text = "".join(c for c in text if c not in family and c != plain and c != "\\" and c not in "\u00ad\u200b\u200c\u200d\u2060\ufeff")
    inner = wordml.normalise_tag_text(f"{quotes[0]}{text}{quotes[1]}")
    env = engine.make_environment()
    from ki_post.letters import sandbox

    with sandbox.budget():
        assert env.from_string("{{" + inner + "}}").render() == env.from_string("{{ t }}").render(t=text)


# -- error messages in the user's terms -------------------------------------------------------------
def test_an_unexpected_character_is_named_and_the_text_around_it_quoted():
    message = error_of(make_docx("Erster Absatz", "Bitte bis {{ felder.frist|default(§) }} antworten."))
    assert "Fehler im Platzhalter „{{ felder.frist|default(§) }}“ (Haupttext, Absatz 2)" in message
    assert "das Zeichen „§“ (Unicode U+00A7) darf hier nicht stehen" in message
    assert "Text an dieser Stelle: „Bitte bis {{ felder.frist|default(§) }} antworten.“" in message


def test_a_quote_that_is_not_closed_is_named():
    message = error_of(make_docx('Kreis: {{ organisation.art == "Kreis“ }}'))
    assert "das Anführungszeichen „\"“ (Unicode U+0022) wird nicht passend geschlossen" in message


def test_paragraphs_are_counted_as_word_shows_them():
    """Every ¶ counts: empty paragraphs, table cells and paragraphs holding only {%p …%} (the old
    count skipped those and said "Absatz 8" for Word's paragraph 13)."""
    document = Document()
    document.add_paragraph("Briefkopf")
    document.add_paragraph("")
    document.add_paragraph("{%p if ist_kreis %}")
    document.add_paragraph("Kreis-Absatz")
    document.add_paragraph("{%p endif %}")
    grid = document.add_table(rows=2, cols=2)
    grid.cell(0, 0).text, grid.cell(0, 1).text = "a", "b"
    grid.cell(1, 0).text, grid.cell(1, 1).text = "c", "d"
    document.add_paragraph("{%p for z in anschrift %}")
    document.add_paragraph("{{ z }}")
    document.add_paragraph("{%p endfor %}")
    document.add_paragraph("Sehr geehrte {{ anrede } und so weiter")
    buffer = io.BytesIO()
    document.save(buffer)
    message = error_of(buffer.getvalue())
    assert "„{{ anrede } und so weiter“ (Haupttext, Absatz 13)" in message  # 5 + 4 cells + 3 + 1
    assert "wird im selben Absatz nicht geschlossen (es fehlt „}}“)" in message


def test_a_place_in_a_table_is_given_as_table_row_column():
    data = word_docx(para(run("Vorweg")), table([cell(para(run("a"))), cell(para(run("b")))],
                                                [cell(para(run("c"))), cell(para(run("{{ 1 + }}")))]))
    assert "(Haupttext, Absatz 5 (Tabelle 1, Zeile 2, Spalte 2))" in error_of(data)  # Vorweg, a, b, c, here


def test_a_place_in_a_text_box_names_the_text_box_and_its_anchor():
    box = textbox("Anschrift", [para(run("Zeile eins")), para(run("{{ kontakt.name) }}"))], 1)
    message = error_of(word_docx(para(run("Erster")), para(box, run("Zweiter"))))
    assert "(Haupttext, Textfeld bei Absatz 2, dort Absatz 2)" in message


def test_the_page_comes_from_words_own_layout():
    """Word stores where it broke the pages (w:lastRenderedPageBreak): the page a user sees."""
    data = word_docx(para(run("Seite eins")),
                     para('<w:r><w:lastRenderedPageBreak/><w:t>Seite zwei beginnt</w:t></w:r>'),
                     para(run("noch Seite zwei")), para('<w:r><w:br w:type="page"/></w:r>'),
                     para(run("Seite drei: {{ betreff|upper( }}")))
    assert "(Haupttext, Seite 3, Absatz 5)" in error_of(data)


def test_headers_are_named_as_word_names_them():
    document = Document()
    document.sections[0].different_first_page_header_footer = True
    document.sections[0].first_page_header.paragraphs[0].text = "{{ 1 + }}"
    document.add_paragraph("Text")
    buffer = io.BytesIO()
    document.save(buffer)
    assert "(Kopfzeile (erste Seite), Absatz 1)" in error_of(buffer.getvalue())


@pytest.mark.parametrize("paragraphs, expected", [
    (["{%p if ist_kreis %}", "A", "{%p endfor %}"],
     "Fehler im Platzhalter „{%p endfor %}“ (Haupttext, Absatz 3): er passt nicht zu „{%p if ist_kreis %}“ "
     "(Haupttext, Absatz 1); dort fehlt vorher „{% endif %}“"),
    (["A", "{%p endif %}"], "Fehler im Platzhalter „{%p endif %}“ (Haupttext, Absatz 2): dieser Platzhalter schließt einen Block"),
    (["{% else %}"], "„else“ steht außerhalb einer passenden Bedingung"),
    (["{% include 'x' %}"], "„include“ wird in Briefvorlagen nicht unterstützt"),
    (["{% iff x %}{% endif %}"], "den Befehl „iff“ gibt es nicht"),
    (["{{ name|gross }}"], "den Filter „gross“ gibt es nicht"),
])
def test_block_and_command_errors_point_to_the_placeholder(paragraphs, expected):
    assert expected in error_of(make_docx(*paragraphs))


def test_split_runs_proofing_marks_and_tracked_changes_make_one_tag():
    data = word_docx(para(run("{"), run("{ kon"), run("takt.nach", bold=True), SPELL_START, run("name"), SPELL_END, run(" }"), run("}")),
                     para(run("{{ organisation."),
                          '<w:del w:id="1" w:author="A" w:date="2016-12-20T10:00:00Z"><w:r><w:delText>stadt</w:delText></w:r></w:del>',
                          run("ort }}")))
    assert texts(engine.compile_template(data).render({"kontakt": {"nachname": "Schmidt"}, "organisation": {"ort": "Kleve"}})) == ["Schmidt", "Kleve"]
