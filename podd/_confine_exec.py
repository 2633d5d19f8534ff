"""The exec wrapper of a confined agent turn: it confines itself, then becomes the agent.

Run as ``python -I -S _confine_exec.py FD``, by path: it uses only the standard library
and imports nothing of ``podd`` (nor does anything in ``podd`` import it). FD is an
inherited file descriptor that holds the whole configuration as one dict in ``marshal``
format (built in, so reading it imports nothing: ``json`` would add about 6 ms to every
turn, and the pod runs this file with the interpreter it runs itself); only its number
is on the command line, because any local user can read a process's argv:

- ``"command"``: the agent's shell command;
- ``"unshare"``: whether to enter a private mount namespace for the paths below;
- ``"mounts_only"``: confine by mounts alone, with no Landlock (below);
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

By default, in that order it:

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

With ``"mounts_only"`` (for an agent that starts a sandbox of its own, such as
bubblewrap, which needs ``mount(2)``: Landlock would refuse it), steps 2 and 3 are
instead:

a. enter a private mount namespace as above and make every mount in it private;
b. bind each write path, and each device, onto itself (recursively), so that each is a
   mount of its own, and note the flags every mount has;
c. make every mount read-only and ``nodev``, recursively
   (``mount_setattr(2)``, Linux 5.12);
d. clear read-only again on each write path and on each mount beneath it that was
   writable before; bind each excluded path onto itself and make it, and every mount
   beneath it, read-only; bind each writable path onto itself and clear read-only on
   it as on a write path; clear ``nodev`` on each device (device files open for
   writing on a read-only mount); clear read-only on ``/proc`` if it was writable
   (bubblewrap writes the id maps of its children there); mount a private ``tmpfs`` on
   ``/dev/shm``;
e. lock it all: enter a user namespace and a mount namespace once more. Mounts copied
   into a mount namespace owned by a less privileged user namespace are locked by the
   kernel: none of them can be unmounted, nor its read-only or ``nodev`` flag cleared,
   by anyone in it, a root agent included (it keeps its capabilities only in that new
   user namespace). As root, a helper process that stays outside maps every uid and
   gid the wrapper's namespace knows onto itself; as any other user, its own uid and
   gid are mapped onto themselves;
f. re-enter the working directory through the new mounts.

Writes outside the write paths then fail with ``EROFS``, not ``EACCES``, and no
Landlock ruleset, nor ``PR_SET_NO_NEW_PRIVS``, stands in the way of the agent's own
sandbox.

The process group is the spawner's job (``process_group=0``), done before this runs.
On any failure it writes one line, ``podd: confinement failed: WHAT (STRERROR)``, to
stderr and to the status pipe, and exits with status 126: the command never runs
unconfined.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import marshal
import os
import sys
from collections.abc import Callable, Sequence

__all__ = [
    "EXIT_FAILED",
    "SHELL",
    "Config",
    "ConfinementFailed",
    "MountState",
    "confine",
    "main",
    "mount_points_beneath",
    "mount_setattr_number",
    "mount_states",
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

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NODEV = 0x4

_SHM = "/dev/shm"
_PROC = "/proc"
_PTS = "/dev/pts"
_PTMX = "/dev/ptmx"


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


class MountState:
    """What a mount's own options say: whether it is read-only, whether it is ``nodev``."""

    __slots__ = ("nodev", "read_only")

    def __init__(self, read_only: bool, nodev: bool) -> None:
        self.read_only = read_only
        self.nodev = nodev

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MountState):
            return NotImplemented
        return (self.read_only, self.nodev) == (other.read_only, other.nodev)

    def __repr__(self) -> str:
        return f"MountState(read_only={self.read_only!r}, nodev={self.nodev!r})"


def mount_states(mountinfo: bytes) -> dict[str, MountState]:
    """Map each mount point of a ``/proc/self/mountinfo`` text to the state of its mount.

    Where mounts are stacked on one point, the one on top (the later line) counts: it is
    the one a path there reaches.
    """
    states: dict[str, MountState] = {}
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        if len(fields) < 6:
            continue
        options = fields[5].split(b",")
        states[_unescape(fields[4])] = MountState(b"ro" in options, b"nodev" in options)
    return states


def _state_at(states: dict[str, MountState], path: str) -> MountState:
    """The state of the mount that ``path`` lies on: that of the nearest mount point at
    or above it."""
    while path not in states and path != "/":
        path = os.path.dirname(path)
    return states.get(path, MountState(False, False))


def mount_setattr_number(machine: str) -> int | None:
    """The number of ``mount_setattr(2)`` on ``machine`` (``os.uname().machine``), or
    None where it is not known here (MIPS and IA-64 number their system calls apart).

    Since Linux 5.1 new system calls get one number on every architecture but Alpha,
    whose numbers are 110 higher.
    """
    if machine.startswith(("mips", "ia64")):
        return None
    return 552 if machine.startswith("alpha") else 442


_libc: ctypes.CDLL | None = None
_mount_setattr_call: Callable[..., int] | None = None


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


def _mount_setattr(path: str, attr_set: int, attr_clr: int, what: str, *, recursive: bool) -> None:
    """Set and clear mount attributes on the mount at ``path`` (and, if ``recursive``,
    on every mount beneath it); ``what`` names the step if it fails."""
    number = mount_setattr_number(os.uname().machine)
    if number is None:
        raise ConfinementFailed("mount_setattr on this architecture", errno.ENOSYS)
    global _mount_setattr_call
    if _mount_setattr_call is None:
        # A function object of its own: the one ``_c()`` keeps has Landlock's arguments.
        call = _c()["syscall"]
        call.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_long]
        call.argtypes += [ctypes.c_void_p, ctypes.c_long]
        _mount_setattr_call = call
    # struct mount_attr: attr_set, attr_clr, propagation, userns_fd (all __u64).
    attr = (ctypes.c_uint64 * 4)(attr_set, attr_clr, 0, 0)
    flags = _AT_SYMLINK_NOFOLLOW | (_AT_RECURSIVE if recursive else 0)
    ctypes.set_errno(0)
    result = _mount_setattr_call(
        number, _AT_FDCWD, os.fsencode(path), flags, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    _check(result, f"mount_setattr: {what}")


def _restore_writable(path: str, states: dict[str, MountState]) -> None:
    """Clear read-only on the mount at ``path`` and on each mount beneath it that was
    writable before (none is made writable that was not)."""
    if not _state_at(states, path).read_only:
        _mount_setattr(path, 0, _MOUNT_ATTR_RDONLY, f"making {path} writable", recursive=False)
    prefix = path.rstrip("/") + "/"
    for point, state in states.items():
        if point.startswith(prefix) and not state.read_only:
            what = f"making {point} writable"
            _mount_setattr(point, 0, _MOUNT_ATTR_RDONLY, what, recursive=False)


def _private_ptys() -> list[str]:
    """Mount a devpts instance of the turn's own on ``/dev/pts``, and its ``ptmx`` on
    ``/dev/ptmx``; return the mounts made, to be left able to open devices.

    ``/dev/ptmx`` must lie on a mount that allows devices for the kernel to find the
    devpts instance next to it, which the rest of ``/dev`` will not be: the instance's
    own ``ptmx`` (opened through the bind) needs no such search. Without a
    ``/dev/pts`` directory there are no ptys. A ``/dev/ptmx`` that is a symlink (to
    ``pts/ptmx``) already leads to the new instance.
    """
    if not os.path.isdir(_PTS) or os.path.islink(_PTS):
        return []
    ctypes.set_errno(0)
    options = b"newinstance,ptmxmode=0666,mode=0620"
    result = _c().mount(b"devpts", _PTS.encode(), b"devpts", _MS_NOSUID | _MS_NOEXEC, options)
    _check(result, f"mounting a devpts instance on {_PTS}")
    if not os.path.lexists(_PTMX) or os.path.islink(_PTMX):
        return [_PTS]
    _mount(f"{_PTS}/ptmx", _PTMX, _MS_BIND, f"bind mount of {_PTS}/ptmx on {_PTMX}")
    return [_PTS, _PTMX]


def _mount_shm() -> None:
    if os.path.isdir(_SHM) and not os.path.islink(_SHM):
        ctypes.set_errno(0)
        result = _c().mount(b"tmpfs", _SHM.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=1777")
        _check(result, f"mounting a tmpfs on {_SHM}")


def _id_map(name: str) -> str:
    """Every id of this user namespace's ``uid_map`` or ``gid_map``, mapped onto itself."""
    try:
        with open(f"/proc/self/{name}") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ConfinementFailed(f"reading /proc/self/{name}", exc.errno or errno.EIO) from None
    ranges = [line.split() for line in lines if line.strip()]
    return "".join(f"{inside} {inside} {count}\n" for inside, _, count in ranges)


def _write_maps_from_outside(pid: int, maps: dict[str, str], go: int) -> None:
    """The helper's part (a forked child): once ``go`` is readable, write ``maps`` into
    the user namespace ``pid`` has entered, and exit with 0 or the errno that stopped it."""
    code = 0
    try:
        if os.read(go, 1) == b"1":
            for name, text in maps.items():
                fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
        else:
            code = errno.ECANCELED
    except OSError as exc:
        code = exc.errno or errno.EIO
    except BaseException:
        code = errno.EINVAL
    os._exit(code)


def _lock_mounts() -> None:
    """Enter a user namespace and a mount namespace below the current ones: every mount
    is copied into the new mount namespace locked, out of reach of the agent."""
    flags, what = _CLONE_NEWUSER | _CLONE_NEWNS, "unshare(CLONE_NEWUSER|CLONE_NEWNS) to lock"
    if os.geteuid() != 0:
        uid, gid = os.getuid(), os.getgid()
        ctypes.set_errno(0)
        _check(_c().unshare(flags), what)
        _write_proc("setgroups", "deny")
        _write_proc("uid_map", f"{uid} {uid} 1")
        _write_proc("gid_map", f"{gid} {gid} 1")
        return
    # Root: a process may map only its own id into a user namespace it has entered, so
    # a helper that stays outside (with CAP_SETUID there) writes the whole maps.
    maps = {"uid_map": _id_map("uid_map"), "gid_map": _id_map("gid_map")}
    pid = os.getpid()
    go_r, go_w = os.pipe()
    try:
        helper = os.fork()
    except OSError as exc:
        os.close(go_r)
        os.close(go_w)
        raise ConfinementFailed("fork of the id-map helper", exc.errno or errno.EIO) from None
    if helper == 0:  # pragma: no cover - the helper exits through os._exit
        os.close(go_w)
        _write_maps_from_outside(pid, maps, go_r)
    os.close(go_r)
    ctypes.set_errno(0)
    unshared = _c().unshare(flags)
    failure = ctypes.get_errno() or errno.EINVAL
    with contextlib.suppress(OSError):
        os.write(go_w, b"1" if unshared == 0 else b"0")
    os.close(go_w)
    _, status = os.waitpid(helper, 0)
    if unshared != 0:
        raise ConfinementFailed(what, failure)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        what = "writing the id maps of the turn's user namespace"
        raise ConfinementFailed(what, code if code > 0 else errno.EINTR)


def _confine_by_mounts(config: Config) -> None:
    """Steps a to f of the module docstring."""
    _enter_namespace()
    for path in config.write:
        # "/" is a mount already, and one bound on top of it would not be reached.
        if path != "/":
            _bind_onto_itself(path)
    for path in config.devices:
        _bind_onto_itself(path)
    ptys = _private_ptys()
    states = mount_states(_mountinfo())
    everything = _MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NODEV
    _mount_setattr("/", everything, 0, "making every mount read-only", recursive=True)
    for path in config.write:
        _restore_writable(path, states)
    for path in config.excluded:
        _bind_onto_itself(path)
        _mount_setattr(path, _MOUNT_ATTR_RDONLY, 0, f"making {path} read-only", recursive=True)
    for path in config.writable:
        _bind_onto_itself(path)
        _restore_writable(path, states)
    for path in config.devices:
        if not _state_at(states, path).nodev:
            what = f"letting {path} be opened"
            _mount_setattr(path, 0, _MOUNT_ATTR_NODEV, what, recursive=False)
    for path in ptys:
        _mount_setattr(path, 0, _MOUNT_ATTR_NODEV, f"letting {path} be opened", recursive=False)
    if _PROC in states and not states[_PROC].read_only:
        what = f"making {_PROC} writable"
        _mount_setattr(_PROC, 0, _MOUNT_ATTR_RDONLY, what, recursive=False)
    _mount_shm()
    _lock_mounts()
    _reenter_cwd()


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
    if config.mounts_only:
        _confine_by_mounts(config)
        return
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
