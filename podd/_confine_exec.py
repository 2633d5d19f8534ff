"""The exec wrapper of a confined agent turn: it confines itself, then becomes the agent.

Run as ``python -I -S _confine_exec.py FD``, by path: it uses only the standard library
and imports nothing of ``podd`` (nor does anything in ``podd`` import it). FD is an
inherited file descriptor that holds the whole configuration as one JSON object; only
its number is on the command line, because any local user can read a process's argv:

- ``"command"``: the agent's shell command;
- ``"unshare"``: whether to enter a private mount namespace for the paths below;
- ``"excluded"``: paths to make read-only (paths a child holds for write);
- ``"writable"``: paths beneath an excluded path that stay writable (the turn's temp
  dir, when it lies there);
- ``"ruleset_fd"``: the number of an inherited Landlock ruleset, or null;
- ``"status_fd"``: the write end of a pipe for the failure message, or null. It is
  closed on exec, so the spawner reads end-of-file once the command runs.

In that order it:

1. reads and closes FD;
2. if asked, enters a private mount namespace (as root: ``CLONE_NEWNS``; otherwise a
   user namespace too, mapping only the caller's own uid and gid, so that the agent
   sees its real ids), makes every mount there private, bind-mounts each excluded path
   onto itself and remounts it, and every mount beneath it, read-only (keeping the
   flags it had), binds each writable path again writable, and re-enters its working
   directory through the new mounts;
3. if given a ruleset, sets ``PR_SET_NO_NEW_PRIVS``, restricts itself to the ruleset
   and closes it; from then on it can change no mount, so the read-only binds stay;
4. replaces itself with ``/bin/sh -c COMMAND``, with the environment it was given.

The process group is the spawner's job (``process_group=0``), done before this runs.
On any failure it writes one line, ``podd: confinement failed: WHAT (STRERROR)``, to
stderr and to the status pipe, and exits with status 126: the command never runs
unconfined.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import sys
from collections.abc import Sequence

__all__ = [
    "EXIT_FAILED",
    "SHELL",
    "Config",
    "ConfinementFailed",
    "confine",
    "main",
    "mount_points_beneath",
    "parse_config",
    "remount_flags",
]

EXIT_FAILED = 126
"""The exit status when confinement fails (the shell's "found but cannot run")."""

SHELL = "/bin/sh"

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000

_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOSYMFOLLOW = 256
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_RELATIME = 1 << 21
_MS_STRICTATIME = 1 << 24

_ST_NOSUID = 2
_ST_NODEV = 4
_ST_NOEXEC = 8
_ST_NOATIME = 1024
_ST_NODIRATIME = 2048
_ST_RELATIME = 4096
_ST_NOSYMFOLLOW = 8192

# statvfs flag -> the mount flag that keeps it on a remount.
_KEPT = (
    (_ST_NOSUID, _MS_NOSUID),
    (_ST_NODEV, _MS_NODEV),
    (_ST_NOEXEC, _MS_NOEXEC),
    (_ST_NOATIME, _MS_NOATIME),
    (_ST_NODIRATIME, _MS_NODIRATIME),
    (_ST_RELATIME, _MS_RELATIME),
    (_ST_NOSYMFOLLOW, _MS_NOSYMFOLLOW),
)

_PR_SET_NO_NEW_PRIVS = 38
_SYS_LANDLOCK_RESTRICT_SELF = 446  # the same number on every architecture


class ConfinementFailed(Exception):
    """A step of the confinement failed; the agent must not run."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(what, code)
        self.what = what
        self.code = code

    def __str__(self) -> str:
        return f"podd: confinement failed: {self.what} ({os.strerror(self.code)})"


class Config:
    """The wrapper's configuration, checked."""

    __slots__ = ("command", "excluded", "ruleset_fd", "status_fd", "unshare", "writable")

    def __init__(
        self,
        command: str,
        *,
        unshare: bool = False,
        excluded: Sequence[str] = (),
        writable: Sequence[str] = (),
        ruleset_fd: int | None = None,
        status_fd: int | None = None,
    ) -> None:
        self.command = command
        self.unshare = unshare
        self.excluded = list(excluded)
        self.writable = list(writable)
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

    A missing ``"unshare"``, ``"excluded"``, ``"writable"``, ``"ruleset_fd"`` or
    ``"status_fd"`` means no namespace, nothing bound, no Landlock and no status pipe.
    Paths to bind without ``"unshare"`` are refused: they would not be bound.
    """
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise _bad(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _bad("not a JSON object")
    command = doc.get("command")
    if not isinstance(command, str):
        raise _bad("'command' must be a string")
    unshare = doc.get("unshare", False)
    if not isinstance(unshare, bool):
        raise _bad("'unshare' must be true or false")
    excluded = _paths(doc, "excluded")
    writable = _paths(doc, "writable")
    if (excluded or writable) and not unshare:
        raise _bad("paths to bind without a namespace to bind them in")
    return Config(
        command,
        unshare=unshare,
        excluded=excluded,
        writable=writable,
        ruleset_fd=_fd(doc, "ruleset_fd"),
        status_fd=_fd(doc, "status_fd"),
    )


def _fd(doc: dict[str, object], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{key!r} must be a descriptor number or null")
    return value


def remount_flags(f_flag: int, *, read_only: bool = True) -> int:
    """Return the ``mount(2)`` flags that remount a bind mount, keeping what it has.

    ``f_flag`` is the mount's ``statvfs`` flag word. In a user namespace the kernel
    refuses (EPERM) a remount that drops a flag the mount was given outside it (nosuid,
    nodev, noexec, the atime mode), so they are all carried over; ``MS_RDONLY`` is set
    or left out as asked.
    """
    flags = _MS_REMOUNT | _MS_BIND | (_MS_RDONLY if read_only else 0)
    for st_flag, ms_flag in _KEPT:
        if f_flag & st_flag:
            flags |= ms_flag
    if not f_flag & (_ST_NOATIME | _ST_RELATIME):
        # Neither noatime nor relatime: the mount uses strictatime, and a remount that
        # names no atime mode would get the default, relatime.
        flags |= _MS_STRICTATIME
    return flags


def _unescape(field: bytes) -> str:
    """Decode a ``mountinfo`` field, where space, tab, newline and backslash are octal."""
    out = bytearray()
    i = 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == 0x5C and len(code) == 3 and all(0x30 <= c <= 0x37 for c in code):
            out.append(int(code, 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return os.fsdecode(bytes(out))


def mount_points_beneath(mountinfo: bytes, top: str) -> list[str]:
    """Return the mount points at or beneath ``top`` in a ``/proc/self/mountinfo`` text.

    Each appears once, in the order of the table (a mount comes after the one it sits
    on).
    """
    prefix = top.rstrip("/") + "/"
    found: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if (point == top or point.startswith(prefix)) and point not in found:
            found.append(point)
    return found


_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        _libc.syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_long]
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        raise ConfinementFailed(what, ctypes.get_errno() or errno.EINVAL)


def _mount(source: str | None, target: str, flags: int, what: str) -> None:
    ctypes.set_errno(0)
    src = os.fsencode(source) if source is not None else None
    _check(_c().mount(src, os.fsencode(target), None, flags, None), what)


def _write_proc(name: str, text: str) -> None:
    try:
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfinementFailed(f"writing /proc/self/{name}", exc.errno or errno.EIO) from None


def _enter_namespace() -> None:
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:
        flags, what = _CLONE_NEWNS, "unshare(CLONE_NEWNS)"
    else:
        flags, what = _CLONE_NEWUSER | _CLONE_NEWNS, "unshare(CLONE_NEWUSER|CLONE_NEWNS)"
    ctypes.set_errno(0)
    _check(_c().unshare(flags), what)
    if flags & _CLONE_NEWUSER:
        _write_proc("setgroups", "deny")
        _write_proc("uid_map", f"{uid} {uid} 1")
        _write_proc("gid_map", f"{gid} {gid} 1")
    # Without this, a bind made here would propagate back to the mounts it was copied
    # from (a root namespace's mounts are usually shared).
    _mount(None, "/", _MS_REC | _MS_PRIVATE, "making / private")


def _statvfs_flags(path: str) -> int:
    try:
        return os.statvfs(path).f_flag
    except OSError as exc:
        raise ConfinementFailed(f"statvfs {path}", exc.errno or errno.EIO) from None


def _mountinfo() -> bytes:
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfinementFailed("reading /proc/self/mountinfo", exc.errno or errno.EIO) from None


def _bind_onto_itself(path: str) -> None:
    # A symlink here would have been resolved by the pod: one now means the path was
    # replaced since, and mount(2) would follow it somewhere else.
    if os.path.islink(path):
        raise ConfinementFailed(f"{path} became a symlink", errno.ELOOP)
    _mount(path, path, _MS_BIND | _MS_REC, f"bind mount of {path}")


def _bind_read_only(path: str) -> None:
    _bind_onto_itself(path)
    for point in mount_points_beneath(_mountinfo(), path):
        flags = remount_flags(_statvfs_flags(point), read_only=True)
        _mount(None, point, flags, f"read-only remount of {point}")


def _bind_writable(path: str) -> None:
    _bind_onto_itself(path)
    flags = remount_flags(_statvfs_flags(path), read_only=False)
    _mount(None, path, flags, f"writable remount of {path}")


def _reenter_cwd() -> None:
    # The working directory still points into the mounts as they were: one beneath an
    # excluded path would stay writable through relative paths.
    try:
        os.chdir(os.getcwd())
    except OSError as exc:
        raise ConfinementFailed(
            "re-entering the working directory", exc.errno or errno.EIO
        ) from None


def _restrict(ruleset_fd: int) -> None:
    libc = _c()
    ctypes.set_errno(0)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    ctypes.set_errno(0)
    _check(libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0), "landlock_restrict_self")
    with contextlib.suppress(OSError):
        os.close(ruleset_fd)


def _read_config(argv: Sequence[str]) -> Config:
    if len(argv) != 2 or not argv[1].isdigit():
        raise ConfinementFailed("usage: _confine_exec.py CONFIG_FD", errno.EINVAL)
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
    if config.unshare:
        _enter_namespace()
        for path in config.excluded:
            _bind_read_only(path)
        for path in config.writable:
            _bind_writable(path)
        _reenter_cwd()
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
