"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), reusable by every package.

    with SmtpServer() as smtp:                      # or the `smtp` fixture of tests/outbox/conftest.py
        smtp.handler.rcpt_replies["x@y.de"] = "550 5.1.1 Postfach unbekannt"
        smtp.handler.temporary_failures["z@y.de"] = 2   # first two DATA answers: 451
        smtp.handler.delay = 0.2                         # seconds before answering DATA
        smtp.handler.on_data = lambda rcpt: ...          # runs (in the server's thread) before the reply
        smtp.handler.drop_after_data = True              # take the message, then hang up instead of replying
        ...
        smtp.handler.received       # [Received(mail_from, rcpt_tos, content, at)]
        smtp.messages()             # parsed with email.policy.default
        smtp.stop(); smtp.start()   # server down and up again on the same port

TLS and login (certificates from ``make_certificates``, a throw-away CA made with the openssl CLI):

    SmtpServer(tls="starttls", certificates=certs, users={"kipost": "geheim"})  # STARTTLS required
    SmtpServer(tls="ssl", certificates=certs, users={...})                      # implicit TLS (465)
    SmtpServer(smtputf8=False)  # an old relay: no SMTPUTF8 (RFC 6531; on by default, as in aiosmtpd),
                                # non-ASCII commands get "500 strict ASCII", replies must be ASCII
    smtp.handler.logins         # every AUTH attempt's login name, refused ones too
    smtp.handler.received[0].tls, .login   # TLS version of the session ("TLSv1.3") and who logged in

Also runnable as a process (for the SIGKILL test): ``python -m tests.smtp_server PORT DELAY LOGFILE``
appends one line per accepted message (recipient) to LOGFILE.
"""
from __future__ import annotations

import asyncio
import email
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    at: float
    peer: tuple = ()  # client (host, port): one value per SMTP connection
    tls: str | None = None  # TLS version of the connection ("TLSv1.3"), None in clear text
    login: str | None = None  # the name the session logged in with
    mail_options: tuple[str, ...] = ()  # MAIL FROM parameters, e.g. ("SMTPUTF8", "BODY=8BITMIME")


class Handler:
    def __init__(self, delay: float = 0.0, log_path: str | None = None):
        self.delay = delay
        self.on_data = None
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}
        self.temporary_failures: dict[str, int] = {}
        self.data_replies: dict[str, str] = {}
        self.log_path = log_path
        self.logins: list[str] = []
        self.drop_after_data = False
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        rcpt = envelope.rcpt_tos[0].lower() if envelope.rcpt_tos else ""
        if self.on_data is not None:
            self.on_data(rcpt)
        with self.lock:
            if self.temporary_failures.get(rcpt, 0) > 0:
                self.temporary_failures[rcpt] -= 1
                return "451 4.3.0 Bitte später erneut versuchen"
            if rcpt in self.data_replies:
                return self.data_replies[rcpt]
            # The transport, not session.ssl: aiosmtpd sets that only after STARTTLS, not for implicit TLS.
            tls = server.transport.get_extra_info("ssl_object")
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, time.time(),
                                          tuple(session.peer or ()), tls.version() if tls else None, login,
                                          tuple(envelope.mail_options)))
            if self.log_path:
                with open(self.log_path, "a") as log:
                    log.write(" ".join(envelope.rcpt_tos) + "\n")
        if self.drop_after_data:
            # The message is taken (as a real server may have queued it), but the reply never comes.
            server.transport.abort()
        return "250 2.0.0 Ok: queued"


def parse(content: bytes) -> email.message.EmailMessage:
    """A received message as ``email`` with ``policy.default`` reads it. UTF-8 headers (RFC 6532,
    sent with SMTPUTF8) are read as text: ``message_from_bytes`` would leave them as surrogates."""
    try:
        return email.message_from_string(content.decode("utf-8"), policy=policy.default)
    except UnicodeDecodeError:
        return email.message_from_bytes(content, policy=policy.default)


@dataclass(frozen=True)
class Certificates:
    """PEM files: a throw-away CA (what MAIL_CA_FILE names) and a server certificate with its key."""

    ca_file: str
    cert_file: str
    key_file: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True,
                   env={**os.environ, "OPENSSL_CONF": os.devnull})  # no site config changing the certificates


def make_certificates(directory: Path, *, name: str = "IP:127.0.0.1", self_signed: bool = False) -> Certificates:
    """A new CA and a server certificate for ``name`` (subjectAltName syntax) signed by it, valid for a day.

    With ``self_signed`` the server certificate signs itself; ``ca_file`` is still a CA, just not its issuer.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    key_file, csr_file, cert_file = directory / "server.key", directory / "server.csr", directory / "server.pem"
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *new_key, "-keyout", str(ca_key), "-out", str(ca_file), "-days", "1",
             "-subj", "/CN=KI-Post Test-CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")
    server_extensions = [f"subjectAltName={name}", "basicConstraints=critical,CA:FALSE",
                         "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth"]
    if self_signed:
        _openssl("req", "-x509", *new_key, "-keyout", str(key_file), "-out", str(cert_file), "-days", "1",
                 "-subj", "/CN=KI-Post Test-Server", *[arg for ext in server_extensions for arg in ("-addext", ext)])
    else:
        extfile = directory / "server.ext"
        extfile.write_text("\n".join([*server_extensions, "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid"]) + "\n")
        _openssl("req", *new_key, "-keyout", str(key_file), "-out", str(csr_file), "-subj", "/CN=KI-Post Test-Server")
        _openssl("x509", "-req", "-in", str(csr_file), "-CA", str(ca_file), "-CAkey", str(ca_key), "-set_serial",
                 str(int.from_bytes(os.urandom(8), "big")), "-days", "1", "-extfile", str(extfile), "-out", str(cert_file))
    return Certificates(str(ca_file), str(cert_file), str(key_file))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """``tls``: None (clear text), "starttls" (required before anything else) or "ssl" (implicit TLS).
    ``users``: login name -> password; AUTH is offered only then, and only over TLS unless
    ``auth_require_tls`` is False."""

    def __init__(self, port: int | None = None, handler: Handler | None = None, *,
                 tls: Literal["starttls", "ssl"] | None = None, certificates: Certificates | None = None,
                 users: dict[str, str] | None = None, auth_require_tls: bool = True, smtputf8: bool = True):
        if tls and certificates is None:
            raise ValueError("TLS braucht certificates (make_certificates)")
        self.port = port or free_port()
        self.handler = handler or Handler()
        self.tls = tls
        self.certificates = certificates
        self.users = users
        self.auth_require_tls = auth_require_tls
        self.smtputf8 = smtputf8
        self.controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        with self.handler.lock:
            self.handler.logins.append(login)
        return AuthResult(success=self.users.get(login) == password, handled=False, auth_data=auth_data)

    def start(self) -> None:
        options: dict = {}
        if self.tls == "starttls":
            options.update(tls_context=self.certificates.server_context(), require_starttls=True)
        elif self.tls == "ssl":
            options["ssl_context"] = self.certificates.server_context()
        if self.users is not None:
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS the whole connection is encrypted.
            options.update(authenticator=self._authenticate, auth_require_tls=self.auth_require_tls and self.tls != "ssl")
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, decode_data=False,
                                     data_size_limit=100 * 1024 * 1024,
                                     enable_SMTPUTF8=self.smtputf8, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def messages(self) -> list[email.message.EmailMessage]:
        return [parse(r.content) for r in self.handler.received]

    def recipients(self) -> list[str]:
        return [rcpt for r in self.handler.received for rcpt in r.rcpt_tos]


if __name__ == "__main__":
    port, delay, log_path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    server = SmtpServer(port, Handler(delay=delay, log_path=log_path))
    server.start()
    print("bereit", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
