"""Landlock confinement of agent turns.

``prepare_confinement`` runs in the pod (the parent): it opens the paths and builds a
Landlock ruleset. It returns a ``Confinement``, which the spawner passes as
``preexec_fn``: in the child, between fork and exec, it moves the turn into its own
process group and, under Landlock, restricts the child to the ruleset. The restriction
is inherited by everything the agent starts, and cannot be lifted.

What a confined turn may do:

- read and execute anything beneath ``/`` (ordinary permissions still apply);
- everything beneath each write path and each extra write path (its temp dir);
- read and write a few device files: ``/dev/null``, ``/dev/zero``, ``/dev/full``,
  ``/dev/random``, ``/dev/urandom``, ``/dev/tty``.

Anything else that needs write access (create, unlink, rename, open for writing,
truncate, mknod, device ioctls) fails with ``EACCES``. Files opened before the
restriction, such as the turn's stdin, stdout and stderr pipes, are not affected.

Exclusions, and how they are approximated: Landlock can only add rights, never take
them away beneath a path that has them. To keep the pod from writing under a path a
child holds for write (an *excluded* path beneath a write path), the write path itself
gets no rule; instead every existing entry along the way from the write path down to
the excluded path, except the entries leading to the excluded path, gets full access
(a directory) or file access (anything else). So, while an exclusion holds:

- files directly in the write path, or in a directory between it and the excluded
  path, can be read and written but not created, removed or renamed;
- entries created there by someone else after the turn started are read only;
- symlinks there are not followed to grant rights (their targets stay read only).

Write paths that do not exist are skipped. If Landlock is missing (old kernel, kernel
without the LSM, or the ``landlock`` package absent), ``enforcement_mode()`` says
``"advisory"`` and the returned ``Confinement`` only sets the process group.
"""

from __future__ import annotations

import ctypes
import functools
import os
import stat
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal


@functools.cache
def _plumbing() -> Any:
    """The ``landlock`` package's low-level module, or None; imported on first use so
    that a pod that never runs a turn does not pay for it."""
    try:
        import landlock.plumbing
    except ImportError:  # pragma: no cover - the package is a dependency
        return None
    return landlock.plumbing


__all__ = [
    "DEVICE_FILES",
    "Confinement",
    "EnforcementMode",
    "enforcement_mode",
    "prepare_confinement",
]

EnforcementMode = Literal["landlock", "advisory"]

DEVICE_FILES = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
)

_RULE_PATH_BENEATH = 1  # LANDLOCK_RULE_PATH_BENEATH
_PR_SET_NO_NEW_PRIVS = 38


@functools.cache
def enforcement_mode() -> EnforcementMode:
    """Return ``"landlock"`` if this kernel and package can confine turns, else ``"advisory"``.

    The answer is computed once per process.
    """
    _ll = _plumbing()
    if _ll is None:
        return "advisory"
    from landlock import LandlockError

    try:
        ctypes.set_errno(0)
        if _ll.landlock_abi_version() < 1:
            return "advisory"
        # Warm the package's cached syscall wrappers here, so that the child runs none
        # of that set-up between fork and exec.
        _ll.get_prctl()
        _ll.get_restrict_self()
        _ll.get_add_rule()
    except (OSError, LandlockError):
        return "advisory"
    return "landlock"


class Confinement:
    """A ``preexec_fn`` for an agent turn; close it once the process is spawned.

    Calling it (in the child, between fork and exec) puts the calling process in a new
    process group of its own (``setpgid(0, 0)``) and then, under Landlock, restricts it
    to the ruleset. Any failure raises, so the spawn fails rather than run unconfined.

    The pod holds the ruleset as a file descriptor until ``close()`` (also run on
    leaving a ``with`` block, and when the object is collected). The child's copy is
    close-on-exec.
    """

    __slots__ = ("__weakref__", "_closer", "_fd", "_prctl", "_restrict_self")

    def __init__(self, ruleset_fd: int | None = None) -> None:
        self._fd = ruleset_fd
        self._prctl: Any = None
        self._restrict_self: Any = None
        self._closer: weakref.finalize[[int], Confinement] | None = None
        if ruleset_fd is not None:
            _ll = _plumbing()
            assert _ll is not None
            self._prctl = _ll.get_prctl()
            self._restrict_self = _ll.get_restrict_self()
            self._closer = weakref.finalize(self, os.close, ruleset_fd)

    @property
    def enforced(self) -> bool:
        """Say whether calling this applies a Landlock ruleset."""
        return self._fd is not None

    def __call__(self) -> None:
        os.setpgid(0, 0)
        if self._fd is None:
            return
        if self._closer is None or not self._closer.alive:
            raise RuntimeError("confinement used after close()")
        # The package's error checks read ctypes' saved errno, which a successful call
        # leaves as it was: clear it first so a stale value is not taken for a failure.
        ctypes.set_errno(0)
        self._prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        ctypes.set_errno(0)
        self._restrict_self(self._fd, 0)

    def close(self) -> None:
        """Close the ruleset; calling again does nothing."""
        if self._closer is not None:
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
    write_paths: Sequence[str], excluded: Sequence[str], extra_write: Sequence[str]
) -> Confinement:
    """Build the confinement of one agent turn.

    ``write_paths`` get full access beneath them, except beneath ``excluded`` paths
    (held for write by a child), which are approximated as the module docstring says.
    ``extra_write`` (the turn's own temp dirs) get full access whatever the exclusions.
    Paths that do not exist are skipped.

    Always returns a callable for ``preexec_fn``: in advisory mode it only sets the
    process group. Raises ``OSError`` if the ruleset cannot be built.
    """
    if enforcement_mode() == "advisory":
        return Confinement()
    _ll = _plumbing()
    assert _ll is not None
    handled = int(_ll.FSAccess.all())
    ruleset_fd = _create_ruleset(handled)
    try:
        builder = _RulesetBuilder(ruleset_fd, handled)
        builder.add_path(
            "/", int(_ll.FSAccess.READ_FILE | _ll.FSAccess.READ_DIR | _ll.FSAccess.EXECUTE)
        )
        for device in DEVICE_FILES:
            builder.add_path(device, builder.file_access)
        excluded_real = [os.path.realpath(path) for path in excluded]
        for path in write_paths:
            builder.add_write_tree(os.path.realpath(path), excluded_real)
        for path in extra_write:
            builder.add_path(path, handled)
    except BaseException:
        os.close(ruleset_fd)
        raise
    return Confinement(ruleset_fd)


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
        """Allow full access beneath ``top`` except beneath any of ``excluded``."""
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
