"""What a mail in the functional mailbox says about a message we sent: pure parsing, bytes in, result out.

Recognised:

- RFC 3464 delivery status notifications (``multipart/report; report-type=delivery-status``): one entry
  per ``Final-Recipient`` with ``Action``, ``Status`` and ``Diagnostic-Code``; the returned original
  (``message/rfc822``) or its headers (``text/rfc822-headers``) name the message it is about.
- The common reports that are not RFC 3464 (or whose report part is missing or unusable): Exchange/Outlook
  ("Unzustellbar:", "Undeliverable:", "Remote Server returned '550 5.1.1 …'", "#550 5.1.10
  RESOLVER.ADR.RecipientNotFound"), Postfix ("Undelivered Mail Returned to Sender", "The mail system"),
  Gmail ("Delivery Status Notification (Failure)", "Address not found"), Lotus Notes ("DELIVERY FAILURE:
  User … not listed").
- Automatic replies (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``X-Auto-Response-Suppress``,
  ``Precedence: auto_reply``, subjects such as "Abwesenheitsnotiz", "Automatische Antwort", "Out of Office").

The class of the status code decides: 5.x.x is permanent, 4.x.x temporary; without a code, the report's
action ("failed"/"delayed") or its wording does. Nothing here touches the database; ``returns.py`` applies it.
``parse_report`` never raises: a mail it cannot read is ``OTHER`` with the reason in ``note``.
"""
from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum

# The header every outgoing message carries: an unguessable token per message (not its database id),
# so that a report whose Message-ID was rewritten on the way still finds the message.
TOKEN_HEADER = "X-KI-Post-Nachricht"
_TOKEN_IN_TEXT = re.compile(rf"{TOKEN_HEADER}:[ \t]*(?:\r?\n[ \t]+)?([A-Za-z0-9_-]{{16,64}})", re.IGNORECASE)
_MESSAGE_ID_IN_TEXT = re.compile(r"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]{3,250}>)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# "550 5.1.1", "550-5.1.1", "#550 5.1.10", "#5.1.1" (old Exchange: "<mx.example #5.1.1>").
_SMTP_WITH_STATUS = re.compile(r"#?\b([245]\d\d)[ -]#?([245]\.\d{1,3}\.\d{1,3})\b|#([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45]\d\d)[ -]")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\u00a0-\uffff-]+@[A-Za-z0-9\u00a0-\uffff-]+(?:\.[A-Za-z0-9\u00a0-\uffff-]+)+")
_SYSTEM_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|mdaemon|noreply-dmarc)\b", re.IGNORECASE)
_REPORT_SUBJECTS = re.compile(
    r"^\s*(unzustellbar|nicht zustellbar|undeliverable|undelivered mail|undeliverable mail|delivery status notification"
    r"|delivery failure|delivery notification|delivery has failed|mail delivery failed|mail delivery failure"
    r"|returned mail|failure notice|zustellung fehlgeschlagen|unzustellbare nachricht|warning: could not send"
    r"|delayed mail|delivery delayed|zustellung verzögert|übermittlungsstatusbenachrichtigung|non remis"
    r"|message not delivered|nachricht nicht zugestellt)", re.IGNORECASE)
_DELAY_WORDS = re.compile(
    r"\(delay\)|delayed|delivery delayed|verzögert|still being retried|will continue trying|wird weiterhin versucht"
    r"|warning: could not send|has not yet been delivered|noch nicht zugestellt|DELIVERY DELAYED", re.IGNORECASE)
_AUTO_REPLY_SUBJECTS = re.compile(
    r"^\s*(abwesenheitsnotiz|abwesenheit|automatische antwort|automatic reply|auto(?:matic)?[ -]?reply|autoreply"
    r"|out of (the )?office|ich bin nicht im büro|ich bin abwesend|abwesend|auto:|réponse automatique"
    r"|risposta automatica|respuesta automática)", re.IGNORECASE)
_NOTES_USER = re.compile(r"User\s+(.{0,200}?)\s+not listed[^\r\n]{0,200}", re.IGNORECASE | re.DOTALL)
_EXCHANGE_REMOTE = re.compile(r"Remote Server returned '([^']{1,500})'", re.IGNORECASE)
_LIMIT = 2000  # stored server words: enough for any real diagnostic, bounded for a hostile one


class ReportKind(StrEnum):
    """What a mail in the functional mailbox is, as far as sent messages are concerned."""

    PERMANENT = "unzustellbar"
    TEMPORARY = "verzoegert"
    AUTO_REPLY = "automatisch"
    OTHER = "sonstige"

    @property
    def label(self) -> str:
        return REPORT_KIND_LABELS[self]


REPORT_KIND_LABELS = {
    ReportKind.PERMANENT: "dauerhaft unzustellbar",
    ReportKind.TEMPORARY: "vorübergehend nicht zugestellt",
    ReportKind.AUTO_REPLY: "automatische Antwort (z. B. Abwesenheitsnotiz)",
    ReportKind.OTHER: "keine Zustellungsnachricht",
}


@dataclass(frozen=True)
class FailedRecipient:
    address: str  # lower-case as reported; "" when the report names none
    kind: ReportKind  # PERMANENT or TEMPORARY
    status: str = ""  # enhanced status code "5.1.1" (RFC 3463), "" when the report gives none
    action: str = ""  # RFC 3464 Action (failed, delayed) or "" for reports without one
    diagnostic: str = ""  # the server's words
    original_recipient: str = ""  # RFC 3464 Original-Recipient (the address we sent to, before forwarding)


@dataclass
class Report:
    kind: ReportKind
    # From the report mail itself.
    message_id: str = ""
    subject: str = ""
    from_address: str = ""
    # Which mail system wrote it (for people reading the log): "RFC 3464", "Exchange", "Postfix" …
    source: str = ""
    recipients: list[FailedRecipient] = field(default_factory=list)
    # What identifies the message it is about: from the returned original, or In-Reply-To/References.
    original_message_ids: list[str] = field(default_factory=list)
    original_token: str = ""
    original_to: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def is_bounce(self) -> bool:
        return self.kind in (ReportKind.PERMANENT, ReportKind.TEMPORARY)


def parse_report(raw: bytes) -> Report:
    """Classify one mail (see the module docstring); never raises."""
    try:
        return _parse(raw)
    except Exception as error:  # noqa: BLE001 - a hostile or broken mail must not stop the mailbox run
        return Report(ReportKind.OTHER, note=f"unlesbar ({error.__class__.__name__})")


# --- reading helpers ------------------------------------------------------------------------------------

def _header(message: Message, name: str) -> str:
    """A header as text, RFC 2047 decoded, unfolded; "" when missing or undecodable."""
    value = message.get(name)
    if value is None:
        return ""
    text = str(value)
    try:
        text = str(make_header(decode_header(text)))
    except Exception:  # noqa: BLE001 - a broken encoded word: keep the raw text
        pass
    return " ".join(text.split())


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload() or "").encode("utf-8", "replace")
    charset = part.get_content_charset() or "utf-8"
    # Mail servers put UTF-8 addresses (RFC 6531) into parts they label us-ascii: UTF-8 before replacing.
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _html_to_text(html: str) -> str:
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", html)
    text = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


def _address(value: str) -> str:
    """The bare, lower-case address of "rfc822; <a@b>", "<a@b>", "Name <a@b>" or "a@b"."""
    value = value.strip()
    if ";" in value:
        kind, _, rest = value.partition(";")
        if kind.strip().lower() in ("rfc822", "utf-8", "x-ms-exch", "smtp", "unknown"):
            value = rest.strip()
    found = _ADDRESS.search(value)
    return found.group(0).strip(".").lower() if found else ""


def _status_of(text: str) -> str:
    found = _STATUS.search(text or "")
    return ".".join(found.groups()) if found else ""


def _kind_for(status: str, action: str = "", wording: str = "") -> ReportKind:
    if status.startswith("5"):
        return ReportKind.PERMANENT
    if status.startswith("4"):
        return ReportKind.TEMPORARY
    if status.startswith("2"):
        return ReportKind.OTHER  # delivered / relayed
    action = action.lower()
    if action == "failed":
        return ReportKind.PERMANENT
    if action == "delayed":
        return ReportKind.TEMPORARY
    if action in ("delivered", "relayed", "expanded"):
        return ReportKind.OTHER
    return ReportKind.TEMPORARY if _DELAY_WORDS.search(wording or "") else ReportKind.PERMANENT


def _message_ids(text: str) -> list[str]:
    return re.findall(r"<[^<>\s]{3,250}>", text or "")


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status part: the parser's own list, or (when the part was
    transfer-encoded, or the parser kept it as text) the decoded text split at blank lines."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(block, Message) for block in payload):
        if part.get("Content-Transfer-Encoding", "").strip().lower() not in ("base64", "quoted-printable"):
            return payload
    text = _text_of(part) if not isinstance(payload, list) else "\n\n".join(
        block.as_string() if isinstance(block, Message) else str(block) for block in payload)
    if part.get("Content-Transfer-Encoding", "").strip().lower() in ("base64", "quoted-printable") and isinstance(payload, list):
        # The parser split the still-encoded text; decode the whole part again.
        text = _decode_transfer(part, text)
    blocks = re.split(r"\r?\n[ \t]*\r?\n", text.replace("\r\n", "\n").strip())
    return [email.message_from_string(block.strip() + "\n", policy=policy.compat32) for block in blocks if block.strip()]


def _decode_transfer(part: Message, text: str) -> str:
    import base64
    import quopri

    encoding = part.get("Content-Transfer-Encoding", "").strip().lower()
    body = text.split("\n\n", 1)[-1] if text.startswith(("Content-", "content-")) else text
    try:
        data = base64.b64decode(re.sub(r"\s+", "", body)) if encoding == "base64" else quopri.decodestring(body.encode())
    except ValueError:
        return text
    return data.decode("utf-8", "replace")


def _original_headers(message: Message) -> list[Message]:
    """The returned original (message/rfc822) or its headers (text/rfc822-headers), every one found."""
    found = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found.append(inner)
            else:
                found.append(email.message_from_string(_text_of(part), policy=policy.compat32))
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            found.append(email.message_from_string(_text_of(part), policy=policy.compat32))
    return found


def _body_text(message: Message) -> str:
    """The human-readable text of the report (without the returned original), for the wording-based rules."""
    chunks = []

    def visit(part: Message) -> None:
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers", "message/delivery-status",
                     "message/global-delivery-status"):
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for sub in payload:
                    if isinstance(sub, Message):
                        visit(sub)
            return
        if ctype == "text/plain":
            chunks.append(_text_of(part))
        elif ctype == "text/html":
            chunks.append(_html_to_text(_text_of(part)))

    visit(message)
    return "\n".join(chunks)


# --- the parts of a report ---------------------------------------------------------------------------------

def _rfc3464_recipients(message: Message) -> tuple[list[FailedRecipient], int]:
    """(failed or delayed recipients, how many per-recipient entries the delivery-status parts held)."""
    recipients: list[FailedRecipient] = []
    entries = 0
    for part in message.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        blocks = _field_blocks(part)
        for block in blocks:
            final = _header(block, "Final-Recipient")
            if not final and not _header(block, "Action"):
                continue  # the per-message block (Reporting-MTA, Arrival-Date …)
            entries += 1
            action = _header(block, "Action").lower().split(" ")[0] if _header(block, "Action") else ""
            status = _status_of(_header(block, "Status"))
            diagnostic = _header(block, "Diagnostic-Code")
            if ";" in diagnostic:
                diagnostic = diagnostic.partition(";")[2].strip()
            kind = _kind_for(status or _status_of(diagnostic), action)
            if kind is ReportKind.OTHER:
                continue  # delivered, relayed, expanded: nothing went wrong for this one
            recipients.append(FailedRecipient(
                address=_address(final or _header(block, "Original-Recipient")), kind=kind,
                status=status or _status_of(diagnostic), action=action, diagnostic=diagnostic[:_LIMIT],
                original_recipient=_address(_header(block, "Original-Recipient"))))
    return recipients, entries


def _is_report_container(message: Message) -> bool:
    return (message.get_content_type() == "multipart/report"
            and (message.get_param("report-type") or "").lower() in ("delivery-status", "global-delivery-status"))


def _looks_like_ndr(subject: str, sender: str, text: str) -> str:
    """The mail system that wrote a report without (usable) RFC 3464 part, or "" if it is none."""
    local = sender.partition("@")[0]
    exchange = bool(_EXCHANGE_REMOTE.search(text) or re.search(r"RESOLVER\.[A-Z]+\.[A-Za-z]+|Diagnostic information for administrators"
                                                                r"|Diagnoseinformationen für Administratoren", text))
    if exchange or re.match(r"^\s*(unzustellbar|undeliverable|nicht zustellbar)\s*:", subject, re.IGNORECASE):
        return "Exchange/Outlook"
    if re.match(r"^\s*DELIVERY (FAILURE|DELAYED|REPORT)", subject) or "not listed in Domino Directory" in text \
            or re.search(r"not listed in (the )?public Name (&|and) Address Book", text):
        return "Lotus Notes/Domino"
    if re.match(r"^\s*Delivery Status Notification", subject, re.IGNORECASE) or "mailer-daemon@google" in sender:
        return "Gmail"
    if re.match(r"^\s*Undelivered Mail Returned to Sender|^\s*Delayed Mail", subject, re.IGNORECASE) or (
            _SYSTEM_SENDERS.match(local) and "The mail system" in text):
        return "Postfix"
    if _REPORT_SUBJECTS.match(subject) or (_SYSTEM_SENDERS.match(local) and (_STATUS.search(text) or _SMTP_CODE.search(text))):
        return "Mailserver"
    return ""


def _text_recipients(subject: str, text: str, excluded: set[str]) -> list[FailedRecipient]:
    """Recipients of a report without a delivery-status part, read from the wording of each mail system."""
    found: dict[str, FailedRecipient] = {}

    def add(address: str, diagnostic: str) -> None:
        address = address.lower().strip(".")
        if not address or address in excluded or address in found:
            return
        diagnostic = " ".join(diagnostic.split())[:_LIMIT]
        status = _status_of(diagnostic)
        if not status:
            code = _SMTP_CODE.search(diagnostic)
            status = f"{code.group(1)[0]}.0.0" if code else ""
        found[address] = FailedRecipient(address=address, kind=_kind_for(status, wording=subject + "\n" + text),
                                         status=status, diagnostic=diagnostic)

    lines = text.replace("\r\n", "\n").split("\n")
    # Postfix: "<a@b>: host mx.b[192.0.2.1] said: 550 5.1.1 … (in reply to RCPT TO command)", possibly folded.
    for match in re.finditer(r"^<([^<>\s]+@[^<>\s]+)>(?: \(expanded from <[^>]*>\))?:\s*(.+?)(?=\n\s*\n|\n<[^<>\s]+@|\Z)",
                             text.replace("\r\n", "\n"), re.MULTILINE | re.DOTALL):
        add(match.group(1), match.group(2))
    # Exchange: "Remote Server returned '550 5.1.1 <a@b>… User unknown'" / "#550 5.1.10 RESOLVER.ADR… ##".
    for index, line in enumerate(lines):
        remote = _EXCHANGE_REMOTE.search(line)
        smtp = _SMTP_WITH_STATUS.search(line)
        if not (remote or (smtp and ("#" in line or "RESOLVER" in line or "##" in line))):
            continue
        diagnostic = remote.group(1) if remote else line.strip()
        here = _ADDRESS.findall(diagnostic)
        if here:
            add(here[0], diagnostic)
            continue
        # The address stands on a line above (Exchange 2010+: the address, then "Remote Server returned …"
        # or "#550 5.1.10 …"; older: "a@b on 12.02.2017 10:00").
        for previous in reversed(lines[max(0, index - 8):index]):
            candidates = [a for a in _ADDRESS.findall(previous) if a.lower() not in excluded]
            if candidates:
                add(candidates[0], diagnostic)
                break
    # Lotus Notes: "User Erika Muster (erika.muster@kreis.example) not listed in Domino Directory".
    for match in _NOTES_USER.finditer(subject + "\n" + text):
        addresses = _ADDRESS.findall(match.group(1))
        if addresses:
            add(addresses[0], match.group(0))
    # Gmail: "Your message wasn't delivered to a@b because …" and "The response from the remote server was: 550 …".
    for match in re.finditer(r"(?:(?:wasn't|was not) delivered to|problem delivering your message to"
                             r"|wurde nicht zugestellt an|konnte nicht zugestellt werden an)\s+"
                             r"([^\s<>()]+@[^\s<>()]+?)[.,]?\s", text, re.IGNORECASE):
        response = re.search(r"(?:response from the remote server was|The response was|Antwort des Remoteservers lautete):?\s*\n?(.{1,500})",
                             text, re.IGNORECASE)
        add(match.group(1), response.group(1) if response else match.group(0))
    if not found:
        # Last resort: every address in the report's text but our own and the reporter's, with the first
        # line that carries a status code as the server's words.
        code_line = next((line for line in lines if _STATUS.search(line) or _SMTP_CODE.search(line)), "")
        for address in _ADDRESS.findall(text):
            add(address, code_line or subject)
            break
    return list(found.values())


def _is_auto_reply(message: Message, subject: str) -> bool:
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond") or _header(message, "X-Auto-Response-Suppress"):
        return True
    if _header(message, "Precedence").lower() in ("auto_reply", "auto-reply"):
        return True
    return bool(_AUTO_REPLY_SUBJECTS.match(subject))


def _parse(raw: bytes) -> Report:
    message = email.message_from_bytes(raw, policy=policy.compat32)
    subject = _header(message, "Subject")
    sender = parseaddr(_header(message, "From"))[1].lower()
    report = Report(ReportKind.OTHER, message_id=_header(message, "Message-ID")[:500], subject=subject[:500],
                    from_address=sender[:254])
    recipients, entries = _rfc3464_recipients(message)
    text = _body_text(message)
    system = _looks_like_ndr(subject, sender, text)
    if entries or _is_report_container(message):
        report.source = f"{system} (RFC 3464)" if system and system != "Mailserver" else "RFC 3464"
    elif system:
        report.source = system
    else:
        if _is_auto_reply(message, subject):
            report.kind = ReportKind.AUTO_REPLY
            report.source = "automatische Antwort"
            refs = _message_ids(_header(message, "In-Reply-To")) + _message_ids(_header(message, "References"))
            report.original_message_ids = list(dict.fromkeys(refs))[:5]
        return report
    excluded = {sender, *(_address(a) for _, a in getaddresses([_header(message, "To")]))} - {""}
    if not entries:
        recipients = _text_recipients(subject, text, excluded)
    for original in _original_headers(message):
        report.original_message_ids += _message_ids(_header(original, "Message-ID"))[:1]
        token = _header(original, TOKEN_HEADER)
        if token and not report.original_token:
            report.original_token = token.split()[0][:64]
        report.original_to += [a.lower() for _, a in getaddresses([_header(original, "To")]) if "@" in a]
    # Reports that quote the original's headers in their text instead of returning it as a part.
    whole = raw.decode("utf-8", "replace")
    if not report.original_token:
        token = _TOKEN_IN_TEXT.search(whole)
        report.original_token = token.group(1) if token else ""
    if not report.original_message_ids:
        report.original_message_ids = [m for m in _MESSAGE_ID_IN_TEXT.findall(whole) if m != report.message_id][:1]
    wording = subject + "\n" + text
    if not recipients and not entries and report.original_to:
        status = _status_of(text)
        recipients = [FailedRecipient(address=report.original_to[0], kind=_kind_for(status, wording=wording),
                                      status=status, diagnostic=" ".join(text.split())[:300])]
    report.recipients = recipients
    kinds = {r.kind for r in recipients}
    if ReportKind.PERMANENT in kinds:
        report.kind = ReportKind.PERMANENT
    elif ReportKind.TEMPORARY in kinds:
        report.kind = ReportKind.TEMPORARY
    elif entries:
        report.note = "Zustellbericht ohne Fehler (zugestellt oder weitergeleitet)"
    else:
        report.kind = _kind_for("", wording=wording)
        report.note = "Zustellungsnachricht ohne erkennbare Empfängeradresse"
    return report


def might_be_report(headers: bytes, bodystructure: bytes = b"") -> bool:
    """Whether a mail may be a delivery report or an automatic reply, judged from its headers (and IMAP
    BODYSTRUCTURE), so that a mailbox poll downloads only those. Errs on the side of yes."""
    structure = bodystructure.lower()
    if b'"report"' in structure or b"delivery-status" in structure or b"rfc822-headers" in structure:
        return True
    try:
        message = email.message_from_bytes(headers, policy=policy.compat32)
        subject = _header(message, "Subject")
        sender = parseaddr(_header(message, "From"))[1].lower()
        if "report" in _header(message, "Content-Type").lower():
            return True
        return bool(_REPORT_SUBJECTS.match(subject) or _SYSTEM_SENDERS.match(sender.partition("@")[0])
                    or re.match(r"^\s*DELIVERY (FAILURE|DELAYED|REPORT)", subject) or _is_auto_reply(message, subject))
    except Exception:  # noqa: BLE001 - unreadable headers: let the full parse decide
        return True
