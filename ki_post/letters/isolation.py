"""The upload check in a child process: a runaway template can only take the child down.

An uploaded template is compiled and filled in once with example data. The sandbox bounds what a
template may do, but the check also runs in a child process with a memory limit (``RLIMIT_AS``), a
CPU limit and a wall-clock timeout: whatever slips past the sandbox (a pathological regular
expression in the XML clean-up, a Python corner nobody thought of) costs the child, never the web
process and its other users.

Children come from a ``forkserver``: a small process started once per web process with the engine
already imported, which forks a fresh child per check (a few milliseconds instead of a second of
imports, and no fork of the multi-threaded web process itself).
"""
from __future__ import annotations

import multiprocessing
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

CHECK_SECONDS = 20.0  # wall clock for one upload check
CHECK_MEMORY_BYTES = 512 * 1024 * 1024  # address space the child may add to what it starts with
SAMPLE_RENDER_SECONDS = 5.0  # the sandbox's own deadline for the sample render inside the child
_PRELOAD = ["ki_post.letters.engine"]
_context: Any = None


@dataclass
class CheckResult:
    warnings: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    child_peak_bytes: int = 0  # the child's peak resident memory (VmHWM), for measurements
    seconds: float = 0.0


class CheckFailed(ValidationError):
    """The template was refused; also says what the check cost (peak memory of the child, seconds)."""

    def __init__(self, message: str, field: str | None = "file", *, child_peak_bytes: int = 0, seconds: float = 0.0):
        super().__init__(message, field)
        self.child_peak_bytes = child_peak_bytes
        self.seconds = seconds


def _mp_context() -> Any:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        _context = context
    return _context


def _status_kb(key: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _child(connection: Any, data: bytes, memory: int, seconds: float, render_seconds: float) -> None:
    """Runs in the child: limits first, then the check; the answer is a plain tuple."""
    start = _status_kb("VmSize") * 1024
    if start:  # without /proc the starting size is unknown; CPU and wall-clock limits still hold
        limit = start + memory
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = int(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    from . import engine

    try:
        report = engine.validate_template(data, seconds=render_seconds)
        answer: tuple = ("ok", report.warnings, [str(u) for u in report.unknown], report.fields)
    except ValidationError as error:
        answer = ("error", str(error), error.field)
    except MemoryError:
        answer = ("error", "Die Prüfung der Vorlage braucht zu viel Speicher. Bitte die Platzhalter prüfen.", "file")
    connection.send((*answer, _status_kb("VmHWM") * 1024))
    connection.close()


def check_template(data: bytes, *, seconds: float | None = None, memory: int | None = None,
                   render_seconds: float | None = None) -> CheckResult:
    """Compile and sample-render ``data`` in a bounded child; raises ``ValidationError`` (German)."""
    seconds = CHECK_SECONDS if seconds is None else seconds
    memory = CHECK_MEMORY_BYTES if memory is None else memory
    render_seconds = SAMPLE_RENDER_SECONDS if render_seconds is None else render_seconds
    context = _mp_context()
    started = time.monotonic()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, data, memory, seconds, render_seconds), daemon=True)
    process.start()
    sender.close()
    answer = None
    try:
        if receiver.poll(seconds):
            answer = receiver.recv()
    except (EOFError, OSError):
        answer = None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    elapsed = time.monotonic() - started
    if answer is None:
        if elapsed >= seconds:
            raise CheckFailed(
                f"Die Prüfung der Vorlage hat zu lange gedauert (mehr als {seconds:g} Sekunden) und wurde abgebrochen. "
                "Bitte Wiederholungen und Berechnungen in den Platzhaltern prüfen.", seconds=elapsed)
        raise CheckFailed(
            "Die Prüfung der Vorlage wurde abgebrochen, weil sie zu viel Speicher oder Rechenzeit brauchte. "
            "Bitte Wiederholungen und Berechnungen in den Platzhaltern prüfen.", seconds=elapsed)
    if answer[0] == "error":
        raise CheckFailed(answer[1], answer[2], child_peak_bytes=answer[3], seconds=elapsed)
    _ok, warnings, unknown, fields, peak = answer
    return CheckResult(warnings=list(warnings), unknown=list(unknown), fields=list(fields),
                       child_peak_bytes=peak, seconds=elapsed)
