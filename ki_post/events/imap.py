"""Polling the functional mailbox over IMAP: calendar replies, delivery reports, automatic replies."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from .. import settings
from ..errors import ValidationError
from ..outbox.bounces import might_be_report
from ..outbox.transport import CHECK_SECONDS, connection_problem
from .mailbox import UNKNOWN, MailboxResult, process_mail

# Enough of the header to tell a delivery report or an automatic reply before downloading a mail.
_REPORT_HEADERS = "FROM SUBJECT CONTENT-TYPE AUTO-SUBMITTED X-AUTOREPLY X-AUTORESPOND X-AUTO-RESPONSE-SUPPRESS PRECEDENCE"


@dataclass(frozen=True)
class ImapSettings:
    server: str
    port: int
    use_ssl: bool
    username: str
    password: str
    folder: str
    ca_file: str = ""

    @classmethod
    def of(cls, config) -> ImapSettings:
        return cls(config.get("IMAP_SERVER") or "", int(config.get("IMAP_PORT") or 993), bool(config.get("IMAP_USE_SSL")),
                   config.get("IMAP_USERNAME") or "", config.get("IMAP_PASSWORD") or "", config.get("IMAP_FOLDER") or "INBOX",
                   config.get("IMAP_CA_FILE") or "")


def _connect(values: ImapSettings, timeout: float):
    import imaplib
    import ssl

    if values.use_ssl:
        # imaplib's default context does not check the certificate; this one does.
        context = ssl.create_default_context(cafile=values.ca_file or None)
        return imaplib.IMAP4_SSL(values.server, values.port, timeout=timeout, ssl_context=context)
    return imaplib.IMAP4(values.server, values.port, timeout=timeout)


def _login(connection, username: str, password: str) -> None:
    if f"{username}{password}".isascii():
        connection.login(username, password)
    else:  # imaplib's LOGIN only sends ASCII; AUTHENTICATE PLAIN carries UTF-8
        connection.authenticate("PLAIN", lambda _: f"\0{username}\0{password}".encode())


def _imap_mailbox_name(name: str) -> str:
    """A folder name as an IMAP quoted string in modified UTF-7 (RFC 3501 5.1.3), e.g. "Rückmeldungen".

    imaplib sends arguments as they are: a space would split the name and an umlaut raises.
    """
    import base64

    out, pending = [], []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append(f"&{encoded.decode()}-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    quoted = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


def _imap_text(value: Exception | bytes) -> str:
    """The server's own words from an imaplib error or response (imaplib hands them over as bytes)."""
    if isinstance(value, Exception) and value.args:
        value = value.args[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _may_carry_calendar(bodystructure: bytes) -> bool:
    """Whether a mail's BODYSTRUCTURE might hold a calendar part (RPLY-01), so it is worth downloading.

    Errs on the side of yes: encoded (=?…?=) or RFC 2231 (name*=) file names are not decoded here.
    """
    text = bodystructure.lower()
    return any(marker in text for marker in (b'"calendar"', b'"ics"', b'x-vcalendar', b'.ics"', b"=?", b'*"'))


def _structure_and_headers(parts: list) -> tuple[bytes, bytes]:
    """Split imaplib's FETCH answer into the BODYSTRUCTURE text and the header fields' literal."""
    structure, headers = [], b""
    for part in parts:
        if isinstance(part, tuple):
            structure.append(part[0] or b"")
            if b"HEADER.FIELDS" in (part[0] or b"").upper():
                headers = part[1] or b""
            else:
                structure.append(part[1] or b"")
        elif part:
            structure.append(part)
    return b"".join(structure), headers


def poll_imap(commit: Callable[[], None], on_mail: Callable[[str], None] | None = None) -> MailboxResult:
    """Reads the unread calendar replies and delivery reports of the functional mailbox (settings IMAP_*).

    The mailbox is shared with people: only mails that may be a reply or report are downloaded, and a mail
    is marked read only when the app took it (a REPLY, or a report matched to a sent message), and only
    after ``commit`` has stored it, so a failed commit means reading it again next time (recording is
    idempotent) instead of losing it. Other mails (automatic replies, reports about mails people sent,
    everything else) stay unread; nothing is moved or deleted. ``on_mail`` gets a German line per mail.
    """
    import imaplib
    import ssl

    settings.refresh(force=True)  # the values of Verwaltung → Einstellungen as they are now
    config = current_app.config
    host = config.get("IMAP_SERVER")
    if not host:
        raise ValidationError("Kein IMAP-Server eingestellt (Verwaltung → Einstellungen oder KI_POST_IMAP_SERVER).")
    port = int(config.get("IMAP_PORT") or 993)
    try:
        connection = _connect(ImapSettings.of(config), timeout=60)
    except ssl.SSLCertVerificationError as error:
        raise ValidationError(f"Das Zertifikat des IMAP-Servers {host} ist nicht vertrauenswürdig "
                              f"({error.verify_message}).") from None
    except (OSError, imaplib.IMAP4.error) as error:
        raise ValidationError(f"IMAP-Server {host}:{port} nicht erreichbar: {_imap_text(error)}") from None
    result = MailboxResult()
    try:
        username, password = config.get("IMAP_USERNAME", ""), config.get("IMAP_PASSWORD", "")
        try:
            _login(connection, username, password)
        except imaplib.IMAP4.error as error:
            raise ValidationError("Die Anmeldung am IMAP-Server ist fehlgeschlagen; bitte IMAP_USERNAME und "
                                  f"IMAP_PASSWORD prüfen. (Server: {_imap_text(error)})") from None
        folder = config.get("IMAP_FOLDER") or "INBOX"
        status, data = connection.select(_imap_mailbox_name(folder))
        if status != "OK":
            raise ValidationError(f"Der IMAP-Ordner „{folder}“ lässt sich nicht öffnen. "
                                  f"(Server: {_imap_text(data[-1])})")
        status, data = connection.uid("SEARCH", None, "UNSEEN")
        for uid in (data[0] or b"").split() if status == "OK" else []:
            status, parts = connection.uid("FETCH", uid, f"(BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ({_REPORT_HEADERS})])")
            if status != "OK":
                continue
            structure, headers = _structure_and_headers(parts)
            if not (_may_carry_calendar(structure) or might_be_report(headers, structure)):
                continue
            status, parts = connection.uid("FETCH", uid, "(BODY.PEEK[])")
            raws = [part[1] for part in parts if isinstance(part, tuple)] if status == "OK" else []
            if not raws:
                continue
            outcome = process_mail(raws[0])
            if outcome.kind == UNKNOWN or (outcome.known and not outcome.taken):
                continue  # for people (or seen before and left unread for them): not counted again
            result.add(outcome)
            commit()
            if on_mail is not None:
                on_mail(result.lines[-1])
            if outcome.taken:
                connection.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
    except (OSError, imaplib.IMAP4.error) as error:
        raise ValidationError(f"IMAP-Fehler: {_imap_text(error)}") from None
    finally:
        try:
            connection.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the server may already have closed the connection; nothing is left to do on it
    return result




def check_imap(values: ImapSettings) -> tuple[bool, list[str]]:
    """Connect (SSL as chosen), log in and open the folder read-only – nothing is read or marked.
    Returns (success, what happened, in German sentences for the settings page)."""
    import imaplib
    import time

    where = f"{values.server}:{values.port}"
    steps: list[str] = []
    deadline = time.monotonic() + CHECK_SECONDS
    connection = None
    try:
        connection = _connect(values, timeout=CHECK_SECONDS)
        steps.append(f"Verbunden mit {where}" + (", TLS (SSL) in Ordnung, Zertifikat geprüft." if values.use_ssl else
                                                  " (unverschlüsselt)."))
        connection.sock.settimeout(max(0.1, deadline - time.monotonic()))
        if not values.username:
            steps.append("Kein Benutzername eingetragen: Ohne Anmeldung lässt sich das Postfach nicht lesen.")
            return False, steps
        try:
            _login(connection, values.username, values.password)
        except imaplib.IMAP4.error as error:
            steps.append(f"Anmeldung fehlgeschlagen: Benutzername oder Passwort falsch (Server: {_imap_text(error)}).")
            return False, steps
        steps.append(f"Anmeldung als {values.username} erfolgreich.")
        connection.sock.settimeout(max(0.1, deadline - time.monotonic()))
        status, data = connection.select(_imap_mailbox_name(values.folder), readonly=True)
        if status != "OK":
            steps.append(f"Der Ordner „{values.folder}“ lässt sich nicht öffnen (Server: {_imap_text(data[-1])}).")
            return False, steps
        steps.append(f"Ordner „{values.folder}“ geöffnet ({_imap_text(data[0])} Nachrichten); nichts gelesen oder markiert.")
        return True, steps
    except imaplib.IMAP4.error as error:
        steps.append(f"Der IMAP-Server hat abgelehnt: {_imap_text(error)}.")
    except OSError as error:
        steps.append(connection_problem(error, where, values.server, "kein IMAP-Server", "IMAP_CA_FILE",
                                        "Passt „SSL“ zum Port (meist 993)?"))
    finally:
        if connection is not None:
            try:
                connection.sock.settimeout(1.0)
                connection.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
    return False, steps
