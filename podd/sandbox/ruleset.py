"""The Landlock ruleset of a confined turn, built in the pod.

``RulesetBuilder`` adds path-beneath rules to a ruleset that ``create_ruleset`` made;
the exec wrapper restricts itself to it. The ``landlock`` package is imported on first
use (``plumbing()``), so a pod that never runs a turn does not pay for it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import stat
from collections.abc import Sequence
from typing import Any

__all__ = ["RulesetBuilder", "create_ruleset", "plumbing", "within"]

_RULE_PATH_BENEATH = 1  # LANDLOCK_RULE_PATH_BENEATH


@functools.cache
def plumbing() -> Any:
    """The ``landlock`` package's low-level module, or None; imported on first use so
    that a pod that never runs a turn does not pay for it."""
    try:
        import landlock.plumbing
    except ImportError:  # pragma: no cover - the package is a dependency
        return None
    return landlock.plumbing


def create_ruleset(handled: int) -> int:
    _ll = plumbing()
    assert _ll is not None
    attr = _ll.RulesetAttr(handled)
    ctypes.set_errno(0)
    fd: int = _ll.get_create_ruleset()(ctypes.byref(attr), ctypes.sizeof(attr), 0)
    return fd


def within(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


class RulesetBuilder:
    """Adds path-beneath rules to one ruleset, giving files file rights only."""

    def __init__(self, ruleset_fd: int, handled: int) -> None:
        _ll = plumbing()
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
            _ll = plumbing()
            assert _ll is not None
            rule = _ll.PathBeneathAttr(access, fd)
            ctypes.set_errno(0)
            self._add_rule(self._ruleset_fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
        finally:
            os.close(fd)

    def add_write_tree(self, top: str, excluded: Sequence[str]) -> None:
        """Allow full access beneath ``top`` except beneath any of ``excluded``
        (the approximation that ``podd.sandbox.prepare`` describes)."""
        if any(within(top, ex) for ex in excluded):
            return
        inside = [ex for ex in excluded if within(ex, top)]
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
