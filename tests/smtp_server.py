"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), reusable by every package.

    with SmtpServer() as smtp:                      # or the `smtp` fixture of tests/outbox/conftest.py
        smtp.handler.rcpt_replies["x@y.de"] = "550 5.1.1 Postfach unbekannt"
        smtp.handler.temporary_failures["z@y.de"] = 2   # first two DATA answers: 451
        smtp.handler.delay = 0.2                         # seconds before answering DATA
        smtp.handler.on_data = lambda rcpt: ...          # runs (in the server's thread) before the reply
        ...
        smtp.handler.received       # [Received(mail_from, rcpt_tos, content, at)]
        smtp.messages()             # parsed with email.policy.default
        smtp.stop(); smtp.start()   # server down and up again on the same port

Also runnable as a process (for the SIGKILL test): ``python -m tests.smtp_server PORT DELAY LOGFILE``
appends one line per accepted message (recipient) to LOGFILE.
"""
from __future__ import annotations

import asyncio
import email
import socket
import sys
import threading
import time
from dataclasses import dataclass
from email import policy

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    at: float
    peer: tuple = ()  # client (host, port): one value per SMTP connection


class Handler:
    def __init__(self, delay: float = 0.0, log_path: str | None = None):
        self.delay = delay
        self.on_data = None
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}
        self.temporary_failures: dict[str, int] = {}
        self.data_replies: dict[str, str] = {}
        self.log_path = log_path
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
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, time.time(),
                                          tuple(session.peer or ())))
            if self.log_path:
                with open(self.log_path, "a") as log:
                    log.write(" ".join(envelope.rcpt_tos) + "\n")
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self, port: int | None = None, handler: Handler | None = None):
        self.port = port or free_port()
        self.handler = handler or Handler()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, decode_data=False,
                                     data_size_limit=100 * 1024 * 1024)
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
        return [email.message_from_bytes(r.content, policy=policy.default) for r in self.handler.received]

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
