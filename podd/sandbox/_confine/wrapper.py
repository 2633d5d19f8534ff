"""The wrapper's course: read the configuration, confine this process, exec the agent.

By default (no ``"mounts_only"``), in that order ``main``:

1. reads and closes FD (the descriptor on its command line: ``config``);
2. if asked, enters a private mount namespace (as root: ``CLONE_NEWNS``; otherwise a
   user namespace too, mapping only the caller's own uid and gid, so that the agent
   sees its real ids), makes every mount there private, bind-mounts each excluded path
   onto itself and remounts it, and every mount beneath it, read-only (keeping the
   flags it had), binds each writable path again writable, and re-enters its working
   directory through the new mounts;
3. if given a ruleset, sets ``PR_SET_NO_NEW_PRIVS``, restricts itself to the ruleset
   and closes it; from then on it can change no mount, so the read-only binds stay;
4. replaces itself with ``/bin/sh -c COMMAND``, with the environment it was given.

With ``"mounts_only"``, steps 2 and 3 are those of ``mounts_only`` instead.

The process group is the spawner's job (``process_group=0``), done before this runs.
On any failure it writes one line, ``podd: confinement failed: WHAT (STRERROR)``, to
stderr and to the status pipe, and exits with status 126: the command never runs
unconfined.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Sequence

from .config import Config, parse_config
from .failure import EXIT_FAILED, ConfinementFailed
from .mounts import mount_points_beneath, remount_flags
from .mounts_only import confine_by_mounts
from .namespaces import enter_namespace, reenter_cwd
from .syscalls import bind_onto_itself, check, libc, mount, read_mountinfo, statvfs_flags

__all__ = ["SHELL", "confine", "main"]

SHELL = "/bin/sh"

_PR_SET_NO_NEW_PRIVS = 38
_SYS_LANDLOCK_RESTRICT_SELF = 446  # the same number on every architecture


def _bind_read_only(path: str) -> None:
    bind_onto_itself(path)
    for point in mount_points_beneath(read_mountinfo(), path):
        flags = remount_flags(statvfs_flags(point), read_only=True)
        mount(None, point, flags, f"read-only remount of {point}")


def _bind_writable(path: str) -> None:
    bind_onto_itself(path)
    flags = remount_flags(statvfs_flags(path), read_only=False)
    mount(None, path, flags, f"writable remount of {path}")


def _restrict(ruleset_fd: int) -> None:
    c = libc()
    ctypes.set_errno(0)
    check(c.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    ctypes.set_errno(0)
    check(c.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0), "landlock_restrict_self")
    with contextlib.suppress(OSError):
        os.close(ruleset_fd)


def _read_config(argv: Sequence[str]) -> Config:
    if len(argv) != 2 or not argv[1].isdigit():
        raise ConfinementFailed("usage: _confine/__main__.py CONFIG_FD", errno.EINVAL)
    fd = int(argv[1])
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        os.close(fd)
    except OSError as exc:
        raise ConfinementFailed(
            f"reading the configuration from fd {fd}", exc.errno or errno.EIO
        ) from None
    return parse_config(b"".join(chunks))


def confine(config: Config) -> None:
    """Apply the namespace, the binds and the ruleset of ``config`` to this process."""
    if config.mounts_only:
        confine_by_mounts(config)
        return
    if config.unshare:
        enter_namespace()
        for path in config.excluded:
            _bind_read_only(path)
        for path in config.writable:
            _bind_writable(path)
        reenter_cwd()
    if config.ruleset_fd is not None:
        _restrict(config.ruleset_fd)


def main(argv: Sequence[str]) -> int:
    """Confine this process as the configuration says and exec the agent's command.

    Returns (with ``EXIT_FAILED``) only if something failed, after writing the message
    to stderr and to the status pipe.
    """
    status_fd: int | None = None
    try:
        config = _read_config(argv)
        status_fd = config.status_fd
        if status_fd is not None:
            _close_on_exec(status_fd)
        confine(config)
        try:
            os.execv(SHELL, [SHELL, "-c", config.command])
        except OSError as exc:
            raise ConfinementFailed(f"exec {SHELL}", exc.errno or errno.EIO) from None
    except Exception as exc:
        if not isinstance(exc, ConfinementFailed):
            # Not a step that failed but a fault of this wrapper: still fail closed.
            code = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EINVAL
            exc = ConfinementFailed(f"{type(exc).__name__}: {exc}", code)
        message = f"{exc}\n".encode()
        for fd in (2, status_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.write(fd, message)
    return EXIT_FAILED


def _close_on_exec(fd: int) -> None:
    try:
        os.set_inheritable(fd, False)
    except OSError as exc:
        raise ConfinementFailed(f"status fd {fd}", exc.errno or errno.EIO) from None
