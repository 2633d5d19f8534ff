"""Entering the turn's own mount namespace, locking its mounts, re-entering the cwd.

``enter_namespace`` makes a private mount namespace (with a user namespace too, but as
root); ``lock_mounts`` enters one more user and mount namespace, so that the mounts made
in the first are locked against the agent; ``reenter_cwd`` moves the working directory
onto the new mounts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os

from .failure import ConfinementFailed
from .mounts import MS_PRIVATE, MS_REC
from .syscalls import CLONE_NEWNS, CLONE_NEWUSER, check, libc, mount, write_proc

__all__ = ["enter_namespace", "lock_mounts", "reenter_cwd"]


def enter_namespace() -> None:
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:
        flags, what = CLONE_NEWNS, "unshare(CLONE_NEWNS)"
    else:
        flags, what = CLONE_NEWUSER | CLONE_NEWNS, "unshare(CLONE_NEWUSER|CLONE_NEWNS)"
    ctypes.set_errno(0)
    check(libc().unshare(flags), what)
    if flags & CLONE_NEWUSER:
        write_proc("setgroups", "deny")
        write_proc("uid_map", f"{uid} {uid} 1")
        write_proc("gid_map", f"{gid} {gid} 1")
    # Without this, a bind made here would propagate back to the mounts it was copied
    # from (a root namespace's mounts are usually shared).
    mount(None, "/", MS_REC | MS_PRIVATE, "making / private")


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


def lock_mounts() -> None:
    """Enter a user namespace and a mount namespace below the current ones: every mount
    is copied into the new mount namespace locked, out of reach of the agent."""
    flags, what = CLONE_NEWUSER | CLONE_NEWNS, "unshare(CLONE_NEWUSER|CLONE_NEWNS) to lock"
    if os.geteuid() != 0:
        uid, gid = os.getuid(), os.getgid()
        ctypes.set_errno(0)
        check(libc().unshare(flags), what)
        write_proc("setgroups", "deny")
        write_proc("uid_map", f"{uid} {uid} 1")
        write_proc("gid_map", f"{gid} {gid} 1")
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
    unshared = libc().unshare(flags)
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


def reenter_cwd() -> None:
    # The working directory still points into the mounts as they were: one beneath an
    # excluded path would stay writable through relative paths.
    try:
        os.chdir(os.getcwd())
    except OSError as exc:
        raise ConfinementFailed(
            "re-entering the working directory", exc.errno or errno.EIO
        ) from None
