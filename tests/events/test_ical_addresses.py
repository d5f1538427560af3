"""International addresses (RFC 6531) in ORGANIZER/ATTENDEE: every parser of the suite reads them back exactly.

Readers: icalendar, the strict `ical` package and Mozilla's ical.js (tests/calendar_readers.py).
"""
from __future__ import annotations

import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings, strategies as st

from ki_post.events import ical
from tests.calendar_readers import calendar_readers, read_ical, read_icalendar

BERLIN = ZoneInfo("Europe/Berlin")
ORGANIZER = "veranstaltungen@ministerium.example"


def request_for(address: str, name: str = "Renée Schäfer", organizer: str = ORGANIZER) -> bytes:
    event = ical.CalendarEvent(uid=ical.new_uid(), sequence=0, summary="Feierstunde", organizer_email=organizer,
                               start=datetime(2017, 2, 8, 11, tzinfo=BERLIN), end=datetime(2017, 2, 8, 13, tzinfo=BERLIN),
                               organizer_name="MKJFGFI NRW – Veranstaltungen")
    return ical.build_request(event, ical.Attendee(address, name))


ADDRESSES = [
    "renée.schaefer@kreis.example",                    # accent before the @
    "max@münster.example",                              # IDN domain, as email-validator stores it
    "jürgen.groß@städteregion-aachen.example",          # both
    "δοκιμή@παράδειγμα.example",                        # Greek
    "用户@例子.example",                                 # CJK (3-byte UTF-8)
    "ő" * 30 + "@kreis.example",                        # long: the line folds inside the address
    "a𝄞b@kreis.example",                                # 4-byte UTF-8
]


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("reader", ["icalendar", "ical", "ical.js"])
def test_international_attendee_reads_back_exactly(address, reader):
    raw = request_for(address)
    assert raw.replace(b"\r\n ", b"").count(f"mailto:{address}".encode()) == 1  # UTF-8, not %-encoded
    read = calendar_readers()[reader](raw)
    assert read["attendee"] == [f"mailto:{address}"]
    assert read["organizer"] == [f"mailto:{ORGANIZER}"]


@pytest.mark.parametrize("reader", ["icalendar", "ical", "ical.js"])
def test_international_organizer_reads_back_exactly(reader):
    raw = request_for("max.mueller@stadt.example", organizer="veranstaltungen@ministerium-für-integration.example")
    assert calendar_readers()[reader](raw)["organizer"] == ["mailto:veranstaltungen@ministerium-für-integration.example"]


def test_decomposed_input_is_written_as_email_validator_stores_it():
    decomposed = unicodedata.normalize("NFD", "renée.schaefer@kreis.example")
    assert decomposed != "renée.schaefer@kreis.example"
    assert read_icalendar(request_for(decomposed))["attendee"] == ["mailto:renée.schaefer@kreis.example"]


@pytest.mark.parametrize("bad", ["renée schaefer@kreis.example", "a\u2028b@kreis.example", "a\x85b@kreis.example",
                                 "kein-at-zeichen", "a@b\r\nATTENDEE:mailto:evil@x.example"])
def test_what_is_no_address_is_still_refused(bad):
    with pytest.raises(ical.ICalError):
        request_for(bad)


_LOCAL = st.text(st.characters(min_codepoint=0xA0, max_codepoint=0x2FFFF,
                               blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")), min_size=1, max_size=40)


def _valid(local: str) -> str | None:
    try:
        return validate_email(f"{local}@kreis.example", check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(local=_LOCAL, name=st.text(min_size=0, max_size=60))
def test_any_valid_international_address_reads_back_exactly_in_python_parsers(local, name):
    """Property: for every address email-validator accepts (so the import stores it), both Python
    parsers read the ATTENDEE back exactly, wherever the 75-octet folding cuts the line."""
    address = _valid(local)
    if address is None:
        return
    raw = request_for(address, name)
    assert read_icalendar(raw)["attendee"] == [f"mailto:{address}"]
    assert read_ical(raw)["attendee"] == [f"mailto:{address}"]
