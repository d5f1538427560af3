"""The compose preview as page images: cache by content hash, recipient navigation and search, fallback."""
from __future__ import annotations

import re
import shutil
import struct
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import select

from ki_post.letters import pages, pdf, services
from ki_post.recipients.models import Contact
from tests.core.test_access_walk import snapshot
from tests.letters.test_views import compose_data

needs_binaries = pytest.mark.skipif(not pdf.pdf_available() or not shutil.which("pdftoppm"),
                                    reason="LibreOffice oder pdftoppm fehlt (apt-get install libreoffice-writer-nogui poppler-utils)")
IMAGE = re.compile(r'<img class="preview-page" src="([^"]+)"[^>]*alt="([^"]+)"', re.S)


@pytest.fixture
def conversions(monkeypatch):
    """Counts LibreOffice runs; the real conversion still happens."""
    calls: list[int] = []
    real = pdf.convert_to_pdf

    def counting(documents, **kwargs):
        calls.append(len(documents))
        return real(documents, **kwargs)

    monkeypatch.setattr(pages.pdf, "convert_to_pdf", counting)
    return calls


@pytest.fixture
def without_binaries(monkeypatch, tmp_path):
    """No LibreOffice and no pdftoppm on this server: an empty PATH."""
    empty = tmp_path / "leer"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("KI_POST_SOFFICE", raising=False)


def preview(client, **extra):
    data = compose_data(client, action="preview", **extra)
    response = client.submit("/rundschreiben/erstellen", data)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def contacts_in_order():
    """The order of the preview: the Verteiler's resolution."""
    from ki_post.recipients import services as recipients
    from ki_post.recipients.models import Verteiler

    verteiler = services.db.session.scalar(select(Verteiler).where(Verteiler.name == "Alle KI-Dezernate"))
    return recipients.resolve_recipients(verteiler_id=verteiler.id, filters=None, contact_ids=[])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@needs_binaries
def test_preview_is_a_page_image_converted_once_per_letter(staff_client, demo, conversions, app):
    page = preview(staff_client)
    src, alt = IMAGE.search(page).groups()
    first = contacts_in_order()[0]
    pages_total = int(re.search(r"Seite 1 von (\d+)", alt).group(1))
    assert alt == f"Seite 1 von {pages_total} des Briefs an {first.full_name}, {first.organisation.name}"
    assert conversions == [1]
    image = staff_client.get(src)
    assert image.status_code == 200 and image.mimetype == "image/png"
    width, height = png_size(image.data)
    assert width == 827 and height in (1169, 1170)  # A4 at 100 dpi
    assert "<details" in page and "Sehr geehrte" in page  # the text alternative

    # The same letter again (another click on "Vorschau", the picture fetched again): no new conversion.
    assert IMAGE.search(preview(staff_client)).group(1) == src
    assert staff_client.get(src).data == image.data
    assert conversions == [1]
    # Another recipient is another letter; going back to the first converts nothing.
    second = preview(staff_client, index="1")
    assert "Vorschau: Brief 2 von 53" in second and IMAGE.search(second).group(1) != src
    assert conversions == [1, 1]
    preview(staff_client, index="0")
    assert conversions == [1, 1]
    if pages_total > 1:
        more = preview(staff_client, aktuell="0", seite="2")
        src2, alt2 = IMAGE.search(more).groups()
        assert alt2.startswith(f"Seite 2 von {pages_total} des Briefs an {first.full_name}")
        assert png_size(staff_client.get(src2).data)[0] == 827 and conversions == [1, 1]
    # Unknown letters and pages are a 404, never a conversion.
    key = src.split("/")[-2]
    assert staff_client.get(f"/rundschreiben/vorschau/{key}/seite-{pages_total + 1}.png").status_code == 404
    assert staff_client.get(f"/rundschreiben/vorschau/{'0' * 64}/seite-1.png").status_code == 404
    assert staff_client.get("/rundschreiben/vorschau/..%2F..%2Fsecret/seite-1.png").status_code == 404
    assert conversions == [1, 1]


@needs_binaries
def test_a_reader_sees_the_page_and_nothing_changes(client, make_user, demo, conversions):
    make_user("admin")
    client.login(make_user("lesen").email)
    before = snapshot()
    data = compose_data(client, action="preview")
    page = client.submit("/rundschreiben/vorschau", data, form_url="/rundschreiben/erstellen").get_data(as_text=True)
    src = IMAGE.search(page).group(1)
    assert client.get(src).status_code == 200
    assert snapshot() == before


@needs_binaries
def test_the_cache_survives_a_lost_pdf(staff_client, demo, conversions, app):
    """Only the DOCX is left (say the PDF was cleaned away): the picture route makes it again, once."""
    src = IMAGE.search(preview(staff_client)).group(1)
    key = src.split("/")[-2]
    (pages.cache_dir() / f"{key}.pdf").unlink()
    assert staff_client.get(src).status_code == 200 and conversions == [1, 1]
    assert staff_client.get(src).status_code == 200 and conversions == [1, 1]


def test_without_libreoffice_the_text_preview_stays(staff_client, demo, without_binaries):
    page = preview(staff_client, index="2")
    assert "Vorschau: Brief 3 von 53" in page and "preview-page" not in page
    assert "Seitenansicht braucht LibreOffice" in page
    assert re.search(r"<details open>\s*<summary>Text des Briefs", page) and "Sehr geehrte" in page


def test_a_busy_converter_gives_the_text_not_a_wait(staff_client, demo, app):
    if not pages.available():
        pytest.skip("LibreOffice oder pdftoppm fehlt")
    app.config["PREVIEW_TIMEOUT"] = 0.2
    assert pages._convert_lock.acquire(timeout=5)
    try:
        page = preview(staff_client)
    finally:
        pages._convert_lock.release()
    assert "gerade ausgelastet" in page and "preview-page" not in page and "Sehr geehrte" in page


def test_next_previous_and_search_choose_the_recipient(staff_client, demo, without_binaries):
    contacts = contacts_in_order()
    heading = re.compile(r"Vorschau: Brief (\d+) von 53</h2>\s*<p class=\"preview-recipient\">An ([^<]+)</p>")

    def shown(page):
        number, name = heading.search(page).groups()
        return int(number) - 1, name

    first = preview(staff_client)
    assert shown(first) == (0, f"{contacts[0].full_name}, {contacts[0].organisation.name}")
    assert 'name="index" value="1"' in first and "Vorheriger Brief" not in first
    assert shown(preview(staff_client, index="1"))[0] == 1
    last = preview(staff_client, index="52")
    assert shown(last)[0] == 52 and "Nächster Brief" not in last and 'name="index" value="51"' in last
    # Search by Kommune and by surname, in any case; the index of a button wins over the box.
    target = contacts[37]
    assert shown(preview(staff_client, suche=target.organisation.name.upper(), suchen="1"))[0] == 37
    assert shown(preview(staff_client, suche=target.last_name, aktuell="3"))[0] == contacts.index(
        next(c for c in contacts if target.last_name.casefold() in f"{c.full_name} {c.organisation.name}".casefold()))
    assert shown(preview(staff_client, suche=target.organisation.name, index="4"))[0] == 4
    # A page button keeps the recipient even with text left in the box.
    assert shown(preview(staff_client, suche=target.organisation.name, aktuell="5", seite="2"))[0] == 5
    # Nothing found: the recipient stays and the page says so.
    page = preview(staff_client, suche="Atlantis", aktuell="6", suchen="1")
    assert shown(page)[0] == 6 and "passt zu „Atlantis“" in page


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.text(alphabet="abcAÄßx ", min_size=1, max_size=6), min_size=1, max_size=8),
       term=st.text(alphabet="abcAÄßx ", min_size=1, max_size=3), start=st.integers(0, 10))
def test_search_finds_the_first_match_from_start(names, term, start):
    contacts = [SimpleNamespace(full_name=name, organisation=None) for name in names]
    found = services.find_recipient(contacts, term, start % len(contacts))
    needle = " ".join(term.split()).casefold()
    matches = [i for i, name in enumerate(names) if needle and needle in name.casefold()]
    if not matches:
        assert found is None
    else:
        begin = start % len(contacts)
        assert found == min(matches, key=lambda i: (i - begin) % len(contacts))


def test_the_cache_keeps_the_newest_letters(app):
    import os

    app.config["PREVIEW_CACHE_LETTERS"] = 2
    folder = pages.cache_dir()
    for age, key in enumerate(("c" * 64, "b" * 64, "a" * 64)):  # c is the oldest
        for name in (f"{key}.docx", f"{key}.pdf", f"{key}-1.png"):
            (folder / name).write_bytes(b"x")
            os.utime(folder / name, (1_000_000 + age, 1_000_000 + age))
    pages._prune(folder)
    assert sorted(path.name[:1] for path in folder.iterdir()) == ["a", "a", "a", "b", "b", "b"]
