"""The RFC 5322 bytes of a stored outbox message, built by hand (see ``build_mime``).

Headers are 7-bit (RFC 2047 for non-ASCII names and subjects, RFC 2231 for file names), except an
address whose local part is not ASCII: no encoding exists for it, so it stays UTF-8 (RFC 6532) and
the worker sends such a message with SMTPUTF8 only.
"""
from __future__ import annotations

import base64
import binascii
import email
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import encode_rfc2231, format_datetime, formataddr, getaddresses, parseaddr

from ..blobs import load_blob, sha256_of
from .bounces import TOKEN_HEADER
from .models import OutboxMessage


def _header_text(value: str) -> str:
    """RFC 2047 for non-ASCII (folded at 76 characters), plain ASCII as is."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _address(name: str, addr: str) -> str:
    if not name:
        return addr
    if name.isascii():
        # formataddr quotes the name where needed; its address must be ASCII, so it gets a stand-in.
        return formataddr((name, "x@x")).removesuffix("<x@x>") + f"<{addr}>"
    return f"{_header_text(name)} <{addr}>"


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _qp(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(normalised.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _param(name: str, value: str) -> str:
    if value.isascii():
        return '%s="%s"' % (name, value.replace("\\", "\\\\").replace('"', '\\"'))
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def _entity(headers: list[str], body: bytes) -> tuple[list[str], bytes]:
    return headers, body


def _multipart(subtype: str, boundary: str, parts: list[tuple[list[str], bytes]]) -> tuple[list[str], bytes]:
    chunks = []
    marker = b"--" + boundary.encode()
    for headers, body in parts:
        # The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1), so the body keeps its own.
        chunks += [marker, b"\r\n", "\r\n".join(headers).encode(), b"\r\n\r\n", body, b"\r\n"]
    chunks += [marker, b"--\r\n"]
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], b"".join(chunks)


def build_mime(message: OutboxMessage, attachment_data: dict[str, bytes] | None = None,
               encoded_cache: dict[str, bytes] | None = None) -> bytes:
    """The bytes that go to the SMTP server (CRLF line ends; RFC 5322/2045/2047/2231).

    Built by hand rather than with ``email.message`` (5–10× faster, which matters at 150 msg/s);
    tests read the result back with ``email.message_from_bytes(..., policy=policy.default)``.
    ``attachment_data`` and ``encoded_cache`` (base64 per sha256) let the worker load and encode
    a shared attachment once for a whole mailing.
    """
    seed = sha256_of(message.message_id.encode())[:20]
    name, addr = parseaddr(message.from_header)
    headers = [
        f"From: {_address(name, addr) if addr else message.from_header}",
        f"To: {_address(message.to_name, message.to_email)}",
    ]
    if message.reply_to:
        headers.append("Reply-To: " + ", ".join(_address(n, a) for n, a in getaddresses([message.reply_to])))
    headers += [
        f"Subject: {_header_text(message.subject)}",
        f"Date: {format_datetime(message.date)}",
        f"Message-ID: {message.message_id}",
    ]
    token = getattr(message, "bounce_token", None)
    if token:
        # Names this message in a bounce whose Message-ID a server rewrote (see outbox/bounces.py).
        headers.append(f"{TOKEN_HEADER}: {token}")
    headers += [
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-generated",
    ]
    if message.calendar_method:
        headers.append("Content-Class: urn:content-classes:calendarmessage")
    alternatives = [_entity(["Content-Type: text/plain; charset=\"utf-8\"", "Content-Transfer-Encoding: quoted-printable"],
                            _qp(message.text))]
    if message.html:
        alternatives.append(_entity(["Content-Type: text/html; charset=\"utf-8\"", "Content-Transfer-Encoding: quoted-printable"],
                                    _qp(message.html)))
    if message.calendar_data is not None:
        # MIME-01…05: last alternative, method = METHOD, base64 keeps the CRLFs, no disposition.
        alternatives.append(_entity([f'Content-Type: text/calendar; method={message.calendar_method}; charset="UTF-8"',
                                     "Content-Transfer-Encoding: base64"], _base64(message.calendar_data)))
    body = alternatives[0] if len(alternatives) == 1 else _multipart("alternative", f"=_kipost_{seed}_1", alternatives)
    if message.attachments:
        parts = [body]
        for attachment in message.attachments:
            encoded = (encoded_cache or {}).get(attachment.blob_sha256)
            if encoded is None:
                data = (attachment_data or {}).get(attachment.blob_sha256)
                encoded = _base64(data if data is not None else load_blob(attachment.blob_sha256))
                if encoded_cache is not None:
                    encoded_cache[attachment.blob_sha256] = encoded
            parts.append(_entity([
                f"Content-Type: {attachment.mimetype}; {_param('name', attachment.filename)}",
                f"Content-Disposition: attachment; {_param('filename', attachment.filename)}",
                "Content-Transfer-Encoding: base64",
            ], encoded))
        body = _multipart("mixed", f"=_kipost_{seed}_0", parts)
    part_headers, payload = body
    # UTF-8 only where an address needs it (RFC 6532); every other header value is 7-bit by now.
    return ("\r\n".join(headers + part_headers) + "\r\n\r\n").encode("utf-8") + payload


def parse_mime(raw: bytes) -> EmailMessage:
    """Read a message back (preview, .eml viewer). ``email.message_from_bytes`` leaves UTF-8 header
    bytes (RFC 6532) as surrogates, so a message that is valid UTF-8 is read as text; our bodies are
    7-bit anyway (quoted-printable, base64)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]
    return email.message_from_string(text, policy=policy.default)  # type: ignore[return-value]
