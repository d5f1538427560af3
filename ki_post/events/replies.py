"""iTIP REPLY ingestion (standards.md RPLY-01…09): parsing is pure, ``apply_reply_mail`` records it."""
from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import icalendar

from ..errors import ValidationError

VALID_PARTSTATS = {"ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"}


@dataclass(frozen=True)
class ParsedReply:
    uid: str
    attendee_email: str
    attendee_name: str
    partstat: str
    sequence: int
    dtstamp: datetime | None
    comment: str

    @property
    def key(self) -> str:
        stamp = self.dtstamp.strftime("%Y%m%dT%H%M%SZ") if self.dtstamp else ""
        return f"{self.uid}|{self.attendee_email}|{self.sequence}|{stamp}"[:500]


@dataclass
class ParsedMail:
    message_id: str
    from_email: str
    replies: list[ParsedReply] = field(default_factory=list)
    # Calendar parts that were not a usable REPLY, with the reason (for the log, never shown as content).
    skipped: list[str] = field(default_factory=list)


def _is_calendar_part(part: EmailMessage) -> bool:
    """RPLY-01: text/calendar, application/ics, or any part whose file name ends in .ics."""
    ctype = part.get_content_type()
    if ctype in ("text/calendar", "application/ics", "text/x-vcalendar"):
        return True
    filename = (part.get_filename() or "").lower()
    return filename.endswith(".ics") and not part.is_multipart()


def calendar_parts(message: EmailMessage) -> list[bytes]:
    found = []
    for part in message.walk():
        if part.is_multipart() or not _is_calendar_part(part):
            continue
        payload = part.get_payload(decode=True)  # base64 / quoted-printable / 8bit alike
        if payload:
            found.append(payload)
    return found


def _address(value) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()


def _sequence(component) -> int:
    """RPLY-06: fall back to Outlook's own counter when SEQUENCE is missing or 0."""
    seq = int(component.get("SEQUENCE", 0) or 0)
    if not seq:
        seq = int(component.get("X-MICROSOFT-CDO-APPT-SEQUENCE", 0) or 0)
    return seq


def _dtstamp(component) -> datetime | None:
    try:
        value = component.decoded("DTSTAMP")
    except KeyError:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


def parse_calendar(data: bytes) -> tuple[list[ParsedReply], list[str]]:
    replies: list[ParsedReply] = []
    skipped: list[str] = []
    try:
        calendars = icalendar.Calendar.from_ical(data.lstrip(b"\xef\xbb\xbf \r\n\t"), multiple=True)
    except Exception as error:  # a broken part must not stop the mailbox run
        return [], [f"unlesbar: {error.__class__.__name__}"]
    for cal in calendars:
        method = str(cal.get("METHOD", "")).upper()
        if method != "REPLY":  # RPLY-02
            skipped.append(f"METHOD {method or '(fehlt)'}")
            continue
        for event in cal.walk("VEVENT"):
            attendees = event.get("ATTENDEE")
            if attendees is None:
                skipped.append("kein ATTENDEE")
                continue
            if not isinstance(attendees, list):
                attendees = [attendees]
            comment = str(event.get("COMMENT", "") or "")
            for attendee in attendees:
                params = attendee.params
                partstat = str(params.get("PARTSTAT", "")).upper()
                remark = comment or str(params.get("X-RESPONSE-COMMENT", "") or "")  # RPLY-07
                replies.append(
                    ParsedReply(
                        uid=str(event.get("UID", "")).strip(),
                        attendee_email=_address(attendee),
                        attendee_name=str(params.get("CN", "") or ""),
                        partstat=partstat,
                        sequence=_sequence(event),
                        dtstamp=_dtstamp(event),
                        comment=remark.strip(),
                    )
                )
    return replies, skipped


def parse_mail(raw: bytes) -> ParsedMail:
    message = message_from_bytes(raw, policy=policy.default)
    parsed = ParsedMail(
        message_id=str(message.get("Message-ID", "") or "").strip()[:500],
        from_email=parseaddr(str(message.get("From", "") or ""))[1].lower(),
    )
    for data in calendar_parts(message):
        replies, skipped = parse_calendar(data)
        parsed.replies.extend(replies)
        parsed.skipped.extend(skipped)
    return parsed


def _mailbox_messages(box: mailbox.Mailbox) -> Iterator[bytes]:
    for key in box.iterkeys():
        yield box.get_bytes(key)


def iter_mail_source(path: str | os.PathLike) -> Iterator[bytes]:
    """One .eml file, an mbox file, a Maildir directory, or a plain folder of .eml files (an Outlook export).

    Decides eagerly, so that an unusable path fails before anything is read.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return _mailbox_messages(mailbox.Maildir(str(path), factory=None, create=False))
        files = sorted(child for child in path.iterdir() if child.suffix.lower() == ".eml" and child.is_file())
        if not files:
            raise ValidationError(f"Der Ordner „{path}“ ist weder ein Maildir (mit den Unterordnern cur und new) "
                                  "noch enthält er .eml-Dateien.")
        return (file.read_bytes() for file in files)
    if not path.is_file():
        raise ValidationError(f"„{path}“ ist weder eine Datei noch ein Ordner.")
    with path.open("rb") as file:
        is_mbox = file.read(5) == b"From "
    if is_mbox:
        return _mailbox_messages(mailbox.mbox(str(path), create=False))
    return iter([path.read_bytes()])
