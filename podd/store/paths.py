"""The runtime root, private directories, and socket paths of any length.

A pod called NAME lives in ``<root>/NAME/`` (mode 0700) with its socket at
``<root>/NAME/sock`` (mode 0600). ``sun_path`` holds only 107 bytes, so every bind and
connect goes through ``/proc/self/fd/N/sock``, where N is an ``O_PATH`` descriptor of
the pod directory: the path the kernel sees is always short.
"""

from __future__ import annotations

import fcntl
import os
import stat

from podd.errors import RootError

__all__ = [
    "clear_directory",
    "ensure_private_dir",
    "is_locked",
    "lock_directory",
    "pod_dir",
    "resolve_root",
    "short_socket_path",
    "socket_path",
    "write_private",
]


def resolve_root(explicit: str | None = None) -> str:
    """The runtime root: ``explicit``, else ``$PODD_ROOT``, else ``$XDG_RUNTIME_DIR/podd``,
    else ``/tmp/podd-<uid>``; made absolute, not created."""
    root = explicit or os.environ.get("PODD_ROOT")
    if not root:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        root = os.path.join(runtime, "podd") if runtime else f"/tmp/podd-{os.getuid()}"
    return os.path.abspath(root)


def pod_dir(root: str, name: str) -> str:
    return os.path.join(root, name)


def socket_path(root: str, name: str) -> str:
    return os.path.join(root, name, "sock")


def ensure_private_dir(path: str, *, create: bool = True) -> None:
    """Make sure ``path`` is a directory owned by this user with mode 0700.

    A missing directory is created (parents too) when ``create`` is true. A directory
    that belongs to someone else, or that others can read or enter, is refused with a
    ``RootError``: podd never loosens or takes over a directory it did not make safe.
    """
    if create:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise RootError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise RootError(f"cannot use {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise RootError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise RootError(f"{path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
    if stat.S_IMODE(st.st_mode) & 0o077:
        mode = oct(stat.S_IMODE(st.st_mode))
        raise RootError(f"{path} has mode {mode}; podd requires 0700 (others must not read it)")


def make_private_dir(path: str) -> None:
    """Create ``path`` (which must not exist) with mode 0700, whatever the umask."""
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path``, created 0600 whatever the umask (not atomically: for
    notes such as an exit reason, read by whoever comes after the writer)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def short_socket_path(directory: str, leaf: str = "sock") -> ShortPath:
    """A context that gives a path to ``directory/leaf`` short enough for ``sun_path``.

    The path goes through an ``O_PATH`` descriptor of ``directory``, closed on exit.
    """
    return ShortPath(directory, leaf)


class ShortPath:
    """``with ShortPath(directory, leaf) as path``: see ``short_socket_path``.

    A class rather than a ``contextlib`` generator: every CLI command uses it, and
    importing contextlib would cost each of them a little more.
    """

    def __init__(self, directory: str, leaf: str) -> None:
        self.directory = directory
        self.leaf = leaf
        self._fd = -1

    def __enter__(self) -> str:
        self._fd = os.open(self.directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self._fd}/{self.leaf}"

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)
        self._fd = -1


_held_locks: list[int] = []


def lock_directory(path: str) -> bool:
    """Take an exclusive ``flock`` on directory ``path`` for the rest of this process's
    life; False if another process holds it. The kernel releases it when the process
    ends, however it ends."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held_locks.append(fd)
    return True


def is_locked(path: str) -> bool:
    """Whether a live process holds ``path``'s directory lock (a pod owns it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def clear_directory(path: str) -> None:
    """Remove everything inside ``path``, keeping the directory itself."""
    import contextlib
    import shutil  # not at the top: every CLI command imports this module

    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
