"""iCalendar (RFC 5545) objects for iTIP (RFC 5546) REQUEST and CANCEL, one attendee each.

Pure: data in, bytes out. Written by hand rather than through ``icalendar`` so that the
VTIMEZONE is the fixed RRULE form Outlook understands (ICS-07) and folding/escaping are exact.
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parseaddr
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
PRODID = "-//KI-Post//Veranstaltungen//DE"

# ICS-07: RRULE form, not the RDATE list of icalendar's add_missing_timezones().
VTIMEZONE_BERLIN = (
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)

# RFC 6531: beyond ASCII, any character is allowed in an address except controls (C0, DEL, C1),
# spaces and the Unicode line and paragraph separators; none of those can end a content line here.
_INTERNATIONAL = r"[^\x00-\x7f\x80-\x9f\s\u2028\u2029]"
_EMAIL = re.compile(rf"^(?:[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]|{_INTERNATIONAL})+@(?:[A-Za-z0-9.-]|{_INTERNATIONAL})+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ICalError(ValueError):
    pass


def new_uid() -> str:
    """ICS-05: random UUID, no host or user data."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    sequence: int
    summary: str
    start: datetime
    end: datetime
    organizer_email: str
    organizer_name: str = ""
    description: str = ""
    location: str = ""
    url: str = ""


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str = ""


def organizer_from_sender(sender: str) -> tuple[str, str]:
    """MAIL_DEFAULT_SENDER ("Name <addr>") → (addr, name) for a bare mailto ORGANIZER (ICS-13)."""
    name, address = parseaddr(sender or "")
    return address, name


def escape_text(value: str) -> str:
    """ICS-10/12: normalise CR/LF first so that no CR survives, then escape."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def quote_param(value: str) -> str:
    """ICS-11: always quote; DQUOTE and line breaks are not allowed inside a parameter value."""
    value = re.sub(r"[\r\n]+", " ", value)
    value = _CONTROL.sub("", value).replace('"', "'")
    return f'"{value.strip()}"'


def mailto(email: str) -> str:
    """The CAL-ADDRESS of an address, international ones (``renée@…``, ``max@münster.example``) as
    UTF-8 (an IRI, RFC 3987), NFC-normalised like email-validator stores them.

    Not percent-encoded, although a strict mailto URI (RFC 6068) would be: icalendar, ``ical`` and
    Mozilla's ical.js (Thunderbird) all hand the value back verbatim, so ``ren%C3%A9e`` would reach
    calendar clients and come back in REPLYs as a different address than the one invited, while UTF-8
    reads back exactly in every one of them (tests/events/test_ical_addresses.py)."""
    email = unicodedata.normalize("NFC", (email or "").strip())
    if not _EMAIL.match(email):
        raise ICalError(f"Ungültige E-Mail-Adresse für den Kalender: {email!r}")
    return f"mailto:{email}"


def fold(line: str) -> bytes:
    """ICS-09: at most 75 octets per physical line, never inside a UTF-8 sequence."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return data + b"\r\n"
    out: list[bytes] = []
    limit = 75
    while data:
        cut = min(limit, len(data))
        # step back while the next byte is a UTF-8 continuation byte
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(data[:cut])
        data = data[cut:]
        limit = 74  # the leading space counts
    return b"\r\n ".join(out) + b"\r\n"


def _local(value: datetime) -> str:
    if value.tzinfo is None:
        raise ICalError("Zeitpunkt ohne Zeitzone")
    return value.astimezone(BERLIN).strftime("%Y%m%dT%H%M%S")


def _utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _build(method: str, event: CalendarEvent, attendee: Attendee, dtstamp: datetime | None) -> bytes:
    if event.end <= event.start:
        raise ICalError("Das Ende muss nach dem Beginn liegen.")
    if not re.fullmatch(r"[0-9a-f-]{36}", event.uid):
        raise ICalError("Ungültige UID")
    if attendee.email.strip().lower() == event.organizer_email.strip().lower():
        # MIME-07: Outlook would say "you are the organizer".
        raise ICalError("Teilnehmende Person darf nicht das Funktionspostfach sein.")
    stamp = dtstamp or datetime.now(timezone.utc)
    cancel = method == "CANCEL"
    organizer = "ORGANIZER"
    if event.organizer_name:
        organizer += f";CN={quote_param(event.organizer_name)}"
    organizer += ":" + mailto(event.organizer_email)
    att = "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION"
    att += ";RSVP=FALSE" if cancel else ";RSVP=TRUE"
    if attendee.name:
        att += f";CN={quote_param(attendee.name)}"
    att += ":" + mailto(attendee.email)
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        *VTIMEZONE_BERLIN,
        "BEGIN:VEVENT",
        f"UID:{event.uid}",
        f"SEQUENCE:{int(event.sequence)}",
        f"DTSTAMP:{_utc(stamp)}",
        f"DTSTART;TZID=Europe/Berlin:{_local(event.start)}",
        f"DTEND;TZID=Europe/Berlin:{_local(event.end)}",
        f"SUMMARY;LANGUAGE=de:{escape_text(event.summary)}",
    ]
    if event.location:
        lines.append(f"LOCATION;LANGUAGE=de:{escape_text(event.location)}")
    if event.description:
        lines.append(f"DESCRIPTION;LANGUAGE=de:{escape_text(event.description)}")
    if event.url and not cancel:
        lines.append(f"URL:{_CONTROL.sub('', event.url.replace(chr(13), '').replace(chr(10), ''))}")
    lines += [
        organizer,
        att,
        f"STATUS:{'CANCELLED' if cancel else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "CLASS:PUBLIC",
        # Thunderbird and Outlook fall back to this when SEQUENCE is 0 (calItipUtils).
        f"X-MICROSOFT-CDO-APPT-SEQUENCE:{int(event.sequence)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return b"".join(fold(line) for line in lines)


def build_request(event: CalendarEvent, attendee: Attendee, *, dtstamp: datetime | None = None) -> bytes:
    """Invitation or update (same UID, higher SEQUENCE: ICS-23)."""
    return _build("REQUEST", event, attendee, dtstamp)


def build_cancel(event: CalendarEvent, attendee: Attendee, *, dtstamp: datetime | None = None) -> bytes:
    """CANCEL: caller passes the incremented SEQUENCE (ICS-22)."""
    return _build("CANCEL", event, attendee, dtstamp)
