"""Address labels and window-envelope sheets: read back from the PDF, every address inside its label."""
from __future__ import annotations

import pytest

from ki_post.extensions import db
from ki_post.letters.sheets import STOCKS
from ki_post.recipients.addressing import address_lines
from ki_post.recipients.models import Contact, Organisation, Verteiler
from tests.letters.sheet_pdf import (by_label, fonts_embedded, in_rect, label_text, needs_pdf_tools, pdfa_facts, squeeze,
                                     words)

pytestmark = [needs_pdf_tools, pytest.mark.slow]

LONG_NAME = ("Prof. Dr.", "Maximiliane Theodora", "von und zu Hohenzollern-Sigmaringen-Wittgenstein")
LONG_AUTHORITY = "Kreisverwaltung des Landkreises Sankt Katharinen-Hohenzollern-Sigmaringen am Rhein\nKommunales Integrationszentrum"


@pytest.fixture
def verteiler(app):
    """26 contacts with an address (two pages of 3 × 8), one with a very long name and authority, one without address."""
    contacts = []
    long_org = Organisation(name="Kreis Sankt Katharinen", kind="kreis", authority=LONG_AUTHORITY,
                            street="Hohenzollern-Sigmaringen-Wittgenstein-Straße 123a", postcode="53562",
                            town="Sankt Katharinen (Landkreis Neuwied)")
    title, first, last = LONG_NAME
    contacts.append(Contact(anrede="frau", academic_title=title, first_name=first, last_name=last,
                            office_title="Kreisdirektorin", email="lang@kreis.example", organisation=long_org))
    for k in range(25):
        org = Organisation(name=f"Stadt Musterstadt {k}", kind="kreisfreie_stadt", authority=f"Stadt Musterstadt {k}\nDer Oberbürgermeister",
                           street=f"Rathausplatz {k + 1}", postcode=f"4{k:04d}", town=f"Musterstadt {k}")
        contacts.append(Contact(anrede="herr" if k % 2 else "frau", first_name="Kim", last_name=f"Beispiel{k}",
                                email=f"k{k}@stadt.example", organisation=org))
    contacts.append(Contact(first_name="Ohne", last_name="Anschrift", email="ohne@example.org"))
    db.session.add(Verteiler(name="Post", members=contacts))
    db.session.commit()
    return contacts


def test_labels_cli_every_address_inside_its_label(runner, verteiler, tmp_path):
    out = tmp_path / "etiketten.pdf"
    result = runner.invoke(args=["letters", "labels", "--list", "Post", str(out)])
    assert result.exit_code == 0, result.output
    assert "26 Etiketten" in result.output
    assert "Ohne Anschrift" in result.output  # named on stderr: no label without a postal address
    data = out.read_bytes()
    stock = STOCKS["etikett-70x37"]
    pages, found = words(data)
    assert len(pages) == 2 and abs(pages[0].width - 210) < 0.5 and abs(pages[0].height - 297) < 0.5
    groups = by_label(found, stock)
    assert len(groups) == 26
    expected = {squeeze("".join(address_lines(contact))) for contact in verteiler[:-1]}
    assert {label_text(group) for group in groups.values()} == expected  # nothing cut, nothing mixed up
    for (page, index), group in groups.items():
        rect = stock.label_rect(index)
        x0, y0, x1, y1 = rect
        inner = (x0 + stock.pad[0], y0 + stock.pad[1], x1 - stock.pad[2], y1 - stock.pad[3])
        for word in group:
            assert in_rect(word, inner, 0.3), (word, inner)  # nothing cut, nothing in the label's margin
        # Left aligned at the label's inner margin: the label sits where the stock says (±1 mm).
        assert abs(min(word.x0 for word in group) - (rect[0] + stock.pad[0])) < 1.0, (page, index)
    long_label = next(group for group in groups.values() if "Hohenzollern-Sigmaringen-Wittgenstein" in label_text(group))
    assert "Kreisdirektorin" in label_text(long_label)
    assert all(flag == "yes" for _name, flag in fonts_embedded(data))
    facts = pdfa_facts(data)
    assert facts["part"] == "2" and facts["struct"] and facts["lang"] == "de-DE"
    assert facts["title"] == "Adressetiketten: Post"
    assert facts["author"].startswith("Ministerium")


def test_window_envelope_address_in_din_5008_field(runner, verteiler, tmp_path):
    out = tmp_path / "fenster.pdf"
    result = runner.invoke(args=["letters", "labels", "--list", "Post", "--stock", "fensterumschlag-din-lang", str(out)])
    assert result.exit_code == 0, result.output
    pages, found = words(out.read_bytes())
    assert len(pages) == 26
    expected = {squeeze("".join(address_lines(contact))) for contact in verteiler[:-1]}
    seen = set()
    for number in range(len(pages)):
        on_page = [word for word in found if word.page == number]
        return_line = [word for word in on_page if word.y1 < 52]
        address = [word for word in on_page if word.y0 > 52]
        assert squeeze("".join(w.text for w in return_line)) == squeeze("MAIS NRW, 40190 Düsseldorf")
        for word in return_line:  # DIN-06: Rücksendeangabe zone y 45–50 mm (Form B)
            assert in_rect(word, (25, 45, 105, 50), 0.3), word
        seen.add(label_text(address))
        for word in address:  # DIN-07: Anschriftzone x 25–105, y 62.7–90 mm (DIN-08: text from 25 mm)
            assert in_rect(word, (25, 62.7, 105, 90), 0.5), word
        assert abs(min(word.x0 for word in address) - 25) < 1.0
    assert seen == expected  # one sheet per address, each complete


def test_label_download_for_reading_role_and_link_on_verteiler_page(client, make_user, verteiler):
    make_user("admin", "admin@ministerium.example")
    client.login(make_user("lesen").email)
    listing = db.session.query(Verteiler).filter_by(name="Post").one()
    page = client.get(f"/verteiler/listen/{listing.id}").get_data(as_text=True)
    url = f"/rundschreiben/verteiler/{listing.id}/etiketten.pdf"
    assert url in page and f"{url}?bogen=fensterumschlag-din-lang" in page
    response = client.get(url + "?bogen=etikett-70x36")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "etiketten-verteiler" in response.headers["Content-Disposition"]
    _pages, found = words(response.data)
    assert len(by_label(found, STOCKS["etikett-70x36"])) == 26
    wrong = client.get(url + "?bogen=unbekannt")
    assert wrong.status_code == 302  # back to the Verteiler page with the German message
    assert "Unbekannter Etikettenbogen" in client.get(wrong.headers["Location"]).get_data(as_text=True)
