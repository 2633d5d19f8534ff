"""Confinement of agent turns: Landlock, and read-only bind mounts for exclusions; or,
for an agent that starts a sandbox of its own, mounts alone.

``prepare_confinement`` runs in the pod. It opens the paths, builds a Landlock ruleset
and writes the configuration of the exec wrapper (``podd/_confine_exec.py``) to a
memory file. It returns a ``Confinement``: the argv and the file descriptors with which
the spawner starts the turn. The wrapper confines its own process and then becomes
``/bin/sh -c COMMAND``; no Python code runs between fork and exec in the pod. The
restriction is inherited by everything the agent starts, and cannot be lifted.

What a confined turn may do:

- read and execute anything beneath ``/`` (ordinary permissions still apply);
- everything beneath each write path and each extra write path (its temp dir);
- read and write a few device files: ``/dev/null``, ``/dev/zero``, ``/dev/full``,
  ``/dev/random``, ``/dev/urandom``, ``/dev/tty``.

Anything else that needs write access (create, unlink, rename, open for writing,
truncate, mknod, device ioctls) fails with ``EACCES``. Files opened before the
restriction, such as the turn's stdin, stdout and stderr pipes, are not affected.

Exclusions (paths a child holds for write, beneath a write path) depend on the mode
that ``enforcement_mode()`` reports:

- ``"exact"``: Landlock can only add rights beneath a path, never take them away, so
  the wrapper enters a private mount namespace and bind-mounts each excluded path onto
  itself read-only. Writes beneath it fail with ``EROFS``; the rest of the write path
  keeps every right. Landlock then forbids the turn any mount change, so the bind
  stays. A turn with no exclusion gets no namespace.
- ``"approximate"`` (Landlock, but no usable mount namespaces, or
  ``PODD_NO_NAMESPACES`` set): the write path itself gets no rule; every existing
  entry along the way from it down to the excluded path, except the entries leading
  to the excluded path, gets full access (a directory) or file access (anything else).
  So, while an exclusion holds, files directly in the write path, or in a directory
  between it and the excluded path, can be read and written but not created, removed
  or renamed; entries created there by someone else after the turn started are read
  only; symlinks there are not followed to grant rights.
- ``"advisory"`` (no Landlock: old kernel, kernel without the LSM, or the ``landlock``
  package absent): the turn is started as ``/bin/sh -c COMMAND`` in its own process
  group, and nothing more.

Write paths that do not exist are skipped; so are excluded paths in exact mode (in
approximate mode a missing excluded path still takes the rule of its write path away).
A write path at or beneath an excluded path gets no rule at all.

Mounts alone (``nested_sandbox``, ``podd spawn --nested-sandbox``): Landlock forbids
``mount(2)`` and ``pivot_root(2)`` to every process it confines, so a sandbox that the
agent starts itself (bubblewrap, as Codex and Claude Code use on Linux) cannot run
under it. For such a pod the wrapper builds no ruleset; in the turn's own mount
namespace every mount is read-only and ``nodev`` except the write paths and the
temp dir, the excluded paths beneath them are read-only binds again, and only the
device files above and ptys of the turn's own can be opened; a further user namespace
locks those mounts (see ``podd/_confine_exec.py``). The mode is still ``"exact"``; what
differs:

- writes outside the write scope fail with ``EROFS`` ("Read-only file system"), not
  ``EACCES``;
- the temp dir is a mount of its own (unless it lies in a write path), so a rename
  from it into a write path fails with ``EXDEV`` (``mv`` copies instead);
- as root, the agent holds its capabilities only in the turn's user namespace: over
  its own mounts, not over the host (no ports below 1024, no modules, no devices).

It needs mount namespaces, user namespaces (as root too) and ``mount_setattr(2)``
(Linux 5.12), but not Landlock. Where they are missing, or ``PODD_NO_NAMESPACES`` is
set, the pod's turns are confined as if it had not asked: by Landlock, in whatever
mode the host allows, and ``enforcement_detail`` says so. A sandbox of the agent's
own then cannot mount (it could not without those namespaces either); confinement is
never weakened for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import marshal
import os
import stat
import sys
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "DEVICE_FILES",
    "WRAPPER",
    "Confinement",
    "EnforcementMode",
    "enforcement_detail",
    "enforcement_mode",
    "mount_setattr_number",
    "mounts_only_problem",
    "namespace_problem",
    "prepare_confinement",
]

EnforcementMode = Literal["exact", "approximate", "advisory"]

DEVICE_FILES = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
)

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_confine_exec.py")
"""The exec wrapper, run by path (``python -I -S WRAPPER FD``) so that it imports no podd.

It is a leaf: nothing here imports it. Its module docstring defines the configuration
that ``prepare_confinement`` writes."""

SHELL = "/bin/sh"

_RULE_PATH_BENEATH = 1  # LANDLOCK_RULE_PATH_BENEATH
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
def _plumbing() -> Any:
    """The ``landlock`` package's low-level module, or None; imported on first use so
    that a pod that never runs a turn does not pay for it."""
    try:
        import landlock.plumbing
    except ImportError:  # pragma: no cover - the package is a dependency
        return None
    return landlock.plumbing


@functools.cache
def _landlock_problem() -> str | None:
    """Say why turns cannot be put under Landlock here, or None if they can."""
    _ll = _plumbing()
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


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class Confinement:
    """How to start one agent turn; close it once the turn is over.

    The spawner runs ``argv`` with ``pass_fds`` and ``process_group=0`` (a new process
    group of its own, set before exec), then calls ``spawned()``. Confined (under
    Landlock, or by mounts alone: ``mounts_only``), ``argv`` runs the exec wrapper,
    which confines the process and then becomes ``/bin/sh -c COMMAND``; ``status_fd``
    turns readable once it has done so, or has failed. If confining fails it exits
    with status 126 and a
    ``podd: confinement failed: ...`` line on stderr, and the command does not run:
    ``failure()`` then returns that line. In advisory mode ``argv`` is the shell itself.

    The pod holds its descriptors until ``close()`` (also run on leaving a ``with``
    block, and when the object is collected).
    """

    __slots__ = (
        "__weakref__",
        "_closer",
        "_passed",
        "_status_fd",
        "argv",
        "mode",
        "mounts_only",
        "pass_fds",
    )

    def __init__(
        self,
        argv: list[str],
        mode: EnforcementMode,
        pass_fds: Sequence[int] = (),
        status_fd: int | None = None,
        *,
        mounts_only: bool = False,
    ) -> None:
        self.argv = argv
        self.mode = mode
        self.mounts_only = mounts_only
        self.pass_fds = tuple(pass_fds)
        self._status_fd = status_fd
        self._passed = weakref.finalize(self, _close_all, self.pass_fds)
        kept = () if status_fd is None else (status_fd,)
        self._closer = weakref.finalize(self, _close_all, kept)

    @property
    def enforced(self) -> bool:
        """Say whether the turn is confined: under a Landlock ruleset, or by mounts alone."""
        return self.mode != "advisory"

    @property
    def status_fd(self) -> int | None:
        """The read end of the wrapper's status pipe, or None in advisory mode.

        After ``spawned()`` it turns readable (end-of-file, or the failure message) as
        soon as the wrapper has exec'd the command or given up. Do not read it; use
        ``failure()``.
        """
        return self._status_fd

    def spawned(self) -> None:
        """Close the pod's copies of ``pass_fds``; calling again does nothing."""
        self._passed()

    def failure(self) -> str | None:
        """Return the wrapper's failure message, or None if it ran the command.

        Call it once the process has exited. Never blocks.
        """
        if self._status_fd is None or not self._closer.alive:
            return None
        try:
            os.set_blocking(self._status_fd, False)
            data = os.read(self._status_fd, 4096)
        except OSError:
            return None
        return data.decode(errors="replace").strip() or None

    def close(self) -> None:
        """Close every descriptor the pod holds for this turn; calling again does nothing."""
        self._passed()
        self._closer()

    def __enter__(self) -> Confinement:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def prepare_confinement(
    command: str,
    write_paths: Sequence[str],
    excluded: Sequence[str],
    extra_write: Sequence[str],
    *,
    mode: EnforcementMode | None = None,
    nested_sandbox: bool = False,
) -> Confinement:
    """Build the confinement of one turn that runs ``/bin/sh -c command``.

    ``write_paths`` get full access beneath them, except beneath ``excluded`` paths
    (held for write by a child), which are excluded as the module docstring says for
    ``mode`` (by default ``enforcement_mode(nested_sandbox)``). ``extra_write`` (the
    turn's own temp dirs) get full access whatever the exclusions. Paths that do not
    exist are skipped. With ``nested_sandbox``, in exact mode and where mounts alone can
    be used, the turn is confined by mounts alone (no Landlock); otherwise as without it.

    Raises ``OSError`` if the ruleset or the configuration cannot be built.
    """
    if mode is None:
        mode = enforcement_mode(nested_sandbox)
    if nested_sandbox and mode == "exact" and mounts_only_problem() is None:
        return _prepare_mounts_only(command, write_paths, excluded, extra_write)
    if mode == "advisory":
        return Confinement([SHELL, "-c", command], mode)
    _ll = _plumbing()
    assert _ll is not None
    handled = int(_ll.FSAccess.all())
    excluded_real = list(dict.fromkeys(os.path.realpath(path) for path in excluded))
    write_real = [os.path.realpath(path) for path in write_paths]
    extra_real = [os.path.realpath(path) for path in extra_write]
    read_only: list[str] = []
    status_r, status_w = os.pipe()
    owned = [status_r, status_w]
    try:
        ruleset_fd = _create_ruleset(handled)
        owned.append(ruleset_fd)
        builder = _RulesetBuilder(ruleset_fd, handled)
        builder.add_path(
            "/", int(_ll.FSAccess.READ_FILE | _ll.FSAccess.READ_DIR | _ll.FSAccess.EXECUTE)
        )
        for device in DEVICE_FILES:
            builder.add_path(device, builder.file_access)
        if mode == "exact":
            granted = [w for w in write_real if not any(_within(w, x) for x in excluded_real)]
            for path in granted:
                builder.add_path(path, handled)
            read_only = _bind_targets(granted, excluded_real)
        else:
            for path in write_real:
                builder.add_write_tree(path, excluded_real)
        for path in extra_real:
            builder.add_path(path, handled)
        config = {
            "command": command,
            "unshare": bool(read_only),
            "excluded": read_only,
            "writable": [t for t in extra_real if any(_within(t, x) for x in read_only)],
            "ruleset_fd": ruleset_fd,
            "status_fd": status_w,
        }
        config_fd = _memory_file(marshal.dumps(config))
        owned.append(config_fd)
    except BaseException:
        _close_all(owned)
        raise
    argv = [sys.executable, "-I", "-S", WRAPPER, str(config_fd)]
    return Confinement(argv, mode, [status_w, ruleset_fd, config_fd], status_r)


def _prepare_mounts_only(
    command: str, write_paths: Sequence[str], excluded: Sequence[str], extra_write: Sequence[str]
) -> Confinement:
    """The confinement by mounts alone: the wrapper's ``"mounts_only"`` configuration.

    The write paths and the temp dirs outside them are bound writable (outermost only:
    a mount within another would make renames between them fail with ``EXDEV``); the
    excluded paths strictly beneath a write path are bound read-only; a temp dir
    beneath one of those is bound writable again.
    """
    excluded_real = list(dict.fromkeys(os.path.realpath(path) for path in excluded))
    write_real = [os.path.realpath(path) for path in write_paths]
    extra_real = [os.path.realpath(path) for path in extra_write]
    granted = [
        w for w in write_real if os.path.exists(w) and not any(_within(w, x) for x in excluded_real)
    ]
    read_only = _bind_targets(granted, excluded_real)
    extra = [t for t in extra_real if os.path.exists(t)]
    outside = [t for t in extra if not any(_within(t, w) for w in granted)]
    config = {
        "command": command,
        "mounts_only": True,
        "write": _outermost(granted + outside),
        "excluded": read_only,
        "writable": _outermost([t for t in extra if any(_within(t, x) for x in read_only)]),
        "devices": [d for d in DEVICE_FILES if os.path.exists(d) and not os.path.islink(d)],
        "ruleset_fd": None,
    }
    status_r, status_w = os.pipe()
    try:
        config["status_fd"] = status_w
        config_fd = _memory_file(marshal.dumps(config))
    except BaseException:
        _close_all([status_r, status_w])
        raise
    argv = [sys.executable, "-I", "-S", WRAPPER, str(config_fd)]
    return Confinement(argv, "exact", [status_w, config_fd], status_r, mounts_only=True)


def _outermost(paths: Sequence[str]) -> list[str]:
    """``paths`` without duplicates and without any path that lies within another."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(q != p and _within(p, q) for q in unique)]


def _bind_targets(write_paths: Sequence[str], excluded: Sequence[str]) -> list[str]:
    """The excluded paths to bind read-only: those that exist strictly beneath a write
    path, outermost only (a bind beneath a read-only bind is read-only already)."""
    beneath = sorted(x for x in excluded if any(x != w and _within(x, w) for w in write_paths))
    targets: list[str] = []
    for path in beneath:
        if any(_within(path, t) for t in targets) or not os.path.lexists(path):
            continue
        targets.append(path)
    return targets


def _memory_file(data: bytes) -> int:
    """An anonymous file holding ``data``, positioned at its start (close-on-exec)."""
    fd = os.memfd_create("podd-confine", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_ruleset(handled: int) -> int:
    _ll = _plumbing()
    assert _ll is not None
    attr = _ll.RulesetAttr(handled)
    ctypes.set_errno(0)
    fd: int = _ll.get_create_ruleset()(ctypes.byref(attr), ctypes.sizeof(attr), 0)
    return fd


def _within(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


class _RulesetBuilder:
    """Adds path-beneath rules to one ruleset, giving files file rights only."""

    def __init__(self, ruleset_fd: int, handled: int) -> None:
        _ll = _plumbing()
        assert _ll is not None
        self._ruleset_fd = ruleset_fd
        self._handled = handled
        self._add_rule = _ll.get_add_rule()
        self.file_access = handled & int(_ll.FSAccess.all_file())

    def add_path(self, path: str, access: int, *, follow: bool = True) -> None:
        """Allow ``access`` beneath ``path``; skip it if it does not exist or is out of reach.

        A rule on anything but a directory may carry only file rights (the kernel
        rejects the whole rule otherwise), so those are cut down to file rights. With
        ``follow=False`` a symlink is skipped rather than followed.
        """
        flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        try:
            fd = os.open(path, flags)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                return
            if not stat.S_ISDIR(mode):
                access &= self.file_access
            _ll = _plumbing()
            assert _ll is not None
            rule = _ll.PathBeneathAttr(access, fd)
            ctypes.set_errno(0)
            self._add_rule(self._ruleset_fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
        finally:
            os.close(fd)

    def add_write_tree(self, top: str, excluded: Sequence[str]) -> None:
        """Allow full access beneath ``top`` except beneath any of ``excluded``
        (the approximation of the module docstring)."""
        if any(_within(top, ex) for ex in excluded):
            return
        inside = [ex for ex in excluded if _within(ex, top)]
        if not inside:
            self.add_path(top, self._handled)
            return
        self._add_around(top, inside)

    def _add_around(self, directory: str, excluded: Sequence[str]) -> None:
        """Allow full access to the entries of ``directory`` that lead to no exclusion.

        Every path in ``excluded`` lies strictly beneath ``directory``. An entry that is
        an excluded path gets nothing; one that leads to excluded paths deeper down is
        handled the same way, one level further.
        """
        prefix = directory.rstrip("/") + "/"
        blocked: set[str] = set()
        leading: dict[str, list[str]] = {}
        for path in excluded:
            name, _, rest = path[len(prefix) :].partition("/")
            if rest:
                leading.setdefault(name, []).append(path)
            else:
                blocked.add(name)
        try:
            with os.scandir(directory) as entries:
                names = [entry.name for entry in entries]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for name in names:
            if name in blocked:
                continue
            path = prefix + name
            if name in leading:
                if os.path.isdir(path) and not os.path.islink(path):
                    self._add_around(path, leading[name])
                continue
            self.add_path(path, self._handled, follow=False)
