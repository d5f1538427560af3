"""Bounded templates: what a template may ask for is limited before it is allocated, every render
has a budget, and an upload is checked in a child process with memory, CPU and time limits."""
from __future__ import annotations

import io
import multiprocessing
import resource
import struct
import zipfile

import pytest
from sqlalchemy import func, select

from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.letters import engine, isolation
from ki_post.letters.models import LetterTemplateVersion
from tests.letters.test_engine import make_docx, texts

BOMBS = [
    ("{{ 'x' * 10**9 }}", "ein Text oder eine Liste würde zu lang (1.000.000.000 Zeichen bzw. Einträge"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "zu viele Wiederholungen oder Aufrufe (mehr als 500.000 je Brief)"),
    ("{{ (9**(9**9)) % 10 }}", "eine Zahl würde zu groß"),
    ("{{ 'x'|center(10**9) }}", "eine Breitenangabe ist zu groß"),
    ("{{ 'x'.ljust(10**9) }}", "eine Breitenangabe ist zu groß"),
    ("{{ '{:>999999999}'.format(1) }}", "eine Formatangabe ist zu breit"),
    ("{{ '%999999999d' % 1 }}", "eine Formatangabe ist zu breit"),
    ("{{ '%999999999d'|format(1) }}", "eine Formatangabe ist zu breit"),
    ("{{ ('a' * 100000)|replace('a', 'a' * 100000) }}", "ein Text oder eine Liste würde zu lang"),
    ("{{ range(100000)|join('x' * 100000) }}", "ein Text oder eine Liste würde zu lang"),
    ("{{ [1]|batch(10**9, 'x')|list }}", "ein Text oder eine Liste würde zu lang"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "ein Text oder eine Liste würde zu lang"),
    ("{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}", "eine Zahl würde zu groß"),
    ("{% for i in range(100000) %}" + "Lorem ipsum dolor sit amet " * 10 + "{% endfor %}", "die Vorlage erzeugt zu viel Text"),
    ("{% macro m() %}{% for i in range(90000) %}{{ 'y' * 900 }}{% endfor %}{% endmacro %}{{ m() }}",
     "die Vorlage erzeugt zu viel Text"),
    ("{{ [[1] * 1000] * 1000|sum(start=[]) }}", "sum() darf nur Zahlen addieren"),
]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("tag, reason", BOMBS)
def test_a_runaway_template_ends_with_a_german_reason_and_little_memory(tag, reason):
    before = peak_mb()
    with pytest.raises(ValidationError) as error:
        engine.validate_template(make_docx("Sehr geehrte Damen und Herren,", tag))
    message = str(error.value)
    assert message.startswith("Die Vorlage lässt sich nicht mit Beispieldaten füllen: ") and reason in message, message
    assert "(Haupttext, Absatz 2)" in message and error.value.field == "file"
    assert peak_mb() - before < 150  # the unbounded versions take 1 GB and more


def test_recursion_without_loops_is_stopped_by_the_time_budget():
    tag = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    compiled = engine.compile_template(make_docx(tag))
    with pytest.raises(ValidationError, match=r"die Berechnung dauert zu lange \(mehr als 0.5 Sekunden je Brief\)"):
        compiled.render_parts({}, seconds=0.5)


@pytest.mark.parametrize("tag, message", [
    ("{% set l = [1] %}{{ l.append(2) }}", "unerlaubten Zugriff"),  # templates cannot change data
    ("{{ (1).to_bytes(10**6, 'big') }}", "unerlaubten Zugriff"),
    ("{{ 'a\\tb'.expandtabs(10**9) }}", "unerlaubten Zugriff"),
    ("{{ lipsum(10**6) }}", "ein Platzhalter löst einen Fehler aus"),
])
def test_growing_methods_outside_the_allowed_list_are_refused(tag, message):
    with pytest.raises(ValidationError, match=message):
        engine.validate_template(make_docx(tag))


@pytest.mark.parametrize("tag", ["{{ name|safe }}", "{{ name|urlize }}", "{{ {'a': name}|xmlattr }}"])
def test_filters_that_would_insert_raw_markup_do_not_exist(tag):
    with pytest.raises(ValidationError, match="den Filter „(safe|urlize|xmlattr)“ gibt es nicht"):
        engine.compile_template(make_docx(tag))


def test_ordinary_letters_still_work_with_all_the_usual_means():
    tag = ("{{ '%.2f'|format(2.5) }} {{ '{:>5}'.format('a') }} {{ range(3)|join(',') }} {{ 'ab' * 2 }} {{ 2 ** 10 }} "
           "{{ [1, 2] + [3] }} {{ 'x'|center(5) }}|{% for p in personen %}{{ loop.index }}:{{ p.name|upper }} {% endfor %}"
           "{{ personen|map(attribute='name')|join(' & ') }}")
    letter = engine.compile_template(make_docx(tag)).render({"personen": [{"name": "Anna"}, {"name": "Ben"}]})
    assert texts(letter)[0] == "2.50     a 0,1,2 abab 1024 [1, 2, 3]   x  |1:ANNA 2:BEN Anna & Ben"


def test_docxtpl_objects_in_the_data_are_refused_in_german_not_a_corrupt_file():
    from docxtpl import InlineImage, RichText

    compiled = engine.compile_template(make_docx("Link: {{ link }}"))
    link = RichText("Seite")
    link.xml = '<w:hyperlink r:id="rId99"><w:r><w:t>Seite</w:t></w:r></w:hyperlink>'  # what url_id= produces
    with pytest.raises(ValidationError, match=r"formatierter Text \(RichText\) mit Verweis \(Hyperlink\) wird in Briefvorlagen "
                                              r"nicht unterstützt"):
        compiled.render({"link": link})
    with pytest.raises(ValidationError, match=r"ein Bild \(InlineImage\) wird in Briefvorlagen nicht unterstützt"):
        compiled.render({"link": InlineImage(None, "logo.png")})


@pytest.mark.parametrize("tag, prefix", [("{{r kontakt.name }}", "r"), ("{{p absatz }}", "p")])
def test_docxtpl_object_tags_are_refused_at_upload(tag, prefix):
    with pytest.raises(ValidationError) as error:
        engine.compile_template(make_docx("Text", f"Name: {tag}"))
    message = str(error.value)
    assert f"Fehler im Platzhalter „{tag}“ (Haupttext, Absatz 2)" in message
    assert f"„{{{{{prefix} … }}}}“ erwartet" in message and "docxtpl-Objekte wie RichText oder InlineImage werden nicht unterstützt" in message


# -- the package: caps checked before inflating -------------------------------------------------------
def bomb_docx(size: int) -> bytes:
    """A small DOCX whose body unpacks to ``size`` bytes, written in chunks (no big string here)."""
    template = zipfile.ZipFile(io.BytesIO(make_docx("x")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in template.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info.filename, template.read(info.filename))
        with archive.open("word/document.xml", "w") as member:
            member.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{{ x }}')
            chunk = b" " * (1024 * 1024)
            for _ in range(size // len(chunk)):
                member.write(chunk)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buffer.getvalue()


def test_a_docx_that_unpacks_to_157_mb_is_refused_before_unpacking():
    data = bomb_docx(157 * 1024 * 1024)
    assert len(data) < 1024 * 1024
    before = peak_mb()
    with pytest.raises(ValidationError, match=r"entpackt zu groß \(15\d MB, höchstens 50 MB\)"):
        engine.compile_template(data)
    assert peak_mb() - before < 20


def test_a_filled_in_part_is_capped_on_its_own():
    with pytest.raises(ValidationError, match=r"Der Teil „Haupttext“ der DOCX-Datei ist entpackt zu groß \(6 MB, höchstens 5 MB\)"):
        engine.compile_template(bomb_docx(6 * 1024 * 1024))


def test_a_zip_that_lies_about_its_sizes_is_refused_without_inflating_it():
    data = bytearray(bomb_docx(40 * 1024 * 1024))
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo("word/document.xml")
    # Declare 1 KB in the local and the central header; the stream still inflates to 40 MB.
    struct.pack_into("<L", data, info.header_offset + 22, 1024)
    position = 0
    while True:
        position = bytes(data).index(b"PK\x01\x02", position)
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46:position + 46 + name_length]) == b"word/document.xml":
            struct.pack_into("<L", data, position + 24, 1024)
            break
        position += 4
    before = peak_mb()
    with pytest.raises(ValidationError, match="beschädigt"):
        engine.compile_template(bytes(data))
    assert peak_mb() - before < 20


# -- the upload check in a child process ----------------------------------------------------------------
def test_the_child_is_stopped_after_its_time_and_nothing_keeps_running():
    slow = make_docx("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}")
    with pytest.raises(isolation.CheckFailed, match=r"hat zu lange gedauert \(mehr als 1 Sekunden\)"):
        isolation.check_template(slow, seconds=1, render_seconds=60)
    assert not multiprocessing.active_children()


def test_the_child_has_a_memory_limit():
    # Within every per-operation limit, but 15 strings of 4 MB each (a character outside the BMP).
    strings = ", ".join(f"a ~ '{n}'" for n in range(15))
    hungry = make_docx("{% set a = '\U0001d11e' * 999990 %}{% set l = [" + strings + "] %}{{ l|length }}")
    with pytest.raises(isolation.CheckFailed, match="zu viel Speicher"):
        isolation.check_template(hungry, memory=32 * 1024 * 1024)
    assert isolation.check_template(hungry).warnings == []  # with the normal limit it is fine


def test_the_child_reports_what_it_found():
    result = isolation.check_template(make_docx("{{ kontakt.nachnam }} {{ felder.frist }} {{ felder.ort|default('Düsseldorf') }}"))
    assert result.unknown == ["kontakt.nachnam (meinten Sie kontakt.nachname?)"]
    assert result.fields == ["frist", "ort"]
    assert result.warnings[0] == ("Unbekannte Platzhalter (bleiben im Brief leer, bitte Schreibweise prüfen): "
                                  "kontakt.nachnam (meinten Sie kontakt.nachname?)")


def upload(client, data: bytes):
    return client.submit("/rundschreiben/vorlagen/neu", {"name": "Bombe", "description": "", "file": (io.BytesIO(data), "b.docx")},
                         content_type="multipart/form-data")


@pytest.mark.parametrize("name, data, message", [
    ("string", make_docx("{{ 'x' * 10**9 }}"), "ein Text oder eine Liste würde zu lang"),
    ("ranges", make_docx("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
     "zu viele Wiederholungen oder Aufrufe"),
    ("power", make_docx("{{ (9**(9**9)) % 10 }}"), "eine Zahl würde zu groß"),
    ("zip", None, "MB, höchstens 50 MB). Bitte große Bilder verkleinern oder entfernen."),
])
def test_bomb_uploads_answer_in_german_and_the_web_process_stays(staff_client, name, data, message):
    data = data if data is not None else bomb_docx(157 * 1024 * 1024)
    before = peak_mb()
    response = upload(staff_client, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="error-summary"' in page and message in page
    assert peak_mb() - before < 50  # whatever the check cost was paid by the child
    assert db.session.scalar(select(func.count(LetterTemplateVersion.id))) == 0
    assert staff_client.get("/rundschreiben/").status_code == 200


def test_an_upload_is_checked_in_the_child_not_in_the_web_process(staff_client, monkeypatch):
    """The child's clock (here 1 s) ends the check, not the sandbox's own (3 s in-process, 5 s in the child)."""
    monkeypatch.setattr(isolation, "CHECK_SECONDS", 1.0)
    slow = make_docx("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}")
    page = upload(staff_client, slow).get_data(as_text=True)
    assert "Die Prüfung der Vorlage hat zu lange gedauert (mehr als 1 Sekunden) und wurde abgebrochen." in page
    assert db.session.scalar(select(func.count(LetterTemplateVersion.id))) == 0
