"""ICS-T1…T6 and ITIP-T1 (standards.md §2.1/§2.2): every object parsed by icalendar AND the strict `ical` parser."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest
from ical.calendar_stream import IcsCalendarStream

from ki_post.events import ical

BERLIN = ZoneInfo("Europe/Berlin")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ORGANIZER = "veranstaltungen@mags.nrw.example"


def make_event(**overrides) -> ical.CalendarEvent:
    values = dict(
        uid=ical.new_uid(), sequence=0, summary="Feierstunde 5 Jahre Teilhabe- und Integrationsgesetz",
        start=datetime(2017, 2, 8, 11, tzinfo=BERLIN), end=datetime(2017, 2, 8, 13, tzinfo=BERLIN),
        organizer_email=ORGANIZER, organizer_name="MAGS NRW – Veranstaltungen",
        location="Fürstenwall 25, 40219 Düsseldorf", description="Kleine Feierstunde im Ministerium.",
    )
    values.update(overrides)
    return ical.CalendarEvent(**values)


ATTENDEE = ical.Attendee("max.mueller@stadt-beispiel.example", "Müller, Max")


def vevent(raw: bytes):
    cal = icalendar.Calendar.from_ical(raw)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def strict(raw: bytes):
    """The second, strict parser must accept the object as well."""
    return IcsCalendarStream.calendar_from_ics(raw.decode("utf-8"))


def count(component, name: str) -> int:
    value = component.get(name)
    if value is None:
        return 0
    return len(value) if isinstance(value, list) else 1


def assert_itip(raw: bytes, method: str) -> None:
    """An ical4j-style validator (VEventRequestValidator / VEventCancelValidator) as strict cardinalities."""
    cal, ev = vevent(raw)
    assert count(cal, "PRODID") == 1 and str(cal["VERSION"]) == "2.0"  # ICS-01
    assert str(cal["METHOD"]) == method
    for name in ("UID", "DTSTAMP", "ORGANIZER", "SEQUENCE", "DTSTART", "SUMMARY"):  # ICS-02/03/20/22
        assert count(ev, name) == 1, name
    assert count(ev, "ATTENDEE") == 1  # one recipient per message
    assert not (count(ev, "DTEND") and count(ev, "DURATION"))  # ICS-06
    assert ev.to_ical().count(b"DTSTAMP:") == 1 and re.search(rb"DTSTAMP:\d{8}T\d{6}Z\r\n", raw)  # ICS-04
    assert count(ev, "VALARM") == 0 and not ev.walk("VALARM")  # ICS-25
    assert str(ev["STATUS"]) == ("CANCELLED" if method == "CANCEL" else "CONFIRMED")  # ICS-16
    organizer = ev["ORGANIZER"]
    assert str(organizer).lower() == f"mailto:{ORGANIZER}"  # ICS-13 bare mailto
    assert "SENT-BY" not in organizer.params
    attendee = ev["ATTENDEE"]
    assert attendee.params["CUTYPE"] == "INDIVIDUAL" and attendee.params["ROLE"] == "REQ-PARTICIPANT"  # ICS-14
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    if method == "REQUEST":
        assert attendee.params["RSVP"] == "TRUE"
    assert b'CN="M\xc3\xbcller, Max"' in raw.replace(b"\r\n ", b"")  # ICS-11 quoted
    parsed = strict(raw)
    assert len(parsed.events) == 1
    assert parsed.events[0].uid == str(ev["UID"])


def test_request_has_itip_shape_ITIP_T1():
    raw = ical.build_request(make_event(), ATTENDEE)
    assert_itip(raw, "REQUEST")
    _, ev = vevent(raw)
    assert ev.decoded("DTSTART") == datetime(2017, 2, 8, 10, tzinfo=timezone.utc)
    assert strict(raw).events[0].dtstart == datetime(2017, 2, 8, 11, tzinfo=BERLIN)


def test_cardinalities_and_utc_stamp_ICS_T1():
    stamp = datetime(2016, 12, 28, 9, 30, tzinfo=timezone.utc)
    raw = ical.build_request(make_event(), ATTENDEE, dtstamp=stamp)
    _, ev = vevent(raw)
    assert ev.decoded("DTSTAMP") == stamp
    assert b"DTSTAMP:20161228T093000Z\r\n" in raw


def test_crlf_and_folding_by_octets_ICS_T2():
    long_text = "Ä" * 200 + " Düsseldorf – " * 20
    raw = ical.build_request(make_event(summary=long_text, description=long_text, location=long_text), ATTENDEE)
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")  # ICS-08
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line  # ICS-09
        line.decode("utf-8")  # never split inside a UTF-8 sequence
    _, ev = vevent(raw)
    assert str(ev["SUMMARY"]) == long_text
    assert strict(raw).events[0].summary == long_text


def test_escaping_round_trip_ICS_T3():
    summary = "Dienstbesprechung; Kommunen, NRW \\ Test"
    location = "Jürgensplatz 1, 40219 Düsseldorf"
    raw = ical.build_request(make_event(summary=summary, location=location), ATTENDEE)
    _, ev = vevent(raw)
    assert str(ev["SUMMARY"]) == summary and str(ev["LOCATION"]) == location
    unfolded = raw.replace(b"\r\n ", b"")
    assert b"\\;" in unfolded and b"\\," in unfolded and b"\\\\" in unfolded
    assert strict(raw).events[0].location == location


def test_every_tzid_has_rrule_vtimezone_ICS_T4():
    raw = ical.build_request(make_event(), ATTENDEE)
    cal, _ = vevent(raw)
    tzids = set(re.findall(rb"TZID=([^:;]+)", raw))
    assert tzids == {b"Europe/Berlin"}
    timezones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    assert set(timezones) == {"Europe/Berlin"}
    text = timezones["Europe/Berlin"].to_ical()
    assert b"RRULE" in text and b"RDATE" not in text  # ICS-07/17
    # Summer time goes through the same VTIMEZONE: 27 Oct 2024 10:00 is still CEST.
    summer = ical.build_request(make_event(start=datetime(2024, 10, 27, 1, 30, tzinfo=BERLIN),
                                           end=datetime(2024, 10, 27, 4, tzinfo=BERLIN)), ATTENDEE)
    assert strict(summer).events[0].dtstart.utcoffset().total_seconds() == 7200


@pytest.mark.parametrize("evil", ["x\r\nATTENDEE:mailto:evil@x", "x\rATTENDEE:mailto:evil@x", "x\nATTENDEE:mailto:evil@x"])
def test_injection_yields_one_attendee_ICS_T5(evil):
    raw = ical.build_request(make_event(summary=evil, description=evil, location=evil),
                             ical.Attendee("max@stadt.example", 'Evil"\r\nATTENDEE:mailto:evil@x'))
    _, ev = vevent(raw)
    assert count(ev, "ATTENDEE") == 1
    assert str(ev["ATTENDEE"]).lower() == "mailto:max@stadt.example"
    assert len(strict(raw).events[0].attendees) == 1


def test_bad_addresses_are_refused():
    with pytest.raises(ical.ICalError):
        ical.build_request(make_event(), ical.Attendee("max@stadt.example\r\nX-EVIL:1"))
    with pytest.raises(ical.ICalError):
        ical.build_request(make_event(), ical.Attendee(ORGANIZER))  # MIME-07: attendee ≠ organizer


def test_state_machine_uid_stable_sequence_increasing_ICS_T6():
    uid = ical.new_uid()
    assert UUID4.match(uid)  # ICS-05
    first = ical.build_request(make_event(uid=uid, sequence=0), ATTENDEE)
    moved = ical.build_request(make_event(uid=uid, sequence=1, start=datetime(2017, 2, 8, 12, tzinfo=BERLIN),
                                          end=datetime(2017, 2, 8, 14, tzinfo=BERLIN)), ATTENDEE)
    cancel = ical.build_cancel(make_event(uid=uid, sequence=2), ATTENDEE)
    assert_itip(first, "REQUEST")
    assert_itip(moved, "REQUEST")
    assert_itip(cancel, "CANCEL")
    sequences = [int(vevent(raw)[1]["SEQUENCE"]) for raw in (first, moved, cancel)]
    assert sequences == [0, 1, 2]
    assert {str(vevent(raw)[1]["UID"]) for raw in (first, moved, cancel)} == {uid}
    assert [strict(raw).events[0].sequence for raw in (first, moved, cancel)] == [0, 1, 2]


def test_organizer_from_sender():
    assert ical.organizer_from_sender("MAGS NRW – Veranstaltungen <veranstaltungen@mags.example>") == (
        "veranstaltungen@mags.example", "MAGS NRW – Veranstaltungen")
