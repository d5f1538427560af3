"""PDF via LibreOffice: a whole batch per process call (never one process per file).

LibreOffice needs about two seconds to start. So that a job does not wait for that, a few
LibreOffice processes are kept running between jobs (one per core by default, SOFFICE_WARM_PROCESSES),
each with its own profile and a hidden empty document open: without an open document LibreOffice
ends after the first conversion handed to it. A conversion is handed over by starting ``soffice
--convert-to`` with the same profile; that short-lived process finds the running one by its profile
(LibreOffice's single-instance pipe), passes the files on and returns when they are written. A job's
letters are split among the processes, which convert in parallel. Processes idle for
SOFFICE_WARM_IDLE_SECONDS end; a process that died is replaced at the next job.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context

from .. import config as default_config
from ..errors import KiPostError
from .pdf_streams import fix_stream_ends

INSTALL_HINT = (
    "Für PDF wird LibreOffice benötigt, das auf diesem Server nicht installiert ist. "
    "Bitte die IT bitten, es zu installieren (Debian/Ubuntu: „apt-get install libreoffice-writer-nogui“). "
    "DOCX-Dateien lassen sich auch ohne LibreOffice erzeugen."
)


class LibreOfficeMissing(KiPostError):
    pass


def find_soffice(configured: str | None = None) -> str | None:
    """The LibreOffice binary: the given path, else SOFFICE_PATH of the app, KI_POST_SOFFICE, then PATH."""
    if configured is None and has_app_context():
        configured = current_app.config.get("SOFFICE_PATH") or None
    for candidate in (configured, os.environ.get("KI_POST_SOFFICE"), "soffice", "libreoffice"):
        if candidate:
            found = shutil.which(candidate)
            if found:
                return found
    return None


def pdf_available(configured: str | None = None) -> bool:
    return find_soffice(configured) is not None


def _setting(name: str) -> Any:
    return current_app.config.get(name, getattr(default_config, name)) if has_app_context() else getattr(default_config, name)


def convert_to_pdf(documents: list[bytes], *, soffice: str | None = None, timeout: float = 1800,
                   missing_ok: bool = False, processes: int | None = None) -> list[Any]:
    """Convert DOCX documents to PDF, in order.

    With ``processes`` (default: SOFFICE_WARM_PROCESSES) above 0 the documents are split among that
    many LibreOffice processes kept running between jobs; with 0, ONE fresh LibreOffice process with
    a throw-away profile converts them all (the way before warm processes).
    With ``missing_ok`` a document LibreOffice could not convert is ``None`` in the result (the
    caller records it for that recipient) instead of failing the whole batch.
    """
    if not documents:
        return []
    binary = find_soffice(soffice)
    if binary is None:
        raise LibreOfficeMissing(INSTALL_HINT)
    if processes is None:
        processes = int(_setting("SOFFICE_WARM_PROCESSES"))
    with tempfile.TemporaryDirectory(prefix="kipost-pdf-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        names = []
        for index, document in enumerate(documents):
            path = work / "in" / f"brief-{index:06d}.docx"
            path.write_bytes(document)
            names.append(path)
        if processes > 0:
            offices = _pool(binary, processes).take(len(names), processes)
            chunks = _split(names, len(offices))
            try:
                with ThreadPoolExecutor(len(chunks)) as executor:
                    errors = list(executor.map(
                        lambda job: job[0].convert(job[1], work / f"out-{job[2]}", timeout),
                        [(office, chunk, number) for number, (office, chunk) in enumerate(zip(offices, chunks))]))
            finally:
                _pool(binary, processes).release(offices)
            outputs = [(work / f"out-{number}", error) for number, error in enumerate(errors) for _ in chunks[number]]
        else:
            # A private profile: parallel conversions and a user's running LibreOffice never collide.
            error = _convert_files(binary, (work / "profile").as_uri(), names, work / "out", timeout)
            outputs = [(work / "out", error)] * len(names)
        pdfs = []
        for path, (outdir, error) in zip(names, outputs):
            target = outdir / (path.stem + ".pdf")
            if not target.exists() and missing_ok:
                pdfs.append(None)
                continue
            if not target.exists():
                detail = error.decode("utf-8", "replace").strip()[-300:]
                raise KiPostError(f"LibreOffice konnte „{path.name}“ nicht in PDF umwandeln. {detail}".strip())
            pdfs.append(fix_stream_ends(target.read_bytes()))
        return pdfs


# Every PDF is meant for the files (e-Akte): PDF/A-2b with a tag structure (LibreOffice's writer_pdf_Export
# options; title, author and language come from the DOCX's core properties and default style). Images
# lossless: LibreOffice would store a QR code as JPEG, whose artefacts cost a scanner its read.
PDF_EXPORT = ('pdf:writer_pdf_Export:{"SelectPdfVersion":{"type":"long","value":"2"},'
              '"UseTaggedPDF":{"type":"boolean","value":"true"},'
              '"UseLosslessCompression":{"type":"boolean","value":"true"}}')

# LibreOffice reads only the first 256 words of its command line and ignores the rest without a
# word: a batch of 500 letters came back with 245 PDFs. So no call names more files than this.
FILES_PER_CALL = 200


def _convert_files(binary: str, profile: str, paths: list[Path], outdir: Path, timeout: float) -> bytes:
    """``soffice --convert-to pdf`` for ``paths`` into ``outdir``, a call per FILES_PER_CALL files; returns stderr."""
    outdir.mkdir()
    errors = b""
    for start in range(0, len(paths), FILES_PER_CALL):
        command = [binary, f"-env:UserInstallation={profile}", "--headless", "--norestore", "--nolockcheck",
                   "--convert-to", PDF_EXPORT, "--outdir", str(outdir), *map(str, paths[start:start + FILES_PER_CALL])]
        try:
            result = subprocess.run(command, capture_output=True, timeout=timeout, cwd=outdir, check=False)
        except subprocess.TimeoutExpired:
            raise KiPostError("LibreOffice hat die PDF-Umwandlung nicht rechtzeitig beendet.") from None
        errors += result.stderr
    return errors


def _split(items: list[Path], parts: int) -> list[list[Path]]:
    """Consecutive chunks of nearly equal size (the order of the letters is kept)."""
    size, rest = divmod(len(items), parts)
    chunks, start = [], 0
    for number in range(parts):
        end = start + size + (1 if number < rest else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


# --- LibreOffice kept running between jobs --------------------------------------------------------
START_TIMEOUT = 60
MIN_LETTERS_PER_PROCESS = 4  # below that, handing over to a second process costs more than it saves


class WarmOffice:
    """One LibreOffice process with its own profile and a hidden empty document open."""

    def __init__(self, binary: str):
        self.binary = binary
        self.home = Path(tempfile.mkdtemp(prefix="kipost-soffice-"))
        self.profile = (self.home / "profile").as_uri()
        keep_open = self.home / "offen.txt"
        keep_open.write_bytes(b"")
        # Its own process group, so that stopping it also ends soffice.bin behind the oosplash launcher.
        self.process = subprocess.Popen(
            [binary, f"-env:UserInstallation={self.profile}", "--headless", "--norestore", "--nolockcheck", "--nologo",
             "--nodefault", str(keep_open)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.home,
            start_new_session=True)
        # Ready when the document is open: LibreOffice then has written its lock file next to it.
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.home / ".~lock.offen.txt#").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise KiPostError("LibreOffice ließ sich für die PDF-Umwandlung nicht starten.")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process.poll() is None

    def convert(self, paths: list[Path], outdir: Path, timeout: float) -> bytes:
        """Hand ``paths`` over to this process (same profile); returns what LibreOffice wrote to stderr."""
        try:
            return _convert_files(self.binary, self.profile, paths, outdir, timeout)
        except KiPostError:
            self.stop()  # hanging: the next job starts a fresh one
            raise

    def stop(self) -> None:
        """End the launcher and soffice.bin behind it (its process group), then remove the profile."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _group_running(self.process.pid):  # never signal a group that is not ours any more
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _group_running(self.process.pid):
                self.process.poll()
                time.sleep(0.05)
            if not _group_running(self.process.pid):
                break
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        shutil.rmtree(self.home, ignore_errors=True)


def _group_running(group: int) -> bool:
    """Whether a process of this group still runs (zombies that only wait to be reaped do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


class _Pool:
    """The warm processes of this Python process for one LibreOffice binary."""

    def __init__(self, binary: str, size: int, idle_seconds: float):
        self.binary, self.size, self.idle_seconds, self.owner = binary, size, idle_seconds, os.getpid()
        self.idle: list[WarmOffice] = []
        self.busy = 0
        self.condition = threading.Condition()
        self.timer: threading.Timer | None = None

    def take(self, letters: int, limit: int) -> list[WarmOffice]:
        """As many processes as are worth it for ``letters``, at most ``limit`` (waits while other jobs use them all)."""
        wanted = max(1, min(self.size, limit, letters // MIN_LETTERS_PER_PROCESS))
        with self.condition:
            if self.timer is not None:
                self.timer.cancel()
            while self.busy >= self.size:
                self.condition.wait()
            count = min(wanted, self.size - self.busy)
            self.busy += count
            taken = [office for office in self.idle[:count] if office.alive()]
            for office in self.idle[:count]:
                if not office.alive():
                    office.stop()
            del self.idle[:count]
        try:
            with ThreadPoolExecutor(count) as executor:
                taken += list(executor.map(lambda _n: WarmOffice(self.binary), range(count - len(taken))))
        except BaseException:
            self.release(taken, started=count)
            raise
        return taken

    def release(self, offices: list[WarmOffice], started: int | None = None) -> None:
        with self.condition:
            self.busy -= started if started is not None else len(offices)
            self.idle.extend(office for office in offices if office.alive())
            self.condition.notify_all()
            if self.idle_seconds > 0 and not self.busy:
                self.timer = threading.Timer(self.idle_seconds, self.stop_idle)
                self.timer.daemon = True
                self.timer.start()

    def stop_idle(self) -> None:
        with self.condition:
            offices, self.idle = self.idle, []
        for office in offices:
            office.stop()


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(binary: str, size: int) -> _Pool:
    with _POOLS_LOCK:
        pool = _POOLS.get(binary)
        if pool is None or pool.owner != os.getpid():  # a forked child never uses its parent's processes
            pool = _POOLS[binary] = _Pool(binary, size, float(_setting("SOFFICE_WARM_IDLE_SECONDS")))
        pool.size = max(pool.size, size)
        return pool


def stop_warm_processes() -> None:
    """End the LibreOffice processes this Python process keeps running (at exit, in tests)."""
    with _POOLS_LOCK:
        pools = [pool for pool in _POOLS.values() if pool.owner == os.getpid()]
        _POOLS.clear()
    for pool in pools:
        if pool.timer is not None:
            pool.timer.cancel()
        pool.stop_idle()


atexit.register(stop_warm_processes)


def page_count(pdf: bytes) -> int:
    """Pages of a PDF written by LibreOffice (its page objects are plain dictionaries)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def unite_pdfs(pdfs: list[bytes]) -> bytes:
    """Concatenate PDFs with poppler's pdfunite."""
    if len(pdfs) == 1:
        return pdfs[0]
    binary = shutil.which("pdfunite")
    if binary is None:
        raise KiPostError("Zum Zusammenfügen der PDF-Dateien wird „pdfunite“ benötigt (Debian: apt-get install poppler-utils).")
    with tempfile.TemporaryDirectory(prefix="kipost-pdfunite-") as tmp:
        paths = []
        for index, pdf in enumerate(pdfs):
            path = Path(tmp) / f"{index:06d}.pdf"
            path.write_bytes(pdf)
            paths.append(str(path))
        target = Path(tmp) / "gesamt.pdf"
        subprocess.run([binary, *paths, str(target)], check=True, capture_output=True, timeout=600)
        return target.read_bytes()
