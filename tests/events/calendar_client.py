"""A simulated calendar client, independent of KI-Post's code: one per mailbox, it reads every mail that
arrived there in arrival order, parses its text/calendar part with the ``icalendar`` library and applies
it by the rules of RFC 5546 (iTIP) as a calendar program does:

- REQUEST for an unknown UID adds the event; for a known UID it replaces the entry only with a higher
  SEQUENCE (or the same SEQUENCE and a newer DTSTAMP); an older one is ignored.
- CANCEL removes the entry when its SEQUENCE is not lower than the entry's; the UID is remembered as
  cancelled, so a late REQUEST with a SEQUENCE not above the CANCEL's is ignored (a higher one would
  bring the event back, as real clients do: the test's invariants then fail).
- REPLY mails are what this client sends back (``reply``), built with ``icalendar`` too.

It only checks what a client can see (one ATTENDEE, the mailbox itself; METHOD of the part and of the
object agree) and keeps a log, so the tests can compare each mailbox with what the event is now.
"""
from __future__ import annotations

import email
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage

import icalendar

_LINK = re.compile(r"(?:\n\n)?Ihre Antwort: \S+\s*$")


@dataclass(frozen=True)
class Entry:
    """What a calendar shows of one event."""

    uid: str
    sequence: int
    dtstamp: datetime
    summary: str
    start: datetime
    end: datetime
    location: str
    description: str  # without the personal answer link the organizer appends

    def facts(self) -> tuple:
        return self.summary, self.start, self.end, self.location, self.description


@dataclass
class Received:
    """One mail as the mailbox saw it."""

    raw: bytes
    message: EmailMessage
    to_name: str
    to_address: str
    subject: str
    text: str
    method: str | None  # REQUEST, CANCEL or None (no calendar part)
    entry: Entry | None  # the VEVENT of the calendar part, if any
    before: Entry | None  # this mailbox's entry for that UID before the mail was applied
    effect: str = ""  # "added", "updated", "ignored", "removed", "" (no calendar part)


def _text(value) -> str:
    return str(value) if value is not None else ""


def _aware(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    raise AssertionError(f"Zeitpunkt ohne Uhrzeit im Kalender: {value!r}")


def parse_entry(vevent) -> Entry:
    return Entry(
        uid=_text(vevent.get("UID")),
        sequence=int(vevent.get("SEQUENCE", 0) or 0),
        dtstamp=_aware(vevent.decoded("DTSTAMP")),
        summary=_text(vevent.get("SUMMARY")),
        start=_aware(vevent.decoded("DTSTART")),
        end=_aware(vevent.decoded("DTEND")),
        location=_text(vevent.get("LOCATION")),
        description=_LINK.sub("", _text(vevent.get("DESCRIPTION"))),
    )


def calendar_of(message: EmailMessage) -> tuple[str, object] | None:
    """(METHOD, VEVENT) of the mail's text/calendar part, checking what a client checks."""
    parts = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    if not parts:
        return None
    assert len(parts) == 1, "mehr als ein Kalenderteil"
    data = parts[0].get_payload(decode=True)
    calendar = icalendar.Calendar.from_ical(data)
    method = _text(calendar.get("METHOD")).upper()
    assert parts[0].get_param("method", "").upper() == method, "METHOD des Mail-Teils und der Kalenderdatei weichen ab"
    events = calendar.walk("VEVENT")
    assert len(events) == 1, "nicht genau ein VEVENT"
    return method, events[0]


class Mailbox:
    def __init__(self, address: str):
        self.address = address.lower()
        self.calendar: dict[str, Entry] = {}
        self.cancelled: dict[str, int] = {}  # UID -> SEQUENCE of the CANCEL seen
        self.log: list[Received] = []

    def receive(self, raw: bytes) -> Received:
        message = email.message_from_bytes(raw, policy=policy.default)
        to = message["To"].addresses
        assert len(to) == 1 and message["Cc"] is None, "genau eine Empfängerin oder ein Empfänger je Nachricht"
        assert to[0].addr_spec.lower() == self.address, f"Nachricht an {to[0].addr_spec} im Postfach {self.address}"
        body = message.get_body(("plain",))
        received = Received(raw, message, to[0].display_name, to[0].addr_spec.lower(), str(message["Subject"]),
                            body.get_content() if body is not None else "", None, None, None)
        found = calendar_of(message)
        if found is not None:
            method, vevent = found
            attendees = vevent.get("ATTENDEE")
            assert not isinstance(attendees, list), "mehr als ein ATTENDEE"
            assert _text(attendees).lower() == f"mailto:{self.address}", "ATTENDEE ist nicht dieses Postfach"
            entry = parse_entry(vevent)
            received.method, received.entry = method, entry
            received.before = self.calendar.get(entry.uid)
            received.effect = self._apply(method, entry)
        self.log.append(received)
        return received

    def _apply(self, method: str, entry: Entry) -> str:
        known = self.calendar.get(entry.uid)
        if method == "REQUEST":
            if entry.uid in self.cancelled and entry.sequence <= self.cancelled[entry.uid]:
                return "ignored"
            if known is None:
                self.calendar[entry.uid] = entry
                return "added"
            if entry.sequence > known.sequence or (entry.sequence == known.sequence and entry.dtstamp >= known.dtstamp):
                self.calendar[entry.uid] = entry
                return "updated"
            return "ignored"
        if method == "CANCEL":
            if known is not None and entry.sequence < known.sequence:
                return "ignored"
            self.calendar.pop(entry.uid, None)
            self.cancelled[entry.uid] = max(entry.sequence, self.cancelled.get(entry.uid, -1))
            return "removed"
        return "ignored"

    def reply(self, uid: str, partstat: str, organizer: str, *, stamp: datetime, attendee: str | None = None,
              name: str = "") -> bytes:
        """The iTIP REPLY this client sends for its entry (its UID and SEQUENCE), as a mail."""
        entry = self.calendar[uid]
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//Simulierter Kalender//DE")
        calendar.add("version", "2.0")
        calendar.add("method", "REPLY")
        vevent = icalendar.Event()
        vevent.add("uid", entry.uid)
        vevent.add("sequence", entry.sequence)
        vevent.add("dtstamp", stamp)
        vevent.add("dtstart", entry.start)
        vevent.add("dtend", entry.end)
        vevent.add("summary", entry.summary)
        vevent.add("organizer", f"mailto:{organizer}")
        vevent.add("attendee", f"mailto:{attendee or self.address}", parameters={"PARTSTAT": partstat, "CN": name})
        calendar.add_component(vevent)
        message = EmailMessage()
        message["From"] = self.address
        message["To"] = organizer
        message["Subject"] = f"Antwort: {entry.summary}"
        message["Message-ID"] = f"<{uuid.uuid4()}@kalender.example>"
        message.set_content("Antwort aus dem Kalenderprogramm.")
        message.add_alternative(calendar.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"})
        return message.as_bytes(policy=policy.SMTP)


@dataclass
class Clients:
    """Every mailbox's client, fed with what the SMTP server received, in arrival order."""

    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    seen: int = 0

    def mailbox(self, address: str) -> Mailbox:
        address = address.lower()
        return self.mailboxes.setdefault(address, Mailbox(address))

    def deliver(self, received: list) -> list[Received]:
        """Apply what arrived since the last call (``received``: the SMTP server's list)."""
        new = []
        for item in received[self.seen:]:
            for rcpt in item.rcpt_tos:
                new.append(self.mailbox(rcpt).receive(item.content))
        self.seen = len(received)
        return new
