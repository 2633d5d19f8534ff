"""Atomic file replacement: a crash at any instant leaves the old file or the new one."""

from __future__ import annotations

import os

from podd.proc.procfs import is_alive

__all__ = ["make_durable", "remove_abandoned", "write_atomic"]


def write_atomic(path: str, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename,
    fsync of the directory. The file is created 0600.

    Without ``durable`` nothing is fsynced: every process sees the old file or the new
    one, but a power loss may leave neither until ``make_durable(path)`` has run."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, _temp_name(os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if durable:
        _fsync_path(directory, os.O_DIRECTORY)


def make_durable(path: str) -> None:
    """fsync ``path`` and its directory: what ``write_atomic(..., durable=False)`` left
    out. Raises ``OSError`` (``FileNotFoundError`` if it was removed meanwhile)."""
    _fsync_path(path, 0)
    _fsync_path(os.path.dirname(path) or ".", os.O_DIRECTORY)


def _fsync_path(path: str, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(name: str, pid: int) -> str:
    return f".{name}.{pid}.tmp"


def _writer_of(entry: str) -> int | None:
    """The pid in a temp file's name (``_temp_name``), or None if it is not one."""
    if not (entry.startswith(".") and entry.endswith(".tmp")):
        return None
    pid = entry[: -len(".tmp")].rpartition(".")[2]
    return int(pid) if pid.isdigit() else None


def remove_abandoned(directory: str) -> list[str]:
    """Remove the temp files in ``directory`` that a writer killed before its rename
    left behind (their writer's process is gone or a zombie); returns their names. A writer that
    still runs may be about to rename its file: its temp file stays."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in entries:
        pid = _writer_of(entry)
        if pid is None or is_alive(pid, 0.0):
            continue
        try:
            os.unlink(os.path.join(directory, entry))
        except OSError:
            continue
        removed.append(entry)
    return removed
