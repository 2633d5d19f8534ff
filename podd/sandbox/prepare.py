"""Confinement of agent turns: Landlock, and read-only bind mounts for exclusions; or,
for an agent that starts a sandbox of its own, mounts alone.

``prepare_confinement`` runs in the pod. It opens the paths, builds a Landlock ruleset
and writes the configuration of the exec wrapper (``podd/sandbox/_confine/``) to a
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
locks those mounts (see ``podd/sandbox/_confine/mounts_only.py``). The mode is still
``"exact"``; what differs:

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

import marshal
import os
import sys
from collections.abc import Sequence

from podd.sandbox.confinement import Confinement, close_all
from podd.sandbox.modes import EnforcementMode, enforcement_mode, mounts_only_problem
from podd.sandbox.ruleset import RulesetBuilder, create_ruleset, plumbing, within

__all__ = ["DEVICE_FILES", "SHELL", "WRAPPER", "prepare_confinement"]

DEVICE_FILES = (
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
)

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_confine", "__main__.py")
"""The exec wrapper, run by path (``python -I -S WRAPPER FD``) so that it imports no podd.

It is a leaf: nothing here imports it. ``podd.sandbox._confine.config`` defines the
configuration that ``prepare_confinement`` writes."""

SHELL = "/bin/sh"


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
    _ll = plumbing()
    assert _ll is not None
    handled = int(_ll.FSAccess.all())
    excluded_real = list(dict.fromkeys(os.path.realpath(path) for path in excluded))
    write_real = [os.path.realpath(path) for path in write_paths]
    extra_real = [os.path.realpath(path) for path in extra_write]
    read_only: list[str] = []
    status_r, status_w = os.pipe()
    owned = [status_r, status_w]
    try:
        ruleset_fd = create_ruleset(handled)
        owned.append(ruleset_fd)
        builder = RulesetBuilder(ruleset_fd, handled)
        builder.add_path(
            "/", int(_ll.FSAccess.READ_FILE | _ll.FSAccess.READ_DIR | _ll.FSAccess.EXECUTE)
        )
        for device in DEVICE_FILES:
            builder.add_path(device, builder.file_access)
        if mode == "exact":
            granted = [w for w in write_real if not any(within(w, x) for x in excluded_real)]
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
            "writable": [t for t in extra_real if any(within(t, x) for x in read_only)],
            "ruleset_fd": ruleset_fd,
            "status_fd": status_w,
        }
        config_fd = _memory_file(marshal.dumps(config))
        owned.append(config_fd)
    except BaseException:
        close_all(owned)
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
        w for w in write_real if os.path.exists(w) and not any(within(w, x) for x in excluded_real)
    ]
    read_only = _bind_targets(granted, excluded_real)
    extra = [t for t in extra_real if os.path.exists(t)]
    outside = [t for t in extra if not any(within(t, w) for w in granted)]
    config = {
        "command": command,
        "mounts_only": True,
        "write": _outermost(granted + outside),
        "excluded": read_only,
        "writable": _outermost([t for t in extra if any(within(t, x) for x in read_only)]),
        "devices": [d for d in DEVICE_FILES if os.path.exists(d) and not os.path.islink(d)],
        "ruleset_fd": None,
    }
    status_r, status_w = os.pipe()
    try:
        config["status_fd"] = status_w
        config_fd = _memory_file(marshal.dumps(config))
    except BaseException:
        close_all([status_r, status_w])
        raise
    argv = [sys.executable, "-I", "-S", WRAPPER, str(config_fd)]
    return Confinement(argv, "exact", [status_w, config_fd], status_r, mounts_only=True)


def _outermost(paths: Sequence[str]) -> list[str]:
    """``paths`` without duplicates and without any path that lies within another."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(q != p and within(p, q) for q in unique)]


def _bind_targets(write_paths: Sequence[str], excluded: Sequence[str]) -> list[str]:
    """The excluded paths to bind read-only: those that exist strictly beneath a write
    path, outermost only (a bind beneath a read-only bind is read-only already)."""
    beneath = sorted(x for x in excluded if any(x != w and within(x, w) for w in write_paths))
    targets: list[str] = []
    for path in beneath:
        if any(within(path, t) for t in targets) or not os.path.lexists(path):
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
