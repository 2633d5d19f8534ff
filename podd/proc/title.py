"""Process titles: every process of podd's own says what it is in ``ps`` and ``top``.

``podd: pod NAME [ROOT]``, ``podd: fork server of NAME [ROOT]``, ``podd: root fork
server [ROOT]``, ``podd: spawn NAME`` (the CLI). The title replaces the command line,
so nothing a process was started with, nor anything the user typed (an agent command,
a task), stays readable in ``/proc/PID/cmdline``, which any local user can read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["pod_title", "set_title"]


def pod_title(name: str, root: str) -> str:
    return f"podd: pod {name} [{root}]"


def _c_setproctitle() -> Callable[[str], None]:
    """setproctitle's C function, loaded without the package around it.

    ``import setproctitle._setproctitle`` would run the package's ``__init__`` first,
    which imports logging: some 10 ms that a short-lived CLI call does not want to pay.
    The extension module is found and loaded here by itself instead.
    """
    name = "setproctitle._setproctitle"
    module = sys.modules.get(name)
    if module is None:
        import importlib.machinery

        package = importlib.machinery.PathFinder.find_spec("setproctitle")
        locations = package.submodule_search_locations if package is not None else None
        spec = importlib.machinery.PathFinder.find_spec(name, list(locations or []))
        if spec is None or spec.loader is None:
            raise ImportError(f"no {name} C module")
        module = spec.loader.create_module(spec)
        if module is None:
            raise ImportError(f"{name} is not an extension module")
        spec.loader.exec_module(module)
        sys.modules[name] = module
    function: Callable[[str], None] = module.setproctitle
    return function


def set_title(title: str) -> None:
    """Set this process's title (argv and comm); a failure leaves the old one."""
    try:
        _c_setproctitle()(title)
    except Exception:  # no C module, or it refused: the title is cosmetic
        return
