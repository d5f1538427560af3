"""Reading delivery reports (ki_post/outbox/bounces.py): the samples in bounce_samples/, written from RFC 3464
and what each mail system documents, and Hypothesis properties over arbitrary and generated reports."""
from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from string import Template

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ki_post.outbox import bounces
from ki_post.outbox.bounces import ReportKind, might_be_report, parse_report

SAMPLES = Path(__file__).parent / "bounce_samples"
EVENT_FIXTURES = Path(__file__).parents[1] / "events" / "fixtures"
SENDER = "veranstaltungen@ministerium.example"
MESSAGE_ID = "<170213100208.4711.1234567890@ministerium.example>"
TOKEN = "Qm9vdHN0cmFwLXRva2VuLTE"
RECIPIENT = "erika.muster@kreis-beispiel.example"


def sample(name: str, *, message_id: str = MESSAGE_ID, token: str | None = TOKEN, recipient: str = RECIPIENT,
           sender: str = SENDER) -> bytes:
    """A sample with the placeholders filled in, CRLF line ends as on the wire."""
    text = Template((SAMPLES / name).read_text()).substitute(
        MESSAGE_ID=message_id, TOKEN_LINE=f"X-KI-Post-Nachricht: {token}\n" if token else "", RECIPIENT=recipient,
        SENDER=sender)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


@pytest.mark.parametrize("name, kind, source, status, diagnostic_part", [
    ("rfc3464_permanent.eml", ReportKind.PERMANENT, "RFC 3464", "5.1.1", "User unknown - mailbox closed"),
    ("rfc3464_delayed.eml", ReportKind.TEMPORARY, "RFC 3464", "4.2.2", "452 4.2.2 Mailbox full"),
    ("exchange_ndr.eml", ReportKind.PERMANENT, "Exchange/Outlook", "5.1.1", "RESOLVER.ADR.RecipientNotFound"),
    ("postfix.eml", ReportKind.PERMANENT, "Postfix (RFC 3464)", "5.1.1", "User unknown in virtual mailbox table"),
    ("postfix_text_only.eml", ReportKind.PERMANENT, "Postfix", "5.1.1", "Recipient address rejected"),
    ("gmail.eml", ReportKind.PERMANENT, "Gmail (RFC 3464)", "5.1.1", "does not exist"),
    ("gmail_delay.eml", ReportKind.TEMPORARY, "Gmail", "", "did not accept our requests"),
    ("notes.eml", ReportKind.PERMANENT, "Lotus Notes/Domino", "", "not listed"),
])
def test_samples_are_classified_with_recipient_status_and_server_words(name, kind, source, status, diagnostic_part):
    report = parse_report(sample(name))
    assert (report.kind, report.source) == (kind, source)
    [entry] = report.recipients
    assert (entry.address, entry.kind, entry.status) == (RECIPIENT, kind, status)
    assert diagnostic_part in entry.diagnostic
    assert MESSAGE_ID in report.original_message_ids or name == "exchange_ndr.eml"


def test_the_original_is_named_by_its_message_id_and_token():
    permanent = parse_report(sample("rfc3464_permanent.eml"))
    assert permanent.original_message_ids == [MESSAGE_ID] and permanent.original_token == TOKEN
    assert permanent.original_to == [RECIPIENT] and permanent.message_id == "<20170213090210.AB12C3@mx.kreis-beispiel.example>"
    # Exchange rewrote the Message-ID and quotes the original headers in its text: the token is what is left.
    exchange = parse_report(sample("exchange_ndr.eml"))
    assert exchange.original_token == TOKEN and MESSAGE_ID not in exchange.original_message_ids
    # A message from before the token header: only the Message-ID.
    assert parse_report(sample("rfc3464_delayed.eml", token=None)).original_token == ""


def test_out_of_office_is_an_automatic_reply_naming_the_message_it_answers():
    report = parse_report(sample("out_of_office.eml"))
    assert report.kind is ReportKind.AUTO_REPLY and not report.is_bounce and report.recipients == []
    assert report.original_message_ids == [MESSAGE_ID] and report.from_address == RECIPIENT


@pytest.mark.parametrize("headers", [
    "Subject: Abwesenheitsnotiz: Rundschreiben",
    "Subject: Out of Office: Rundschreiben",
    "Subject: Re: Rundschreiben\nX-Autoreply: yes",
    "Subject: Re: Rundschreiben\nPrecedence: auto_reply",
    "Subject: AW: Rundschreiben\nX-Auto-Response-Suppress: All",
])
def test_automatic_reply_signals(headers):
    raw = f"From: a@b.example\nTo: {SENDER}\n{headers}\n\nBin nicht da.\n".encode()
    assert parse_report(raw).kind is ReportKind.AUTO_REPLY


def test_calendar_replies_and_ordinary_mails_are_no_reports():
    for path in sorted(EVENT_FIXTURES.glob("*.eml")):
        assert parse_report(path.read_bytes()).kind is ReportKind.OTHER, path.name
    person = b"From: Erika <e@kreis.example>\nSubject: AW: Einladung\n\nIch komme gern. Unzustellbar war nichts.\n"
    assert parse_report(person).kind is ReportKind.OTHER and not might_be_report(person)


def test_a_report_that_only_says_delivered_changes_nothing():
    raw = sample("rfc3464_permanent.eml").replace(b"Action: failed", b"Action: delivered").replace(b"Status: 5.1.1", b"Status: 2.0.0")
    raw = raw.replace(b"550 5.1.1", b"250 2.0.0")
    report = parse_report(raw)
    assert report.kind is ReportKind.OTHER and report.recipients == [] and "ohne Fehler" in report.note


def test_a_base64_encoded_delivery_status_part_is_read():
    import base64

    raw = sample("rfc3464_permanent.eml").decode()
    head, _, rest = raw.partition("Content-Type: message/delivery-status\r\n\r\n")
    fields, _, tail = rest.partition("\r\n--=_dsn_perm")
    encoded = base64.encodebytes(fields.encode()).decode().replace("\n", "\r\n")
    raw = head + "Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded + "\r\n--=_dsn_perm" + tail
    [entry] = parse_report(raw.encode()).recipients
    assert (entry.address, entry.status, entry.kind) == (RECIPIENT, "5.1.1", ReportKind.PERMANENT)


def test_might_be_report_from_headers_only():
    for name in ("rfc3464_permanent.eml", "exchange_ndr.eml", "postfix_text_only.eml", "gmail_delay.eml", "notes.eml",
                 "out_of_office.eml"):
        headers = sample(name).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        assert might_be_report(headers), name


# --- properties ------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=3000),
    # Mangled real reports: a slice of a sample with random bytes spliced in.
    st.tuples(st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.eml"))), st.integers(0, 4000), st.binary(max_size=200))
    .map(lambda t: (lambda raw: raw[:t[1]] + t[2] + raw[t[1]:])(sample(t[0]))),
))
def test_parser_never_raises_on_arbitrary_or_mangled_bytes(raw):
    # The inner parser, without parse_report's safety net: every exception here is a bug to fix.
    report = bounces._parse(raw)
    assert isinstance(report.kind, ReportKind)
    assert all(len(entry.diagnostic) <= 2000 for entry in report.recipients)


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s)
_domain = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12), min_size=2,
                   max_size=3).map(".".join)
_entry = st.fixed_dictionaries({
    "address": st.tuples(_local, _domain).map("@".join),
    "status": st.tuples(st.sampled_from("45"), st.integers(0, 7), st.integers(0, 20)).map(lambda t: f"{t[0]}.{t[1]}.{t[2]}"),
    "words": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters=";"), max_size=120),
    "case": st.sampled_from(["rfc822", "RFC822", "Rfc822"]),
})


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(_entry, min_size=1, max_size=4, unique_by=lambda e: e["address"]),
       with_action=st.booleans(), encode=st.sampled_from([None, "7bit"]))
def test_generated_rfc3464_report_yields_each_recipient_and_status(entries, with_action, encode):
    report = EmailMessage()
    report["From"] = "MAILER-DAEMON@mx.example"
    report["To"] = SENDER
    report["Subject"] = "Delivery Status Notification"
    report.set_content("Bericht.")
    report.make_mixed()
    blocks = ["Reporting-MTA: dns; mx.example"]
    for entry in entries:
        action = ("failed" if entry["status"][0] == "5" else "delayed") if with_action else None
        lines = [f"Final-Recipient: {entry['case']}; {entry['address']}"]
        lines += [f"Action: {action}"] if action else []
        lines += [f"Status: {entry['status']}", f"Diagnostic-Code: smtp; {entry['words']}".rstrip()]
        blocks.append("\r\n".join(lines))
    raw = report.as_bytes().decode()
    boundary = report.get_boundary()
    status_part = ("--" + boundary + "\r\nContent-Type: message/delivery-status\r\n"
                   + (f"Content-Transfer-Encoding: {encode}\r\n" if encode else "") + "\r\n" + "\r\n\r\n".join(blocks) + "\r\n")
    raw = raw.replace("multipart/mixed", "multipart/report; report-type=delivery-status").replace(
        "--" + boundary + "--", status_part + "--" + boundary + "--")
    parsed = parse_report(raw.encode())
    assert [(r.address, r.status) for r in parsed.recipients] == [(e["address"], e["status"]) for e in entries]
    expected = ReportKind.PERMANENT if any(e["status"][0] == "5" for e in entries) else ReportKind.TEMPORARY
    assert parsed.kind is expected
