"""Forking a process that outlives this one: a session of its own, init its parent.

This module is light: the CLI calls it before it imports anything of its own
(``podd.spawn.prestart``).
"""

from __future__ import annotations

import os

# Type checkers take this as true; the typing module is not imported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["fork_detached"]


def fork_detached(become: Callable[[], object], close: Sequence[int] = ()) -> int:
    """Fork a process in a new session, through a second fork so that init, not this
    (short-lived) process, is its parent; the fork between them is reaped here. The
    process closes the descriptors ``close`` and calls ``become``, and ends with
    ``os._exit`` however that returns. Call it in a process with a single thread.
    Returns the process's pid; raises ``OSError`` if it could not be forked."""
    pid_read, pid_write = os.pipe2(os.O_CLOEXEC)
    first = os.fork()
    if first == 0:
        code = 0
        try:
            os.close(pid_read)
            os.setsid()
            second = os.fork()
            if second == 0:
                code = 1
                for fd in (pid_write, *close):
                    os.close(fd)
                become()
                code = 0
            else:
                os.write(pid_write, str(second).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(pid_write)
    os.waitpid(first, 0)
    with os.fdopen(pid_read, "rb") as f:
        answer = f.read()
    if not answer.isdigit():
        raise OSError("the process could not be forked")
    return int(answer)
