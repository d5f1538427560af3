"""A throw-away PostgreSQL cluster of a test's own, to stop and restart under a running worker.

    with PostgresCluster() as cluster:          # initdb + pg_ctl on a temporary directory and a free port
        cluster.url                             # postgresql://postgres@127.0.0.1:PORT/postgres
        cluster.stop(); cluster.start()         # or cluster.restart()

The PostgreSQL 15 server binaries of Debian (``/usr/lib/postgresql/15/bin``, or ``PG_BIN``) are
needed; without them ``PostgresCluster.available()`` names what is missing (tests skip with it).
initdb refuses to run as root, so as root the cluster runs as the ``postgres`` OS user
(``runuser -u postgres --``) in a directory that user owns.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.smtp_server import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresCluster:
    def __init__(self, *, data_parent: Path | None = None):
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="kipost-pg-"))
        self.data = (data_parent or self.base) / "daten"
        self.log = self.base / "postgres.log"
        self._as_root = os.geteuid() == 0

    @staticmethod
    def available() -> str | None:
        """None, or why no cluster can be started here."""
        for tool in ("initdb", "pg_ctl"):
            if not (PG_BIN / tool).exists():
                return f"{PG_BIN / tool} fehlt (apt-get install postgresql-15)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "als root braucht initdb den Benutzer postgres"
            if not shutil.which("runuser"):
                return "runuser fehlt"
        return None

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}{self._log_tail()}")
        return done

    def _log_tail(self) -> str:
        try:
            return "\n" + self.log.read_text()[-2000:]
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            user = pwd.getpwnam("postgres")
            for path in {self.base, self.data.parent}:
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")

    def start(self) -> float:
        """Start and wait until it accepts connections; returns the wall-clock time it was ready."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return time.time()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> float:
        self.stop()
        return self.start()

    def __enter__(self) -> PostgresCluster:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.base, ignore_errors=True)
