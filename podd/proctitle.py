"""Process titles: every process of podd's own says what it is in ``ps`` and ``top``.

``podd: pod NAME [ROOT]``, ``podd: fork server of NAME [ROOT]``, ``podd: root fork
server [ROOT]``, ``podd: spawn NAME`` (the CLI). The title replaces the command line,
so nothing a process was started with, nor anything the user typed (an agent command,
a task), stays readable in ``/proc/PID/cmdline``, which any local user can read.
"""

from __future__ import annotations

import contextlib

__all__ = ["pod_title", "set_title"]


def pod_title(name: str, root: str) -> str:
    return f"podd: pod {name} [{root}]"


def set_title(title: str) -> None:
    """Set this process's title (argv and comm); a failure leaves the old one."""
    with contextlib.suppress(Exception):
        # The C module itself: the package's Python wrapper imports logging, which a
        # short-lived CLI does not want to pay for.
        from setproctitle._setproctitle import setproctitle

        setproctitle(title)
