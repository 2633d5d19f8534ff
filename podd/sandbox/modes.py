"""How turns can be confined on this host: the mode, and one sentence on what it loses.

``enforcement_mode()`` says ``"exact"``, ``"approximate"`` or ``"advisory"`` (what each
means for a turn: ``podd.sandbox.prepare``); ``enforcement_detail()`` says it in words
for ``status``. The checks behind them look at the kernel (Landlock, user and mount
namespaces, ``mount_setattr(2)``) once per process; ``PODD_NO_NAMESPACES`` is read on
each call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
from collections.abc import Callable
from typing import Literal

from podd.sandbox.ruleset import plumbing

__all__ = [
    "EnforcementMode",
    "enforcement_detail",
    "enforcement_mode",
    "mount_setattr_number",
    "mounts_only_problem",
    "namespace_problem",
]

EnforcementMode = Literal["exact", "approximate", "advisory"]

_CAP_SYS_ADMIN = 21

_MOUNTS_ONLY = (
    "mounts alone (--nested-sandbox), no Landlock, so that a sandbox the agent starts"
    " (bubblewrap) can run: in the turn's own mount namespace everything is read-only"
    " but the write scope and the turn's TMPDIR, and paths a child holds for write are"
    " read-only binds; writes outside fail with EROFS (Read-only file system), not"
    " EACCES, and a rename from TMPDIR into the scope with EXDEV"
)

_APPROXIMATION = (
    "while a child holds a path for write, files directly in the write path above it"
    " (and in directories on the way to it) can be written but not created, removed or"
    " renamed, and entries created there after the turn started are read-only"
)


@functools.cache
def _landlock_problem() -> str | None:
    """Say why turns cannot be put under Landlock here, or None if they can."""
    _ll = plumbing()
    if _ll is None:
        return "the landlock package is not installed"
    from landlock import LandlockError

    try:
        ctypes.set_errno(0)
        if _ll.landlock_abi_version() >= 1:
            return None
    except (OSError, LandlockError):
        pass
    return "the kernel has no Landlock; see /sys/kernel/security/lsm"


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def namespace_problem(
    euid: int, read: Callable[[str], str | None], *, nested_sandbox: bool = False
) -> str | None:
    """Say why a process of ``euid`` cannot make a private mount namespace, or None.

    ``read(path)`` returns a file's text, or None if it cannot be read. The checks are
    static: as root, ``CAP_SYS_ADMIN`` in the effective set; otherwise unprivileged user
    namespaces enabled (``user.max_user_namespaces`` above 0, and neither Debian's
    ``kernel.unprivileged_userns_clone`` nor Ubuntu's AppArmor restriction turning them
    off). With ``nested_sandbox`` (mounts alone, which lock the mounts with a user
    namespace), root needs ``user.max_user_namespaces`` above 0 too. A host that passes
    them but still refuses (a seccomp filter, say) fails the turns that need a
    namespace, with the wrapper's message.
    """
    if euid == 0:
        for line in (read("/proc/self/status") or "").splitlines():
            name, _, value = line.partition(":")
            if name == "CapEff":
                with contextlib.suppress(ValueError):
                    if int(value.strip(), 16) >> _CAP_SYS_ADMIN & 1:
                        return _user_namespace_limit(read) if nested_sandbox else None
                break
        return "root without CAP_SYS_ADMIN"
    problem = _user_namespace_limit(read)
    if problem is not None:
        return problem
    if (read("/proc/sys/kernel/unprivileged_userns_clone") or "").strip() == "0":
        return "user namespaces disabled: kernel.unprivileged_userns_clone is 0"
    if (read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") or "").strip() == "1":
        return "user namespaces disabled: kernel.apparmor_restrict_unprivileged_userns is 1"
    return None


def _user_namespace_limit(read: Callable[[str], str | None]) -> str | None:
    limit = (read("/proc/sys/user/max_user_namespaces") or "").strip()
    if not limit.isdigit():
        return "the kernel has no user namespaces"
    if int(limit) == 0:
        return "user namespaces disabled: user.max_user_namespaces is 0"
    return None


def mount_setattr_number(machine: str) -> int | None:
    """The number of ``mount_setattr(2)`` on ``machine`` (``os.uname().machine``), or None.

    The exec wrapper, which imports nothing of podd, has the same table.
    """
    if machine.startswith(("mips", "ia64")):
        return None
    return 552 if machine.startswith("alpha") else 442


@functools.cache
def _mount_setattr_problem() -> str | None:
    """Say why this kernel has no ``mount_setattr(2)``, or None if it has one."""
    machine = os.uname().machine
    number = mount_setattr_number(machine)
    if number is None:
        return f"mount_setattr's number is not known on {machine}"
    call = ctypes.CDLL(None, use_errno=True)["syscall"]
    call.argtypes = [ctypes.c_long] * 6
    ctypes.set_errno(0)
    # A size of 0 is refused (EINVAL) before anything is looked at; ENOSYS means the
    # kernel has no such call.
    call(number, -1, 0, 0, 0, 0)
    if ctypes.get_errno() == errno.ENOSYS:
        return "the kernel has no mount_setattr (Linux 5.12 or later has)"
    return None


@functools.cache
def _mounts_only_problem_here() -> str | None:
    problem = namespace_problem(os.geteuid(), _read_text, nested_sandbox=True)
    return problem if problem is not None else _mount_setattr_problem()


def mounts_only_problem() -> str | None:
    """Say why turns here cannot be confined by mounts alone (``nested_sandbox``), or
    None if they can. ``PODD_NO_NAMESPACES`` is read on each call; the kernel checks
    run once per process."""
    if os.environ.get("PODD_NO_NAMESPACES", ""):
        return "PODD_NO_NAMESPACES is set"
    return _mounts_only_problem_here()


@functools.cache
def _namespace_problem_here() -> str | None:
    return namespace_problem(os.geteuid(), _read_text)


def _no_namespaces() -> str | None:
    """Say why turns here get no mount namespace, or None if they can."""
    if os.environ.get("PODD_NO_NAMESPACES", ""):
        return "PODD_NO_NAMESPACES is set"
    return _namespace_problem_here()


def enforcement_mode(nested_sandbox: bool = False) -> EnforcementMode:
    """Return how turns are confined here: ``"exact"``, ``"approximate"`` or ``"advisory"``.

    The kernel checks run once per process; ``PODD_NO_NAMESPACES`` (any non-empty value)
    is read on each call and forces ``"approximate"`` where Landlock works. With
    ``nested_sandbox`` (mounts alone), ``"exact"`` wherever those can be used, Landlock
    or not; elsewhere the mode of a turn without it.
    """
    if nested_sandbox and mounts_only_problem() is None:
        return "exact"
    if _landlock_problem() is not None:
        return "advisory"
    if _no_namespaces() is not None:
        return "approximate"
    return "exact"


def enforcement_detail(nested_sandbox: bool = False) -> str:
    """Return one sentence saying what is enforced here and, short of exact, what is lost.

    With ``nested_sandbox``, it names the mechanism, or why it cannot be used here.
    """
    if nested_sandbox:
        problem = mounts_only_problem()
        if problem is None:
            return _MOUNTS_ONLY
        return (
            f"--nested-sandbox is not possible here ({problem}), so turns are confined as"
            f" without it: {enforcement_detail()}"
        )
    landlock = _landlock_problem()
    if landlock is not None:
        return (
            f"no Landlock ({landlock}): writes are not confined; each turn only runs in"
            " its own process group, and scope is checked only when it is delegated"
        )
    confined = "Landlock confines writes to the write scope and the turn's TMPDIR"
    namespaces = _no_namespaces()
    if namespaces is not None:
        return f"{confined}; no mount namespaces ({namespaces}): {_APPROXIMATION}"
    return (
        f"{confined}; paths a child holds for write are read-only bind mounts in the"
        " turn's own mount namespace, and the rest of the write scope stays fully writable"
    )
