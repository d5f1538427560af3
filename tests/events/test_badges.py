"""Name badges and table cards: read back from the PDF, every name whole and inside its badge."""
from __future__ import annotations

import io

import pytest
import pikepdf
import segno

from ki_post.events.badges import badges_pdf, download_name, write_on_line
from ki_post.events.models import InvitationState
from ki_post.extensions import db
from ki_post.letters.sheets import STOCKS
from ki_post.recipients.models import Contact, Organisation
from tests.letters.sheet_pdf import (by_label, fonts_embedded, gray_page, image_rects, in_rect, label_text, needs_pdf_tools,
                                     pdfa_facts, squeeze, strokes, turned_lines, words)

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


def split_footer(group: list, footer: str) -> tuple[list, list]:
    """(words above, words of the footer line): the footer is the last words of the label in reading order."""
    ordered = sorted(group, key=lambda w: (round(w.y0, 1), w.x0))
    for cut in range(len(ordered), -1, -1):
        if "".join(word.text for word in ordered[cut:]) == squeeze(footer):
            return ordered[:cut], ordered[cut:]
    raise AssertionError(f"no footer „{footer}“ at the end of {label_text(group)}")


def check_sheet(data: bytes, stock, *, centred: bool = True, footer: str = "") -> dict:
    """Every word inside its label's padding; with ``footer`` that line at the bottom, the rest above it.
    On a tent card only the front faces (above the fold) are grouped; the back faces come back as "back"."""
    pages, found = words(data)
    fold = stock.margin_top + stock.label_h
    back = [w for w in found if stock.tent and (w.y0 + w.y1) / 2 > fold]
    groups = by_label([w for w in found if w not in back], stock)
    for (_page, index), group in groups.items():
        x0, y0, x1, y1 = stock.label_rect(index)
        inner = (x0 + stock.pad[0], y0 + stock.pad[1], x1 - stock.pad[2], y1 - stock.pad[3])
        for word in group:
            assert in_rect(word, inner, 0.3), (word, inner)  # nothing cut, nothing in the margin
        main = group
        if footer:
            main, foot = split_footer(group, footer)
            assert abs(max(w.y1 for w in foot) - inner[3]) < 1.0  # at the bottom of the badge (±1 mm)
            assert max(w.y1 for w in main) <= min(w.y0 for w in foot) - 1.0  # the text keeps clear of it
        if centred:  # the label is where the stock says: text centred on it (±1 mm)
            left, right = min(w.x0 for w in main), max(w.x1 for w in main)
            top, bottom = min(w.y0 for w in main), max(w.y1 for w in main)
            assert abs((left + right) / 2 - (x0 + x1) / 2) < 1.0, (index, left, right)
            if not footer:
                assert abs((top + bottom) / 2 - (y0 + y1) / 2) < 1.5, (index, top, bottom)
    assert all(flag == "yes" for _name, flag in fonts_embedded(data))
    return {"pages": pages, "groups": groups, "back": back, "facts": pdfa_facts(data)}


def frames(data: bytes, stock, page: int = 0) -> list[tuple[float, float, float, float]]:
    """The light grey thin frames (cut guides) drawn on ``page``, as (x0, y0, x1, y1) in mm."""
    return [(s.x0, s.y0, s.x1, s.y1) for s in strokes(data)
            if s.page == page and s.width <= 0.3 and 0.6 <= s.gray <= 0.8 and not s.dashed]


def assert_framed(data: bytes, stock, count: int) -> None:
    drawn = frames(data, stock)
    assert len(drawn) == count
    for index in range(count):  # a frame on each badge's edges (±0.3 mm)
        rect = stock.label_rect(index)
        assert any(all(abs(a - b) < 0.3 for a, b in zip(frame, rect)) for frame in drawn), (index, rect, drawn)


def test_badges_cli_two_by_four(runner, event, tmp_path):
    out = tmp_path / "schilder.pdf"
    result = runner.invoke(args=["events", "badges", str(event.id), str(out)])
    assert result.exit_code == 0, result.output
    assert "8 Namensschilder" in result.output  # 6 accepted + 2 companions
    stock = STOCKS["namensschild-90x54"]
    sheet = check_sheet(out.read_bytes(), stock, footer=event.title)  # the event's title at the foot of each badge
    assert len(sheet["pages"]) == 1 and abs(sheet["pages"][0].height - 297) < 0.5
    assert_framed(out.read_bytes(), stock, 8)
    texts = [label_text(group) for group in sheet["groups"].values()]
    assert len(texts) == 8
    for name in _accepted_names(event):
        assert sum(squeeze(name) in text for text in texts) >= 1, name
    long = next(text for text in texts if "Wittgenstein" in text)
    assert long == squeeze(LONG_NAME + LONG_FUNCTION + LONG_ORG + event.title)  # whole, in order: nothing cut
    companion = event.invitations[2]
    line = write_on_line(stock, with_qr=False)
    assert sum(text == squeeze(line + f"Begleitung von {companion.name}" + companion.organisation_name + event.title)
               for text in texts) == 2
    assert not any(squeeze(event.invitations[1].name) in text for text in texts)  # declined: no badge
    facts = sheet["facts"]
    assert facts["part"] == "2" and facts["struct"] and facts["lang"] == "de-DE"
    assert facts["title"] == f"Namensschilder: {event.title}" and facts["author"].startswith("Ministerium")
    assert facts["images"] == 0  # no QR code unless asked for


def test_badges_ten_per_sheet_without_event_title(runner, event, tmp_path):
    out = tmp_path / "zehn.pdf"
    args = ["events", "badges", str(event.id), str(out), "--stock", "namensschild-90x54-10", "--no-event-title"]
    assert runner.invoke(args=args).exit_code == 0
    stock = STOCKS["namensschild-90x54-10"]
    sheet = check_sheet(out.read_bytes(), stock)  # centred again: no footer line
    assert len(sheet["groups"]) == 8
    assert not any(squeeze(event.title) in label_text(group) for group in sheet["groups"].values())
    assert_framed(out.read_bytes(), stock, 8)  # a frame per badge printed, none on the empty places


def test_table_cards_print_both_faces_of_the_tent(runner, event, tmp_path):
    """The back face (below the fold) repeats the front turned by 180°; a dashed fold line at 105 mm."""
    cards = tmp_path / "karten.pdf"
    result = runner.invoke(args=["events", "badges", str(event.id), str(cards), "--stock", "tischkarte-a6"])
    assert result.exit_code == 0, result.output
    assert "6 Tischkarten" in result.output  # companions get no table card
    data = cards.read_bytes()
    stock = STOCKS["tischkarte-a6"]
    sheet = check_sheet(data, stock)
    assert len(sheet["pages"]) == 3 and abs(sheet["pages"][0].width - 297) < 0.5  # two per A4 landscape
    assert any(text == squeeze(LONG_NAME + LONG_FUNCTION + LONG_ORG) for text in map(label_text, sheet["groups"].values()))
    assert sheet["facts"]["title"] == f"Tischkarten: {event.title}"
    assert not any(squeeze(event.title) in label_text(group) for group in sheet["groups"].values())  # no footer on cards
    # Back faces: every word of a front face again below the fold, at the place the front word takes when
    # the card is turned by 180° about the centre of its face pair (x → x0 + x1 − x, y → 210 − y; ±1 mm).
    # An upright copy would put "Prof." left, not right, and the first line at the top of the back face.
    back = sheet["back"]
    assert len(back) == sum(len(group) for group in sheet["groups"].values())
    for (page, index), group in sheet["groups"].items():
        x0, y0, x1, y1 = stock.label_rect(index)
        face = (x0 + stock.pad[2], y1 + stock.pad[3], x1 - stock.pad[0], 2 * y1 - y0 - stock.pad[1])
        for word in group:
            mirrored = (x0 + x1 - word.x1, 2 * y1 - word.y1, x0 + x1 - word.x0, 2 * y1 - word.y0)
            twin = [w for w in back if w.page == page and w.text == word.text
                    and all(abs(a - b) < 1.0 for a, b in zip((w.x0, w.y0, w.x1, w.y1), mirrored))]
            assert len(twin) == 1, (word, mirrored)
            assert in_rect(twin[0], face, 0.3)  # inside the back face's padding: nothing cut
    # In the content stream the back lines are set with a turned text matrix (a = d = −1).
    lines_on_first_page = len({(index, round(w.y0, 1)) for (page, index), group in sheet["groups"].items() if page == 0
                               for w in group})
    assert turned_lines(data, 0) == lines_on_first_page
    drawn = [s for s in strokes(data) if s.page == 0]
    fold = [s for s in drawn if s.dashed and abs(s.y0 - 105) < 0.2 and abs(s.y1 - 105) < 0.2]
    assert len(fold) == 1 and fold[0].x0 < 1 and fold[0].x1 > 296 and fold[0].width <= 0.5  # thin, dashed, across
    cut = [s for s in drawn if not s.dashed and abs(s.x0 - 148.5) < 0.2 and abs(s.x1 - 148.5) < 0.2]
    assert len(cut) == 1 and cut[0].y0 < 1 and cut[0].y1 > 209 and cut[0].gray > 0.7  # light, between the cards


def test_qr_code_is_a_parameter(app, event):
    data, count = badges_pdf(event, "namensschild-90x54", qr_content=lambda invitation: f"https://ki-post.example/check-in/{invitation.id}")
    sheet = check_sheet(data, STOCKS["namensschild-90x54"], centred=False, footer=event.title)
    assert sheet["facts"]["images"] == 6 and count == 8  # one per accepted person, none for companions
    stock = STOCKS["namensschild-90x54"]
    for (_page, index), group in sheet["groups"].items():
        x0, _y0, x1, _y1 = stock.label_rect(index)
        assert max(word.x1 for word in group) <= x1 - stock.qr_w + 1  # text (and footer) keep clear of the QR column
    # A companion's badge has no code, but the QR column is there: its write-in line fits the narrower
    # text column on one line (it used to be measured for the full width and broke in two).
    companions = [group for group in sheet["groups"].values() if "Begleitung" in label_text(group)]
    assert len(companions) == 2
    for group in companions:
        blanks = [word for word in group if word.text.startswith("_")]
        assert [word.text for word in blanks] == [write_on_line(stock, with_qr=True)]
        assert len(blanks[0].text) >= 18  # and it is long enough to write on
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
    assert f'filename="tischkarten-a6-{event.id}.pdf"' in response.headers["Content-Disposition"]
    response_10 = client.get(url + "?bogen=namensschild-90x54-10")
    assert f'filename="namensschilder-90x54-10-{event.id}.pdf"' in response_10.headers["Content-Disposition"]
    assert squeeze(event.title) in squeeze("".join(w.text for w in words(response_10.data)[1]))  # the title: on by default
    untitled = client.get(url + "?bogen=namensschild-90x54-10&titel=nein")
    assert squeeze(event.title) not in squeeze("".join(w.text for w in words(untitled.data)[1]))
    found = words(response.data)[1]
    front = [word for word in found if word.y1 <= 105]
    assert len(by_label(front, STOCKS["tischkarte-a6"])) == 6 and len(found) == 2 * len(front)  # and their back faces


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
    assert f'filename="namensschilder-90x54-qr-{event.id}.pdf"' in response.headers["Content-Disposition"]
    tokens = {row.invitation_id: row.token for row in db.session.query(Attendance).filter_by(event_id=event.id)}
    accepted = [i for i in event.invitations if i.state == InvitationState.ZUGESAGT]
    assert {i.id for i in accepted} <= set(tokens) and all(tokens[i.id] for i in accepted)
    assert pdfa_facts(response.data)["images"] == len(accepted)
    client.login(make_user("lesen").email)
    assert client.submit(url, {}, form_url=f"/veranstaltungen/{event.id}/einlass").status_code == 403


def test_download_names_name_the_stock():
    """8 and 10 per sheet used to download under the same name; now the stock is part of it."""
    names = {name: download_name(STOCKS[name], 7) for name in ("namensschild-90x54", "namensschild-90x54-10", "tischkarte-a6")}
    assert names == {"namensschild-90x54": "namensschilder-90x54-7.pdf",
                     "namensschild-90x54-10": "namensschilder-90x54-10-7.pdf", "tischkarte-a6": "tischkarten-a6-7.pdf"}
    assert download_name(STOCKS["namensschild-90x54-10"], 7, qr=True) == "namensschilder-90x54-10-qr-7.pdf"
