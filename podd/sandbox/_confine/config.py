"""The wrapper's configuration: one dict in ``marshal`` format, on an inherited descriptor.

``marshal`` is built in, so reading it imports nothing: ``json`` would add about 6 ms to
every turn, and the pod runs the wrapper with the interpreter it runs itself. Only the
descriptor's number is on the command line, because any local user can read a
process's argv. The keys:

- ``"command"``: the agent's shell command;
- ``"unshare"``: whether to enter a private mount namespace for the paths below;
- ``"mounts_only"``: confine by mounts alone, with no Landlock (``mounts_only``);
- ``"write"``: with ``"mounts_only"``, the paths that stay writable (the write paths
  and the turn's temp dir when it lies outside them);
- ``"excluded"``: paths to make read-only (paths a child holds for write);
- ``"writable"``: paths beneath an excluded path that stay writable (the turn's temp
  dir, when it lies there);
- ``"devices"``: with ``"mounts_only"``, the device files (or directories of them, such
  as ``/dev/pts``) that the agent may still open;
- ``"ruleset_fd"``: the number of an inherited Landlock ruleset, or null;
- ``"status_fd"``: the write end of a pipe for the failure message, or null. It is
  closed on exec, so the spawner reads end-of-file once the command runs.
"""

from __future__ import annotations

import errno
import marshal
import os
from collections.abc import Sequence

from .failure import ConfinementFailed

__all__ = ["Config", "parse_config"]


class Config:
    """The wrapper's configuration, checked."""

    __slots__ = (
        "command",
        "devices",
        "excluded",
        "mounts_only",
        "ruleset_fd",
        "status_fd",
        "unshare",
        "writable",
        "write",
    )

    def __init__(
        self,
        command: str,
        *,
        unshare: bool = False,
        mounts_only: bool = False,
        write: Sequence[str] = (),
        excluded: Sequence[str] = (),
        writable: Sequence[str] = (),
        devices: Sequence[str] = (),
        ruleset_fd: int | None = None,
        status_fd: int | None = None,
    ) -> None:
        self.command = command
        self.unshare = unshare
        self.mounts_only = mounts_only
        self.write = list(write)
        self.excluded = list(excluded)
        self.writable = list(writable)
        self.devices = list(devices)
        self.ruleset_fd = ruleset_fd
        self.status_fd = status_fd


def _bad(what: str) -> ConfinementFailed:
    return ConfinementFailed(f"bad configuration: {what}", errno.EINVAL)


def _paths(doc: dict[str, object], key: str) -> list[str]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(p, str) and os.path.isabs(p) for p in value
    ):
        raise _bad(f"{key!r} must be a list of absolute paths")
    return value


def parse_config(data: bytes) -> Config:
    """Check and decode the configuration; raise ``ConfinementFailed`` if it is bad.

    A missing ``"unshare"``, ``"mounts_only"``, ``"write"``, ``"excluded"``,
    ``"writable"``, ``"devices"``, ``"ruleset_fd"`` or ``"status_fd"`` means no
    namespace, nothing bound, no Landlock and no status pipe. Refused: paths to bind
    without ``"unshare"`` or ``"mounts_only"`` (they would not be bound), write paths
    or devices without ``"mounts_only"``, and a ruleset with it (Landlock would forbid
    the agent's own sandbox the mounts it needs).
    """
    try:
        doc = marshal.loads(data)
    except (EOFError, ValueError, TypeError) as exc:
        raise _bad(f"not a marshalled configuration: {exc}") from None
    if not isinstance(doc, dict):
        raise _bad("not a configuration (a dict)")
    command = doc.get("command")
    if not isinstance(command, str):
        raise _bad("'command' must be a string")
    unshare, mounts_only = _flag(doc, "unshare"), _flag(doc, "mounts_only")
    write, devices = _paths(doc, "write"), _paths(doc, "devices")
    excluded, writable = _paths(doc, "excluded"), _paths(doc, "writable")
    ruleset_fd = _fd(doc, "ruleset_fd")
    if (excluded or writable) and not (unshare or mounts_only):
        raise _bad("paths to bind without a namespace to bind them in")
    if (write or devices) and not mounts_only:
        raise _bad("'write' and 'devices' are for 'mounts_only'")
    if mounts_only and ruleset_fd is not None:
        raise _bad("a Landlock ruleset with 'mounts_only'")
    return Config(
        command,
        unshare=unshare or mounts_only,
        mounts_only=mounts_only,
        write=write,
        excluded=excluded,
        writable=writable,
        devices=devices,
        ruleset_fd=ruleset_fd,
        status_fd=_fd(doc, "status_fd"),
    )


def _flag(doc: dict[str, object], key: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise _bad(f"{key!r} must be true or false")
    return value


def _fd(doc: dict[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{key!r} must be a descriptor number or null")
    return value
