"""The mount table and mount flags: what ``/proc/self/mountinfo`` and ``statvfs`` say.

Pure functions of their input, with the ``mount(2)`` flags that the system calls use:
``remount_flags`` keeps what a mount has on a remount, ``mount_points_beneath`` and
``mount_states`` read a mount table.
"""

from __future__ import annotations

import os

__all__ = [
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_REC",
    "MountState",
    "mount_points_beneath",
    "mount_states",
    "remount_flags",
    "state_at",
]

_MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOSYMFOLLOW = 256
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
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
    (_ST_NOSUID, MS_NOSUID),
    (_ST_NODEV, MS_NODEV),
    (_ST_NOEXEC, MS_NOEXEC),
    (_ST_NOATIME, _MS_NOATIME),
    (_ST_NODIRATIME, _MS_NODIRATIME),
    (_ST_RELATIME, _MS_RELATIME),
    (_ST_NOSYMFOLLOW, _MS_NOSYMFOLLOW),
)


def remount_flags(f_flag: int, *, read_only: bool = True) -> int:
    """Return the ``mount(2)`` flags that remount a bind mount, keeping what it has.

    ``f_flag`` is the mount's ``statvfs`` flag word. In a user namespace the kernel
    refuses (EPERM) a remount that drops a flag the mount was given outside it (nosuid,
    nodev, noexec, the atime mode), so they are all carried over; ``MS_RDONLY`` is set
    or left out as asked.
    """
    flags = _MS_REMOUNT | MS_BIND | (_MS_RDONLY if read_only else 0)
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


def state_at(states: dict[str, MountState], path: str) -> MountState:
    """The state of the mount that ``path`` lies on: that of the nearest mount point at
    or above it."""
    while path not in states and path != "/":
        path = os.path.dirname(path)
    return states.get(path, MountState(False, False))
