"""The system calls the wrapper makes, through ``ctypes``; each failure raises
``ConfinementFailed`` with what it was doing and the errno.

``libc()`` loads the C library on first use and declares the argument types of the
calls made through it; ``mount_setattr(2)``, which the C library may not wrap, goes
through ``syscall(2)`` by its number (``mount_setattr_number``).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable

from .failure import ConfinementFailed
from .mounts import MS_BIND, MS_REC

__all__ = [
    "CLONE_NEWNS",
    "CLONE_NEWUSER",
    "MOUNT_ATTR_NODEV",
    "MOUNT_ATTR_RDONLY",
    "bind_onto_itself",
    "check",
    "libc",
    "mount",
    "mount_setattr",
    "mount_setattr_number",
    "read_mountinfo",
    "statvfs_flags",
    "write_proc",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NODEV = 0x4

_libc: ctypes.CDLL | None = None
_mount_setattr_call: Callable[..., int] | None = None


def libc() -> ctypes.CDLL:
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


def check(result: int, what: str) -> None:
    if result != 0:
        raise ConfinementFailed(what, ctypes.get_errno() or errno.EINVAL)


def mount(source: str | None, target: str, flags: int, what: str) -> None:
    ctypes.set_errno(0)
    src = os.fsencode(source) if source is not None else None
    check(libc().mount(src, os.fsencode(target), None, flags, None), what)


def bind_onto_itself(path: str) -> None:
    # A symlink here would have been resolved by the pod: one now means the path was
    # replaced since, and mount(2) would follow it somewhere else.
    if os.path.islink(path):
        raise ConfinementFailed(f"{path} became a symlink", errno.ELOOP)
    mount(path, path, MS_BIND | MS_REC, f"bind mount of {path}")


def write_proc(name: str, text: str) -> None:
    try:
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfinementFailed(f"writing /proc/self/{name}", exc.errno or errno.EIO) from None


def statvfs_flags(path: str) -> int:
    try:
        return os.statvfs(path).f_flag
    except OSError as exc:
        raise ConfinementFailed(f"statvfs {path}", exc.errno or errno.EIO) from None


def read_mountinfo() -> bytes:
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfinementFailed("reading /proc/self/mountinfo", exc.errno or errno.EIO) from None


def mount_setattr_number(machine: str) -> int | None:
    """The number of ``mount_setattr(2)`` on ``machine`` (``os.uname().machine``), or
    None where it is not known here (MIPS and IA-64 number their system calls apart).

    Since Linux 5.1 new system calls get one number on every architecture but Alpha,
    whose numbers are 110 higher.
    """
    if machine.startswith(("mips", "ia64")):
        return None
    return 552 if machine.startswith("alpha") else 442


def mount_setattr(path: str, attr_set: int, attr_clr: int, what: str, *, recursive: bool) -> None:
    """Set and clear mount attributes on the mount at ``path`` (and, if ``recursive``,
    on every mount beneath it); ``what`` names the step if it fails."""
    number = mount_setattr_number(os.uname().machine)
    if number is None:
        raise ConfinementFailed("mount_setattr on this architecture", errno.ENOSYS)
    global _mount_setattr_call
    if _mount_setattr_call is None:
        # A function object of its own: the one ``libc()`` keeps has Landlock's arguments.
        call = libc()["syscall"]
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
    check(result, f"mount_setattr: {what}")
