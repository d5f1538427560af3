"""What a report from the functional mailbox does to the messages it is about (``bounces.py`` reads it).

Matching, in this order: the Message-ID of the returned original (or In-Reply-To/References of an
automatic reply), the ``X-KI-Post-Nachricht`` token, and only for a report that identifies no original at
all, the recipient's address (any spelling of its domain) with the most recent message sent to it. A report
whose original is none of ours is about a mail a person sent from the shared mailbox: never matched by address.

- Permanent (5.x.x): a sent (or in-doubt) message becomes ``unzustellbar`` with the server's words, and
  its contact is flagged "Adresse unzustellbar seit …" while the contact still has that address.
- Temporary (4.x.x, "delayed"): recorded and shown with the message; nothing else changes.
- Automatic replies: recorded as such; nothing changes.
- A report that matches no sent message is recorded with a note and changes nothing.

Each report is recorded once per recipient (``OutboxBounce.key``), so reading a mailbox again is harmless.
Flushes, never commits.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import func, select

from ..auth.services import audit
from ..db_types import utcnow
from ..extensions import db
from ..recipients import services as recipients
from ..recipients.addresses import address_forms
from ..recipients.models import Contact
from .bounces import FailedRecipient, Report, ReportKind
from .models import MessageState, OutboxBounce, OutboxMessage

# A bounce can only be about a message that went out; "unzustellbar" is here so a second report about
# the same message finds it again (and says so) instead of falling back to an older one.
BOUNCEABLE = (MessageState.GESENDET, MessageState.UNKLAR, MessageState.UNZUSTELLBAR)


@dataclass
class ReportOutcome:
    """What one report did, in German lines for the CLI ("was es war und was sich änderte")."""

    kind: ReportKind
    what: str
    changes: list[str] = field(default_factory=list)
    matched: int = 0  # entries matched to a sent message
    new: int = 0  # entries not recorded before
    undeliverable: int = 0  # messages that became "unzustellbar" now
    flagged: int = 0  # contacts flagged now


def _key(report: Report, raw: bytes, entry: str) -> str:
    # The report's own Message-ID identifies it across mailboxes and uploads; without one, its bytes do.
    identity = report.message_id or hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(f"{identity}\0{report.kind}\0{entry}".encode("utf-8", "replace")).hexdigest()


def find_message(report: Report, recipient: FailedRecipient | None = None) -> tuple[OutboxMessage | None, str]:
    """The sent message a report is about, and how it was found ("message_id", "token", "recipient")."""
    for message_id in report.original_message_ids:
        message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
        if message is not None:
            return message, "message_id"
    if report.original_token:
        message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.bounce_token == report.original_token))
        if message is not None:
            return message, "token"
    if report.kind is ReportKind.AUTO_REPLY or report.original_message_ids or report.original_token:
        # An automatic reply names its sender, not necessarily who we wrote to. A report that names its
        # original and names none of ours is about another mail (people send from this mailbox too).
        return None, ""
    addresses = [recipient.original_recipient, recipient.address] if recipient else []
    forms = address_forms([*addresses, *report.original_to])
    if not forms:
        return None, ""
    message = db.session.scalar(
        select(OutboxMessage).where(func.lower(OutboxMessage.to_email).in_(sorted(forms)),
                                    OutboxMessage.state.in_(BOUNCEABLE), OutboxMessage.sent_at.is_not(None))
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(1))
    return (message, "recipient") if message is not None else (None, "")


def _describe(message: OutboxMessage) -> str:
    return f"Nachricht {message.id} („{message.subject}“, Aussendung {message.mailing_id}) an {message.to_email}"


def _server_words(entry: FailedRecipient) -> str:
    words = entry.diagnostic or "ohne Begründung des Servers"
    return f"{entry.status} {words}".strip() if entry.status and entry.status not in words else words


def apply_report(report: Report, raw: bytes) -> ReportOutcome:
    """Record the report and apply what it says (see the module docstring); flushes."""
    outcome = ReportOutcome(report.kind, f"{report.kind.label}" + (f" ({report.source})" if report.source else ""))
    if report.kind is ReportKind.AUTO_REPLY:
        _record_auto_reply(report, raw, outcome)
    elif report.is_bounce:
        for entry in report.recipients or [FailedRecipient(address="", kind=report.kind)]:
            _apply_entry(report, raw, entry, outcome)
    else:
        outcome.changes.append(report.note or "nichts geändert")
    db.session.flush()
    return outcome


def _record_auto_reply(report: Report, raw: bytes, outcome: ReportOutcome) -> None:
    key = _key(report, raw, report.from_address)
    if db.session.scalar(select(OutboxBounce.id).where(OutboxBounce.key == key)) is not None:
        outcome.changes.append("bereits erfasst; nichts geändert")
        return
    message, matched_by = find_message(report)
    # Only who answered and to which message: the text (absence, deputies, phone numbers) is not kept.
    db.session.add(OutboxBounce(key=key, message_id=message.id if message else None, kind=report.kind,
                                source=report.source, recipient=report.from_address[:254], matched_by=matched_by,
                                note="automatische Antwort: ignoriert"))
    outcome.new += 1
    outcome.matched += message is not None
    about = f" auf {_describe(message)}" if message else ""
    outcome.changes.append(f"automatische Antwort von {report.from_address or 'unbekannt'}{about}: ignoriert, nichts geändert")


def _apply_entry(report: Report, raw: bytes, entry: FailedRecipient, outcome: ReportOutcome) -> None:
    key = _key(report, raw, f"{entry.address}\0{entry.status}")
    who = entry.address or "unbekannte Adresse"
    if db.session.scalar(select(OutboxBounce.id).where(OutboxBounce.key == key)) is not None:
        outcome.changes.append(f"{who}: bereits verarbeitet; nichts geändert")
        return
    message, matched_by = find_message(report, entry)
    record = OutboxBounce(key=key, message_id=message.id if message else None, kind=entry.kind, source=report.source[:60],
                          recipient=(entry.address or (message.to_email if message else ""))[:254], status=entry.status[:20],
                          diagnostic=entry.diagnostic[:2000], matched_by=matched_by)
    db.session.add(record)
    outcome.new += 1
    if message is None:
        record.note = "Keine von KI-Post gesendete Nachricht gefunden (weder Message-ID noch Kennung noch Adresse passen): ignoriert."
        outcome.changes.append(f"{who}: keiner gesendeten Nachricht zuzuordnen; ignoriert")
        return
    outcome.matched += 1
    if entry.kind is ReportKind.TEMPORARY:
        record.note = "vorübergehend: die Nachricht bleibt gesendet, der Server versucht es weiter"
        outcome.changes.append(f"{_describe(message)}: Zustellung verzögert ({_server_words(entry)}); "
                               "Nachricht bleibt gesendet, Ansprechperson nicht markiert")
        return
    words = _server_words(entry)
    if message.state == MessageState.UNZUSTELLBAR:
        record.note = "Die Nachricht war bereits unzustellbar."
        outcome.changes.append(f"{_describe(message)}: war bereits unzustellbar")
    elif message.state in (MessageState.GESENDET, MessageState.UNKLAR):
        message.state = MessageState.UNZUSTELLBAR
        message.server_reply = f"Unzustellbar: {words}"[:4000]
        outcome.undeliverable += 1
        outcome.changes.append(f"{_describe(message)}: jetzt unzustellbar ({words})")
        audit("nachricht.unzustellbar", message, aussendung=message.mailing_id, status=entry.status, zuordnung=matched_by)
    else:
        record.note = f"Die Nachricht ist {message.state_label}; nicht geändert."
        outcome.changes.append(f"{_describe(message)}: ist {message.state_label}; nicht geändert")
    contact = db.session.get(Contact, message.contact_id) if message.contact_id else None
    if contact is None:
        return
    if recipients.mark_undeliverable(contact, message.to_email, words, utcnow()):
        outcome.flagged += 1
        outcome.changes.append(f"Ansprechperson {contact.full_name or contact.email}: Adresse unzustellbar markiert")
    elif contact.undeliverable_since is None:
        outcome.changes.append(f"Ansprechperson {contact.full_name or contact.email} hat inzwischen eine andere Adresse; "
                               "nicht markiert")


def bounces_of(message_ids: list[int]) -> dict[int, list[OutboxBounce]]:
    """The reports recorded per message (for the mailing and message pages)."""
    found: dict[int, list[OutboxBounce]] = {}
    if message_ids:
        for record in db.session.scalars(select(OutboxBounce).where(OutboxBounce.message_id.in_(message_ids))
                                         .order_by(OutboxBounce.received_at, OutboxBounce.id)):
            found.setdefault(record.message_id, []).append(record)
    return found
