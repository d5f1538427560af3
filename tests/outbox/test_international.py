"""Internationalised addresses (RFC 6531/6532) end to end: import, enqueue, MIME, SMTPUTF8 on and off.

A real aiosmtpd on 127.0.0.1 with SMTPUTF8 switched on (like Postfix or current Exchange) and off
(an old relay): with it, such messages go out with ``MAIL FROM … SMTPUTF8`` and UTF-8 in the To
header; without it, just those messages fail with a German reason and the mailing goes on unpaused.
"""
from __future__ import annotations

import unicodedata
from collections import Counter

import pytest
from sqlalchemy import select

from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import build_mime, create_mailing, enqueue, start_mailing
from ki_post.outbox.worker import Worker
from tests.calendar_readers import calendar_readers
from tests.helpers import make_app
from tests.outbox.conftest import smtp_config
from tests.recipients.files import csv_data
from tests.smtp_server import SmtpServer, parse

RENEE = "renée.schaefer@kreis.example"
CJK = "用户@kreis.example"
IDN = "max@münster.example"            # as the import stores it (email-validator: Unicode domain)
IDN_ASCII = "max@xn--mnster-3ya.example"  # as it goes to the server: the domain needs no SMTPUTF8
PLAIN = ["erika.muster@kreis.example", "jan.koch@stadt-koeln.example"]


@pytest.fixture(params=[True, False], ids=["smtputf8-an", "smtputf8-aus"])
def relay(request):
    with SmtpServer(smtputf8=request.param) as server:
        yield server


@pytest.fixture
def relay_app(tmp_path, backend, relay):
    app = make_app(tmp_path, backend, **smtp_config(relay.port, MAIL_PAUSE_AFTER_FAILURES=2))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


# --- Accepting and storing ----------------------------------------------------------------------

def test_enqueue_accepts_international_addresses(app):
    mailing = create_mailing("rundschreiben", "Rundschreiben")
    stored = {address: enqueue(mailing, to_email=address, subject="Betreff", text="Text\n").to_email
              for address in (RENEE, CJK, IDN, unicodedata.normalize("NFD", RENEE).replace(RENEE[:1], "r"))}
    assert stored[RENEE] == RENEE and stored[CJK] == CJK
    assert stored[IDN] == IDN_ASCII  # the domain travels as IDNA, which every server takes
    assert RENEE in stored.values()  # a decomposed é is stored composed (NFC), as the import stores it


@pytest.mark.parametrize("bad", ["renée schaefer@kreis.example", "Renée <renée@kreis.example>",
                                 "renée@kreis.example, opfer@kreis.example", '"renée"@kreis.example',
                                 "renée@kreis.example\r\nBcc: opfer@kreis.example", "renée@", "renée@@kreis.example"])
def test_what_is_no_single_address_is_still_refused(app, bad):
    mailing = create_mailing("rundschreiben", "Rundschreiben")
    with pytest.raises(ValidationError) as info:
        enqueue(mailing, to_email=bad, subject="Betreff", text="Text\n")
    assert info.value.field == "to_email"


def test_mime_keeps_the_address_in_utf8_and_everything_else_7bit(app):
    mailing = create_mailing("rundschreiben", "Rundschreiben")
    message = enqueue(mailing, to_email=RENEE, to_name="Schäfer, Renée", subject="Einladung: Überblick", text="Grüße\n")
    raw = build_mime(message)
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    (utf8_line,) = [line for line in header_lines if not line.isascii()]
    # The name is an RFC 2047 encoded word as before; only the address itself is raw UTF-8.
    assert utf8_line.startswith(b"To: =?utf-8?") and utf8_line.endswith(b"?= <" + RENEE.encode() + b">")
    parsed = parse(raw)
    assert parsed["To"].addresses[0].addr_spec == RENEE
    assert parsed["To"].addresses[0].display_name == "Schäfer, Renée"
    assert str(parsed["Subject"]) == "Einladung: Überblick"
    # An ASCII name is quoted as formataddr would, in front of the UTF-8 address.
    quoted = enqueue(mailing, to_email=CJK, to_name="Muster, Erika", subject="Betreff", text="Text\n")
    assert f'To: "Muster, Erika" <{CJK}>'.encode() in build_mime(quoted)


def test_import_accepts_them_and_warns_per_row(app, tmp_path):
    rows = [["Kreis Kleve", "Kreis", "", "Frau", "", "Renée", "Schäfer", "", "", "", "", RENEE.title(), ""],
            ["Kreis Wesel", "Kreis", "", "Herr", "", "Max", "Müller", "", "", "", "", IDN, ""],
            ["Kreis Borken", "Kreis", "", "Frau", "", "Erika", "Muster", "", "", "", "", PLAIN[0], ""]]
    path = tmp_path / "verteiler.csv"
    path.write_bytes(csv_data(rows=rows, encoding="utf-8"))
    result = app.test_cli_runner().invoke(args=["recipients", "import", str(path), "--list", "International"])
    assert result.exit_code == 0, result.output  # a warning is not an error
    assert "3 neu" in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Hinweis: ")]
    assert len(warnings) == 1 and warnings[0].startswith(f"Hinweis: Zeile 2: Die Adresse {RENEE} enthält")
    assert "SMTPUTF8" in warnings[0] and "ältere Mailserver" in warnings[0]
    from ki_post.recipients.models import Contact

    stored = set(db.session.scalars(select(Contact.email)))
    assert stored == {"renée.schaefer@kreis.example", IDN, PLAIN[0]}  # the IDN domain alone warrants no warning


# --- Sending: SMTPUTF8 on and off ---------------------------------------------------------------

def make_mailing(addresses: list[str]) -> Mailing:
    mailing = create_mailing("rundschreiben", "Rundschreiben 1/2017")
    for address in addresses:
        enqueue(mailing, to_email=address, to_name="Renée Schäfer", subject="Rundschreiben", text="Hallo\n")
    start_mailing(mailing)
    db.session.commit()
    return mailing


def by_address() -> dict[str, OutboxMessage]:
    db.session.expire_all()
    return {m.to_email: m for m in db.session.scalars(select(OutboxMessage))}


def test_mailing_with_international_addresses(relay_app, relay):
    """Three non-ASCII local parts in a row, with MAIL_PAUSE_AFTER_FAILURES=2: with SMTPUTF8 all go out;
    without it exactly those three fail with the German reason and the mailing is not paused."""
    addresses = [PLAIN[0], RENEE, CJK, "δοκιμή@kreis.example", IDN, PLAIN[1]]
    mailing = make_mailing(addresses)
    Worker(relay_app).run(once=True)
    rows = by_address()
    international = [RENEE, CJK, "δοκιμή@kreis.example"]
    ascii_envelope = [PLAIN[0], IDN_ASCII, PLAIN[1]]
    received = {r.rcpt_tos[0]: r for r in relay.handler.received}
    if relay.smtputf8:
        assert Counter(relay.recipients()) == Counter(international + ascii_envelope)  # each exactly once
        assert {rows[a].state for a in rows} == {"gesendet"}
        for address in international:
            assert received[address].mail_options == ("SMTPUTF8", "BODY=8BITMIME")
            assert parse(received[address].content)["To"].addresses[0].addr_spec == address
        for address in ascii_envelope:
            assert received[address].mail_options == ()  # only where it is needed
            assert received[address].content.split(b"\r\n\r\n", 1)[0].isascii()
    else:
        assert Counter(relay.recipients()) == Counter(ascii_envelope)
        for address in international:
            assert rows[address].state == "fehlgeschlagen"
            reason = rows[address].server_reply
            assert address in reason and "SMTPUTF8" in reason and "Nicht gesendet" in reason
        assert {rows[a].state for a in ascii_envelope} == {"gesendet"}
        # A recipient's feature need is not a broken server: no pause, no run of failures.
        db.session.expire_all()
        mailing = db.session.get(Mailing, mailing.id)
        assert mailing.state == "aktiv" and mailing.pause_reason == ""
        assert mailing.failures_in_a_row == 0


def test_circular_by_letters_mail_to_a_list_with_international_addresses(relay_app, relay):
    """`letters mail` (DOCX attached) to an imported Verteiler: the circular is not refused as a whole."""
    from ki_post.recipients.importer import apply_import

    rows = [["Kreis Kleve", "Kreis", "", "Frau", "", "Renée", "Schäfer", "", "", "", "", RENEE, ""],
            ["Kreis Wesel", "Kreis", "", "Herr", "", "Max", "Müller", "", "", "", "", IDN, ""],
            ["Kreis Borken", "Kreis", "", "Frau", "", "Erika", "Muster", "", "", "", "", PLAIN[0], ""]]
    apply_import(csv_data(rows=rows, encoding="utf-8"), "verteiler.csv", list_name="International")
    db.session.commit()
    result = relay_app.test_cli_runner().invoke(args=["letters", "mail", "--template", "rundschreiben",
                                                      "--list", "International", "--subject", "Förderung"])
    assert result.exit_code == 0, result.output
    Worker(relay_app).run(once=True)
    rows = by_address()
    assert set(rows) == {RENEE, IDN_ASCII, PLAIN[0]}
    if relay.smtputf8:
        assert Counter(relay.recipients()) == Counter([RENEE, IDN_ASCII, PLAIN[0]])
        letter = next(parse(r.content) for r in relay.handler.received if r.rcpt_tos == [RENEE])
        assert letter["To"].addresses[0].addr_spec == RENEE
        assert [a.get_filename().endswith(".docx") for a in letter.iter_attachments()] == [True]
    else:
        assert Counter(relay.recipients()) == Counter([IDN_ASCII, PLAIN[0]])
        assert rows[RENEE].state == "fehlgeschlagen" and "SMTPUTF8" in rows[RENEE].server_reply


def test_invitation_to_a_list_with_international_addresses(relay_app, relay):
    """`events invite`: REQUEST with the ATTENDEE every parser reads back exactly as the invited address."""
    from ki_post.events import services as events
    from ki_post.recipients.models import Contact
    from tests.events.conftest import future

    contacts = [Contact(first_name="Renée", last_name="Schäfer", email=RENEE),
                Contact(first_name="Max", last_name="Müller", email=IDN),
                Contact(first_name="Erika", last_name="Muster", email=PLAIN[0])]
    db.session.add_all(contacts)
    db.session.flush()
    event = events.create_event(events.EventData(title="Feierstunde", start=future(20), end=future(20, 13),
                                                 place_name="Ministerium", place_address="Fürstenwall 25, 40219 Düsseldorf"))
    events.invite(event, contact_ids=[c.id for c in contacts], start=True)
    db.session.commit()
    Worker(relay_app).run(once=True)
    rows = by_address()
    expected = {RENEE: RENEE, IDN_ASCII: IDN, PLAIN[0]: PLAIN[0]}  # envelope address → invited address
    delivered = [RENEE, IDN_ASCII, PLAIN[0]] if relay.smtputf8 else [IDN_ASCII, PLAIN[0]]
    assert Counter(relay.recipients()) == Counter(delivered)
    for received in relay.handler.received:
        message = parse(received.content)
        (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        data = part.get_payload(decode=True)
        for name, read in calendar_readers().items():
            assert read(data)["attendee"] == [f"mailto:{expected[received.rcpt_tos[0]]}"], name
    if not relay.smtputf8:
        assert rows[RENEE].state == "fehlgeschlagen" and "SMTPUTF8" in rows[RENEE].server_reply
        # The invitation itself stays: it may be answered by link, and resent over another relay.
        from ki_post.events.models import Invitation

        assert db.session.scalar(select(Invitation).where(Invitation.email == RENEE)) is not None
