"""Name badges and table cards: read back from the PDF, every name whole and inside its badge."""
from __future__ import annotations

import io

import pytest
import pikepdf
import segno

from ki_post.events.badges import WRITE_ON_LINE, badges_pdf
from ki_post.events.models import InvitationState
from ki_post.extensions import db
from ki_post.letters.sheets import STOCKS
from ki_post.recipients.models import Contact, Organisation
from tests.letters.sheet_pdf import (by_label, fonts_embedded, gray_page, image_rects, in_rect, label_text, needs_pdf_tools,
                                     pdfa_facts, squeeze, words)

pytestmark = [needs_pdf_tools, pytest.mark.slow]

LONG_NAME = "Prof. Dr. Maximiliane Theodora von und zu Hohenzollern-Sigmaringen-Wittgenstein"
LONG_ORG = "Gemeindeverwaltung Sankt Katharinen-Hohenzollern-Sigmaringen im Landkreis Neuwied am Rhein"
LONG_FUNCTION = "Beigeordnete für Bildung, Jugend, Integration, Sport und Kultur"


@pytest.fixture
def event(published):
    """Seven invitations: six accepted (one with a very long name and Kommune, one with two companions), one declined."""
    event = published(6)
    org = Organisation(name=LONG_ORG, kind="gemeinde")
    contact = Contact(anrede="frau", academic_title="Prof. Dr.", first_name="Maximiliane Theodora",
                      last_name="von und zu Hohenzollern-Sigmaringen-Wittgenstein", function=LONG_FUNCTION,
                      email="lang@gemeinde.example", organisation=org)
    db.session.add(contact)
    db.session.flush()
    from ki_post.events import services

    services.add_invitations(event, [contact])
    for number, invitation in enumerate(event.invitations):
        invitation.state = InvitationState.ABGESAGT if number == 1 else InvitationState.ZUGESAGT
    event.invitations[2].companions = 2
    for invitation in event.invitations:
        if invitation.contact_id:
            db.session.get(Contact, invitation.contact_id).function = db.session.get(Contact, invitation.contact_id).function or "Leitung KI"
    db.session.commit()
    return event


def _accepted_names(event) -> list[str]:
    return [i.name for i in event.invitations if i.state == InvitationState.ZUGESAGT]


def check_sheet(data: bytes, stock, *, centred: bool = True) -> dict:
    pages, found = words(data)
    groups = by_label(found, stock)
    for (_page, index), group in groups.items():
        x0, y0, x1, y1 = stock.label_rect(index)
        inner = (x0 + stock.pad[0], y0 + stock.pad[1], x1 - stock.pad[2], y1 - stock.pad[3])
        for word in group:
            assert in_rect(word, inner, 0.3), (word, inner)  # nothing cut, nothing in the margin
        if centred:  # the label is where the stock says: text centred on it (±1 mm)
            left, right = min(w.x0 for w in group), max(w.x1 for w in group)
            top, bottom = min(w.y0 for w in group), max(w.y1 for w in group)
            assert abs((left + right) / 2 - (x0 + x1) / 2) < 1.0, (index, left, right)
            assert abs((top + bottom) / 2 - (y0 + y1) / 2) < 1.5, (index, top, bottom)
    assert all(flag == "yes" for _name, flag in fonts_embedded(data))
    return {"pages": pages, "groups": groups, "facts": pdfa_facts(data)}


def test_badges_cli_two_by_four(runner, event, tmp_path):
    out = tmp_path / "schilder.pdf"
    result = runner.invoke(args=["events", "badges", str(event.id), str(out)])
    assert result.exit_code == 0, result.output
    assert "8 Namensschilder" in result.output  # 6 accepted + 2 companions
    stock = STOCKS["namensschild-90x54"]
    sheet = check_sheet(out.read_bytes(), stock)
    assert len(sheet["pages"]) == 1 and abs(sheet["pages"][0].height - 297) < 0.5
    texts = [label_text(group) for group in sheet["groups"].values()]
    assert len(texts) == 8
    for name in _accepted_names(event):
        assert sum(squeeze(name) in text for text in texts) >= 1, name
    long = next(text for text in texts if "Wittgenstein" in text)
    assert long == squeeze(LONG_NAME + LONG_FUNCTION + LONG_ORG)  # whole, in order: nothing cut
    companion = event.invitations[2]
    assert sum(text == squeeze(WRITE_ON_LINE + f"Begleitung von {companion.name}" + companion.organisation_name)
               for text in texts) == 2
    assert not any(squeeze(event.invitations[1].name) in text for text in texts)  # declined: no badge
    facts = sheet["facts"]
    assert facts["part"] == "2" and facts["struct"] and facts["lang"] == "de-DE"
    assert facts["title"] == f"Namensschilder: {event.title}" and facts["author"].startswith("Ministerium")
    assert facts["images"] == 0  # no QR code unless asked for


def test_badges_ten_per_sheet_and_table_cards(runner, event, tmp_path):
    out = tmp_path / "zehn.pdf"
    assert runner.invoke(args=["events", "badges", str(event.id), str(out), "--stock", "namensschild-90x54-10"]).exit_code == 0
    assert len(check_sheet(out.read_bytes(), STOCKS["namensschild-90x54-10"])["groups"]) == 8
    cards = tmp_path / "karten.pdf"
    result = runner.invoke(args=["events", "badges", str(event.id), str(cards), "--stock", "tischkarte-a6"])
    assert result.exit_code == 0, result.output
    assert "6 Tischkarten" in result.output  # companions get no table card
    sheet = check_sheet(cards.read_bytes(), STOCKS["tischkarte-a6"])
    assert len(sheet["pages"]) == 3 and abs(sheet["pages"][0].width - 297) < 0.5  # two per A4 landscape
    assert any(text == squeeze(LONG_NAME + LONG_FUNCTION + LONG_ORG) for text in map(label_text, sheet["groups"].values()))
    for word in (w for group in sheet["groups"].values() for w in group):
        assert word.y1 <= 105  # the printed face is the upper half; the fold is at 105 mm
    assert sheet["facts"]["title"] == f"Tischkarten: {event.title}"


def test_qr_code_is_a_parameter(app, event):
    data, count = badges_pdf(event, "namensschild-90x54", qr_content=lambda invitation: f"https://ki-post.example/check-in/{invitation.id}")
    sheet = check_sheet(data, STOCKS["namensschild-90x54"], centred=False)
    assert sheet["facts"]["images"] == 6 and count == 8  # one per accepted person, none for companions
    stock = STOCKS["namensschild-90x54"]
    for (_page, index), group in sheet["groups"].items():
        x0, _y0, x1, _y1 = stock.label_rect(index)
        assert max(word.x1 for word in group) <= x1 - stock.qr_w + 1  # text keeps clear of the QR column
    # Each code sits in its badge's QR column, 20 mm square, and reads back module by module after
    # LibreOffice (which recompresses images) and poppler's rendering.
    rects = image_rects(data)
    assert len(rects) == 6
    width, height, pixels = gray_page(data, 0, 300)
    for page, x0, y0, x1, y1 in rects[:1]:
        assert abs((x1 - x0) - 20) < 0.3 and abs((y1 - y0) - 20) < 0.3
        index = next(i for i in range(stock.per_page) if stock.label_rect(i)[0] < x0 and stock.label_rect(i)[1] < y0)
        lx0, ly0, lx1, ly1 = stock.label_rect(index)
        assert lx1 - stock.qr_w <= x0 and x1 <= lx1 and ly0 <= y0 and y1 <= ly1
    invitation = sorted((i for i in event.invitations if i.state == InvitationState.ZUGESAGT),
                        key=lambda i: (i.organisation_name.lower(), i.name.lower()))[0]
    matrix = segno.make(f"https://ki-post.example/check-in/{invitation.id}", error="m", micro=False).matrix
    page, x0, y0, x1, y1 = rects[0]
    size = len(matrix)
    wrong = 0
    for row in range(size):
        for col in range(size):
            x = round((x0 + (col + 0.5) * (x1 - x0) / size) / 25.4 * 300)
            y = round((y0 + (row + 0.5) * (y1 - y0) / size) / 25.4 * 300)
            wrong += (pixels[y * width + x] < 128) != bool(matrix[row][col])
    assert wrong == 0
    # Stored losslessly: JPEG artefacts around the modules cost cheap scanners their read.
    filters = {str(image.get("/Filter")) for page in pikepdf.open(io.BytesIO(data)).pages
               for image in page.get_images().values()}
    assert filters and "/DCTDecode" not in filters


def test_download_for_reading_role_and_links_on_event_page(client, make_user, event):
    make_user("admin", "admin@ministerium.example")
    client.login(make_user("lesen").email)
    page = client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    url = f"/veranstaltungen/{event.id}/namensschilder.pdf"
    assert url in page and f"{url}?bogen=tischkarte-a6" in page
    response = client.get(url + "?bogen=tischkarte-a6")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'filename="tischkarten-' in response.headers["Content-Disposition"]
    assert len(by_label(words(response.data)[1], STOCKS["tischkarte-a6"])) == 6


def test_no_acceptance_no_badges(client, make_user, published):
    event = published(2)
    make_user("admin", "admin@ministerium.example")
    client.login(make_user("lesen").email)
    response = client.get(f"/veranstaltungen/{event.id}/namensschilder.pdf")
    assert response.status_code == 302
    assert "noch keine Zusagen" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_badges_with_the_check_in_code_are_a_post_for_staff(event, staff_client, client, make_user):
    """The QR code on a badge is the person's check-in code (made if missing: so a POST, not for lesen)."""
    from ki_post.events.attendance import Attendance

    url = f"/veranstaltungen/{event.id}/namensschilder-qr.pdf"
    assert staff_client.get(url).status_code == 405  # GET never makes codes
    response = staff_client.submit(url, {}, form_url=f"/veranstaltungen/{event.id}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    tokens = {row.invitation_id: row.token for row in db.session.query(Attendance).filter_by(event_id=event.id)}
    accepted = [i for i in event.invitations if i.state == InvitationState.ZUGESAGT]
    assert {i.id for i in accepted} <= set(tokens) and all(tokens[i.id] for i in accepted)
    assert pdfa_facts(response.data)["images"] == len(accepted)
    client.login(make_user("lesen").email)
    assert client.submit(url, {}, form_url=f"/veranstaltungen/{event.id}/einlass").status_code == 403
