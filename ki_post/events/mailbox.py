"""The functional mailbox, one road for everything that comes back: calendar replies (this package) and
delivery reports and automatic replies about sent messages (``outbox.bounces`` / ``outbox.returns``).

It sits in the events package because calendar replies live here and the outbox must not import
upwards; the outbox knows nothing of calendars. Per mail: a delivery report is a bounce, even if it
returns an invitation with its calendar part; otherwise a calendar REPLY is an answer; otherwise an
automatic reply is recorded and ignored; anything else is left for people.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage

from ..formatting import anzahl
from ..errors import ValidationError
from ..extensions import db
from ..outbox.bounces import ReportKind, parse_report
from ..outbox.returns import apply_report
from .calendar_replies import REPLY_SUMMARY_LABELS, IngestResult, _apply_one
from .replies import iter_mail_source, parse_mail

log = logging.getLogger(__name__)

CALENDAR = "kalenderantwort"
UNKNOWN = "unbekannt"
UNMATCHED = "nicht_zugeordnet"  # a bounce about no message KI-Post sent (in the counts only)


@dataclass
class MailOutcome:
    """One mail: what it was (``kind``: a ReportKind value, CALENDAR or UNKNOWN) and what changed."""

    kind: str
    what: str
    subject: str = ""
    sender: str = ""
    changes: list[str] = field(default_factory=list)
    reply_statuses: list[str] = field(default_factory=list)
    # Whether the app now holds it (a calendar reply recorded, a report matched to a sent message): only
    # such mails are marked read in the IMAP mailbox; the others stay unread for the people who share it.
    taken: bool = False
    # Everything in it had been processed before.
    known: bool = False

    def line(self, number: int) -> str:
        head = f"Mail {number}"
        if self.subject or self.sender:
            head += f" („{self.subject[:80]}“ von {self.sender or 'unbekannt'})"
        return f"{head}: {self.what}" + "".join(f"\n  – {change}" for change in self.changes)


def process_mail(raw: bytes) -> MailOutcome:
    """Classify one mail and apply it; flushes, never commits."""
    report = parse_report(raw)
    base = dict(subject=report.subject, sender=report.from_address)
    if report.is_bounce or report.source and report.kind is not ReportKind.AUTO_REPLY:
        done = apply_report(report, raw)
        return MailOutcome(report.kind.value, done.what, changes=done.changes, taken=done.matched > 0,
                           known=done.new == 0, **base)
    parsed = parse_mail(raw)
    if parsed.replies:
        outcome = MailOutcome(CALENDAR, "Kalenderantwort", **base)
        for reply in parsed.replies:
            record = _apply_one(reply, parsed.message_id, parsed.from_email)
            if record is None:
                outcome.changes.append(f"{reply.attendee_email}: bereits verarbeitet")
                continue
            outcome.reply_statuses.append(record.status)
            outcome.changes.append(f"{reply.attendee_email} ({reply.partstat or 'ohne Antwort'}): "
                                   f"{REPLY_SUMMARY_LABELS.get(record.status, record.status)}")
        outcome.taken = True  # as before: a mail with a REPLY is read once it is stored (RPLY-08)
        outcome.known = not outcome.reply_statuses
        return outcome
    if report.kind is ReportKind.AUTO_REPLY:
        done = apply_report(report, raw)
        return MailOutcome(report.kind.value, done.what, changes=done.changes, known=done.new == 0, **base)
    note = "; ".join(parsed.skipped) if parsed.skipped else ""
    return MailOutcome(UNKNOWN, "weder Kalenderantwort noch Zustellungsnachricht" + (f" ({note})" if note else ""),
                       changes=["nicht verarbeitet"], **base)


@dataclass
class MailboxResult(IngestResult):
    """The calendar counts of ``IngestResult`` (``statuses``) plus the reports, and a line per mail."""

    kinds: Counter = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)

    def add(self, outcome: MailOutcome) -> None:
        self.mails += 1
        bounce = outcome.kind in (ReportKind.PERMANENT.value, ReportKind.TEMPORARY.value)
        self.kinds[UNMATCHED if bounce and not outcome.taken else outcome.kind] += 1
        for status in outcome.reply_statuses:
            self.statuses[status] += 1
        self.lines.append(outcome.line(self.mails))

    def summary(self) -> str:
        parts = [f"{anzahl(self.mails, 'Mail', 'Mails')} gelesen"]
        parts += [f"{self.statuses[key]} {label}" for key, label in REPLY_SUMMARY_LABELS.items() if self.statuses[key]]
        labels = {ReportKind.PERMANENT.value: ("unzustellbar", "unzustellbar"),
                  ReportKind.TEMPORARY.value: ("verzögert", "verzögert"),
                  ReportKind.AUTO_REPLY.value: ("automatische Antwort", "automatische Antworten"),
                  UNMATCHED: ("Zustellungsnachricht ohne passende Nachricht", "Zustellungsnachrichten ohne passende Nachricht"),
                  UNKNOWN: ("nicht verarbeitet", "nicht verarbeitet")}
        parts += [anzahl(self.kinds[key], *label) for key, label in labels.items() if self.kinds[key]]
        return ", ".join(parts) + "."


def ingest_mails(raw_mails: Iterable[bytes], on_mail: Callable[[str], None] | None = None) -> MailboxResult:
    result = MailboxResult()
    for raw in raw_mails:
        result.add(process_mail(raw))
        if on_mail is not None:
            on_mail(result.lines[-1])
    return result


def ingest_path(path: str, on_mail: Callable[[str], None] | None = None) -> MailboxResult:
    """One .eml file, an mbox file, a Maildir directory or a folder of .eml files."""
    if not os.path.exists(path):
        raise ValidationError(f"Die Datei oder der Ordner „{path}“ existiert nicht.")
    return ingest_mails(iter_mail_source(path), on_mail)


# --- files uploaded in the browser ---------------------------------------------------------------------
UPLOAD_SUFFIXES = (".eml", ".ics")
MSG_REFUSED = ("Outlook-Dateien (.msg) kann KI-Post nicht lesen. Bitte die Mail als .eml speichern (Outlook im Web und "
               "das neue Outlook: „Herunterladen“; Thunderbird: „Speichern unter“) oder an das Funktionspostfach "
               "weiterleiten, das KI-Post abruft.")


@dataclass
class FileOutcome:
    """One uploaded file: what it was and what changed (``ok`` False: refused or unreadable, nothing changed)."""

    filename: str
    what: str
    changes: list[str] = field(default_factory=list)
    ok: bool = True


def _calendar_mail(filename: str, data: bytes) -> bytes:
    """A bare .ics (saved from a calendar program) as the mail it would have come in, for the one mail road."""
    message = EmailMessage()
    message["Subject"] = filename
    message.set_content(data, maintype="text", subtype="calendar", params={"method": "REPLY"}, filename=filename)
    return message.as_bytes()


def ingest_files(files: Iterable[tuple[str, bytes]]) -> tuple[MailboxResult, list[FileOutcome]]:
    """Uploaded .eml/.ics files, each processed like a mail of the mailbox (``process_mail``).

    A file that cannot be processed is reported for that file and rolled back alone (a savepoint); the
    others are applied. Flushes, never commits.
    """
    result, outcomes = MailboxResult(), []
    for filename, data in files:
        suffix = os.path.splitext(filename.lower())[1]
        if suffix == ".msg":
            outcomes.append(FileOutcome(filename, MSG_REFUSED, ok=False))
            continue
        if suffix not in UPLOAD_SUFFIXES:
            outcomes.append(FileOutcome(filename, "Keine .eml- oder .ics-Datei; nicht verarbeitet.", ok=False))
            continue
        if not data.strip():
            outcomes.append(FileOutcome(filename, "Die Datei ist leer; nicht verarbeitet.", ok=False))
            continue
        raw = _calendar_mail(filename, data) if suffix == ".ics" else data
        try:
            with db.session.begin_nested():
                outcome = process_mail(raw)
        except Exception:  # one unreadable file must not cost the others their answers
            log.exception("Hochgeladene Datei %s ließ sich nicht verarbeiten", filename)
            outcomes.append(FileOutcome(filename, "Die Datei ließ sich nicht lesen; nichts wurde übernommen.", ok=False))
            continue
        result.add(outcome)
        outcomes.append(FileOutcome(filename, outcome.what, outcome.changes, ok=outcome.kind != UNKNOWN))
    return result, outcomes
