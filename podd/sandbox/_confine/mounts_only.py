"""Confinement by mounts alone (``"mounts_only"``), for an agent that starts a sandbox of
its own, such as bubblewrap, which needs ``mount(2)``: Landlock would refuse it.

Instead of the binds and the ruleset of ``wrapper``, ``confine_by_mounts``:

a. enters a private mount namespace as ``wrapper`` does and makes every mount in it
   private;
b. binds each write path, and each device, onto itself (recursively), so that each is a
   mount of its own, and notes the flags every mount has;
c. makes every mount read-only and ``nodev``, recursively
   (``mount_setattr(2)``, Linux 5.12);
d. clears read-only again on each write path and on each mount beneath it that was
   writable before; binds each excluded path onto itself and makes it, and every mount
   beneath it, read-only; binds each writable path onto itself and clears read-only on
   it as on a write path; clears ``nodev`` on each device (device files open for
   writing on a read-only mount); clears read-only on ``/proc`` if it was writable
   (bubblewrap writes the id maps of its children there); mounts a private ``tmpfs`` on
   ``/dev/shm``;
e. locks it all: enters a user namespace and a mount namespace once more. Mounts copied
   into a mount namespace owned by a less privileged user namespace are locked by the
   kernel: none of them can be unmounted, nor its read-only or ``nodev`` flag cleared,
   by anyone in it, a root agent included (it keeps its capabilities only in that new
   user namespace). As root, a helper process that stays outside maps every uid and
   gid the wrapper's namespace knows onto itself; as any other user, its own uid and
   gid are mapped onto themselves;
f. re-enters the working directory through the new mounts.

Writes outside the write paths then fail with ``EROFS``, not ``EACCES``, and no
Landlock ruleset, nor ``PR_SET_NO_NEW_PRIVS``, stands in the way of the agent's own
sandbox.
"""

from __future__ import annotations

import ctypes
import os

from .config import Config
from .mounts import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MountState, mount_states, state_at
from .namespaces import enter_namespace, lock_mounts, reenter_cwd
from .syscalls import (
    MOUNT_ATTR_NODEV,
    MOUNT_ATTR_RDONLY,
    bind_onto_itself,
    check,
    libc,
    mount,
    mount_setattr,
    read_mountinfo,
)

__all__ = ["confine_by_mounts"]

_SHM = "/dev/shm"
_PROC = "/proc"
_PTS = "/dev/pts"
_PTMX = "/dev/ptmx"


def _restore_writable(path: str, states: dict[str, MountState]) -> None:
    """Clear read-only on the mount at ``path`` and on each mount beneath it that was
    writable before (none is made writable that was not)."""
    if not state_at(states, path).read_only:
        mount_setattr(path, 0, MOUNT_ATTR_RDONLY, f"making {path} writable", recursive=False)
    prefix = path.rstrip("/") + "/"
    for point, state in states.items():
        if point.startswith(prefix) and not state.read_only:
            what = f"making {point} writable"
            mount_setattr(point, 0, MOUNT_ATTR_RDONLY, what, recursive=False)


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
    result = libc().mount(b"devpts", _PTS.encode(), b"devpts", MS_NOSUID | MS_NOEXEC, options)
    check(result, f"mounting a devpts instance on {_PTS}")
    if not os.path.lexists(_PTMX) or os.path.islink(_PTMX):
        return [_PTS]
    mount(f"{_PTS}/ptmx", _PTMX, MS_BIND, f"bind mount of {_PTS}/ptmx on {_PTMX}")
    return [_PTS, _PTMX]


def _mount_shm() -> None:
    if os.path.isdir(_SHM) and not os.path.islink(_SHM):
        ctypes.set_errno(0)
        result = libc().mount(b"tmpfs", _SHM.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777")
        check(result, f"mounting a tmpfs on {_SHM}")


def confine_by_mounts(config: Config) -> None:
    """Steps a to f of the module docstring."""
    enter_namespace()
    for path in config.write:
        # "/" is a mount already, and one bound on top of it would not be reached.
        if path != "/":
            bind_onto_itself(path)
    for path in config.devices:
        bind_onto_itself(path)
    ptys = _private_ptys()
    states = mount_states(read_mountinfo())
    everything = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV
    mount_setattr("/", everything, 0, "making every mount read-only", recursive=True)
    for path in config.write:
        _restore_writable(path, states)
    for path in config.excluded:
        bind_onto_itself(path)
        mount_setattr(path, MOUNT_ATTR_RDONLY, 0, f"making {path} read-only", recursive=True)
    for path in config.writable:
        bind_onto_itself(path)
        _restore_writable(path, states)
    for path in config.devices:
        if not state_at(states, path).nodev:
            what = f"letting {path} be opened"
            mount_setattr(path, 0, MOUNT_ATTR_NODEV, what, recursive=False)
    for path in ptys:
        mount_setattr(path, 0, MOUNT_ATTR_NODEV, f"letting {path} be opened", recursive=False)
    if _PROC in states and not states[_PROC].read_only:
        what = f"making {_PROC} writable"
        mount_setattr(_PROC, 0, MOUNT_ATTR_RDONLY, what, recursive=False)
    _mount_shm()
    lock_mounts()
    reenter_cwd()
