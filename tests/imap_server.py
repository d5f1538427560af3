"""A real IMAP server for tests: Dovecot as a subprocess on 127.0.0.1, reusable by every package.

    with DovecotServer(tmp_path) as imap:            # or the `imap_server` fixture of tests/events/conftest.py
        imap.reset()                                  # empty mailbox again (one server for many tests)
        imap.append(raw_mail)                         # IMAP APPEND into INBOX (unread)
        imap.flags()                                  # {Message-ID: {"\\Seen", ...}} of INBOX
        imap.store("<a@b>", "-FLAGS", "(\\Seen)")     # as a person in a mail client would
        imap.command("create", '"Antworten"')         # any other IMAP command, as the test user
        imap.settings()                               # the app's IMAP_* settings for this server
    DovecotServer(tmp_path, use_ssl=True)             # TLS only (imaps), certificate in imap.ca_file

Its own configuration in ``directory`` (no /etc/dovecot, no systemd), login from a passwd-file,
Maildir. Skips the test when Dovecot is not installed (``apt-get install dovecot-imapd``).
"""
from __future__ import annotations

import grp
import imaplib
import os
import pwd
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from email import message_from_bytes
from pathlib import Path
from typing import Self

import pytest

from tests.smtp_server import free_port

USERNAME = "veranstaltungen@ministerium.example"
PASSWORD = "Postfach-Grüße-2017"  # non-ASCII on purpose: ministry password rules allow umlauts


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
    if not found:
        pytest.skip("Dovecot ist nicht installiert (apt-get install dovecot-imapd); IMAP-Tests übersprungen.")
    return found


def _users() -> tuple[str, str, pwd.struct_passwd]:
    """(internal user, login user, mail user).

    Dovecot refuses to run imap-login and mail processes as root (CI runs as root), so there both use
    the unprivileged "nobody"; as an ordinary user everything runs as that user.
    """
    me = pwd.getpwuid(os.geteuid())
    if me.pw_uid != 0:
        return me.pw_name, me.pw_name, me
    nobody = pwd.getpwnam("nobody")
    return me.pw_name, nobody.pw_name, nobody


class DovecotServer:
    def __init__(self, directory: Path, *, use_ssl: bool = False, username: str = USERNAME, password: str = PASSWORD):
        self.directory = Path(directory)
        self.use_ssl = use_ssl
        self.username = username
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        self.ca_file = self.directory / "dovecot-cert.pem"
        self.log_file = self.directory / "dovecot.log"
        self.process: subprocess.Popen | None = None
        self.runtime: Path | None = None

    # --- server -------------------------------------------------------------------------------------

    def start(self) -> None:
        binary = dovecot_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        # Sockets and mail live in a short, world-readable directory: socket paths are limited to 108
        # bytes, and the unprivileged login/mail processes cannot enter pytest's private tmp_path as root.
        self.runtime = Path(tempfile.mkdtemp(prefix="kipost-dovecot-"))
        self.runtime.chmod(0o755)
        internal_user, login_user, mail_user = _users()
        mail_root = self.runtime / "mail"
        mail_root.mkdir()
        os.chown(mail_root, mail_user.pw_uid, mail_user.pw_gid)
        users_file = self.directory / "dovecot-users"
        # passwd-file: uid/gid come from default_fields below (passwd-file itself rejects uid 0).
        users_file.write_text(f"{self.username}:{{PLAIN}}{self.password}::::{mail_root}/{self.username}\n",
                              encoding="utf-8")
        config = self.directory / "dovecot.conf"
        config.write_text(self._config(internal_user, login_user, mail_user, users_file), encoding="utf-8")
        self.process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                self.connect().logout()
                return
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.1)
        errors = self.process.stderr.read().decode(errors="replace") if self.process.poll() is not None else ""
        self.stop()
        raise RuntimeError(f"Dovecot antwortet nicht auf Port {self.port}: {errors}\n{self.log()}")

    def _config(self, internal_user: str, login_user: str, mail_user: pwd.struct_passwd, users_file: Path) -> str:
        if self.use_ssl:
            key = self.directory / "dovecot-key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(self.ca_file)],
                check=True, capture_output=True,
            )
            tls = f"ssl = required\nssl_cert = <{self.ca_file}\nssl_key = <{key}\n"
            listeners = f"inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    address = {self.host}\n    port = {self.port}\n    ssl = yes\n  }}"
        else:
            tls = "ssl = no\n"
            listeners = f"inet_listener imap {{\n    address = {self.host}\n    port = {self.port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}"
        return f"""# Written by tests/imap_server.py for tests; nothing here touches /etc/dovecot.
base_dir = {self.runtime}/run
state_dir = {self.runtime}/state
instance_name = kipost-test-{self.port}
log_path = {self.log_file}
protocols = imap
listen = {self.host}
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {grp.getgrgid(os.getegid()).gr_name}
default_login_user = {login_user}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users_file}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users_file}
  default_fields = uid={mail_user.pw_uid} gid={mail_user.pw_gid}
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  {listeners}
}}
service anvil {{
  chroot =
  # No auth penalty: after a wrong-password test the next login would wait up to 15 seconds.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # the master stops its children
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process.stderr.close()
            self.process = None
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Empties the mailbox, so one server can serve many tests (a restart costs a second: Dovecot's
        master waits that long for its children)."""
        connection = self.connect()
        try:
            _, folders = connection.list()
            for line in folders:
                name = re.search(rb'\) (?:"[^"]*"|NIL) (.+)$', line).group(1)
                if name.strip(b'"').upper() != b"INBOX":
                    connection.delete(name.decode())
            _, count = connection.select("INBOX")
            if count[0] != b"0":
                connection.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
                connection.expunge()
        finally:
            connection.logout()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def bytes_sent(self) -> list[int]:
        """Bytes Dovecot sent per finished IMAP session (``out=`` of its logout lines), oldest first."""
        return [int(n) for n in re.findall(r"Logged out in=\d+ out=(\d+)", self.log())]

    # --- client side, for putting mail in and looking at it -----------------------------------------

    def settings(self, **overrides) -> dict:
        settings = {"IMAP_SERVER": self.host, "IMAP_PORT": self.port, "IMAP_USE_SSL": self.use_ssl,
                    "IMAP_USERNAME": self.username, "IMAP_PASSWORD": self.password, "IMAP_FOLDER": "INBOX"}
        settings.update(overrides)
        return settings

    def connect(self) -> imaplib.IMAP4:
        if self.use_ssl:
            connection = imaplib.IMAP4_SSL(self.host, self.port, timeout=10,
                                           ssl_context=ssl.create_default_context(cafile=str(self.ca_file)))
        else:
            connection = imaplib.IMAP4(self.host, self.port, timeout=10)
        # imaplib's LOGIN only takes ASCII, and the test password is not.
        connection.authenticate("PLAIN", lambda _: f"\0{self.username}\0{self.password}".encode())
        return connection

    def command(self, name: str, *args: str) -> list:
        connection = self.connect()
        try:
            status, data = getattr(connection, name)(*args)
            assert status == "OK", (name, args, data)
            return data
        finally:
            connection.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        connection = self.connect()
        try:
            status, data = connection.append(folder, f"({flags})" if flags else None, None, raw)
            assert status == "OK", data
        finally:
            connection.logout()

    def store(self, message_id: str, change: str, flags: str, folder: str = "INBOX") -> None:
        """Changes flags like a person in a mail client, e.g. ``store("<a@b>", "-FLAGS", "(\\Seen)")``."""
        connection = self.connect()
        try:
            connection.select(folder)
            status, found = connection.search(None, "HEADER", "Message-ID", f'"{message_id}"')
            assert status == "OK" and found[0], message_id
            status, data = connection.store(found[0].decode().replace(" ", ","), change, flags)
            assert status == "OK", data
        finally:
            connection.logout()

    def flags(self, folder: str = "INBOX") -> dict[str, set[str]]:
        """Message-ID → IMAP flags of every mail in ``folder``."""
        connection = self.connect()
        try:
            status, count = connection.select(folder, readonly=True)
            assert status == "OK", folder
            if count[0] == b"0":
                return {}
            status, data = connection.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            found = {}
            for item in data:
                if isinstance(item, tuple):
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
                    message_id = str(message_from_bytes(item[1]).get("Message-ID", "")).strip()
                    found[message_id] = set(flags.split())
            return found
        finally:
            connection.logout()
