"""Real storage conditions for tests: a read-only view (bind mount) and a small disk (tmpfs) to fill.

    with read_only_view(folder, tmp_path / "ro") as view: ...   # EROFS for root too
    with small_disk(tmp_path / "klein", "16m") as disk: fill(disk); ...

Mounting needs root (CAP_SYS_ADMIN); without it the calling test is skipped with the reason.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} nicht möglich (braucht root): {done.stderr.strip()}")


def _umount(target: Path) -> None:
    if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)  # still busy: detach lazily


@contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """``target`` shows ``source`` (folder or file) read-only, for root too (EROFS, not permissions)."""
    if os.geteuid() != 0:
        pytest.skip("ein schreibgeschützter Bind-Mount braucht root")
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.touch()
    _mount("--bind", str(source), str(target))
    try:
        _mount("-o", "remount,bind,ro", str(target))
        yield target
    finally:
        _umount(target)


@contextmanager
def small_disk(target: Path, size: str = "16m") -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("ein kleines tmpfs braucht root")
    target.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target))
    try:
        yield target
    finally:
        _umount(target)


def fill(folder: Path) -> None:
    """Write until the file system refuses: a full disk."""
    handle = os.open(folder / "fuellung.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # down to the last byte
            try:
                while True:
                    os.write(handle, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(handle)
