"""``Confinement``: how to start one agent turn, and the descriptors the pod holds for it.

``prepare_confinement`` builds it; the spawner (``podd.runtime.turn_process``) starts the
turn from it and asks it afterwards whether the exec wrapper gave up.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Sequence
from types import TracebackType

from podd.sandbox.modes import EnforcementMode

__all__ = ["Confinement", "close_all"]


def close_all(fds: Sequence[int]) -> None:
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
        self._passed = weakref.finalize(self, close_all, self.pass_fds)
        kept = () if status_fd is None else (status_fd,)
        self._closer = weakref.finalize(self, close_all, kept)

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
