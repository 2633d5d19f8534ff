"""What every command shares: exit statuses, failures, and ``Context`` (the root, and
calls to pods under it, with their failures turned into exit statuses)."""

from __future__ import annotations

import json
import os
import sys

from podd.core.names import check_name
from podd.errors import PoddError, PodFailed, PodUnreachable, UsageError
from podd.store.paths import resolve_root

# Type checkers take this as true; the typing module is not imported (it costs every
# command a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from types import SimpleNamespace
    from typing import Any, NoReturn

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_RUNNING",
    "EXIT_OK",
    "EXIT_USAGE",
    "Context",
    "Exit",
    "fail_for",
    "print_json",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

USAGE_CODES = frozenset({"invalid_name", "invalid_params", "unknown_method", "invalid_json"})


class Exit(Exception):
    """Leave with ``status``, after printing ``message`` on stderr."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def fail_for(exc: PoddError, what: str) -> NoReturn:
    if isinstance(exc, UsageError):
        raise Exit(EXIT_USAGE, str(exc))
    if isinstance(exc, PodUnreachable):
        raise Exit(EXIT_NOT_RUNNING, f"{what} is not running ({exc})")
    if isinstance(exc, PodFailed):
        status = EXIT_USAGE if exc.code in USAGE_CODES else EXIT_FAILED
        if exc.code == "not_found":
            status = EXIT_NOT_RUNNING
        raise Exit(status, f"{exc.error.message} [{exc.code}]")
    raise Exit(EXIT_FAILED, str(exc))


class Context:
    """What every command needs: the root and ways to reach pods under it."""

    def __init__(self, args: argparse.Namespace | SimpleNamespace) -> None:
        self.args = args
        self.root = resolve_root(getattr(args, "root", None))
        self.json = bool(getattr(args, "json", False))

    def pod_dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def socket(self, name: str) -> str:
        return os.path.join(self.root, name, "sock")

    def process_alive(self, name: str) -> bool:
        """Whether the process named in pod ``name``'s ``pod.json`` lives."""
        from podd.proc.procfs import is_alive
        from podd.store.records import read_pod_record

        try:
            record = read_pod_record(os.path.join(self.pod_dir(name), "pod.json"))
        except (OSError, ValueError):
            return False
        return is_alive(record.pid, record.start_time)

    def call(self, name: str, method: str, params: Any = None, timeout: float | None = 10.0) -> Any:
        from podd.client.sync import call

        try:
            check_name(name)
            return call(self.socket(name), method, params, timeout=timeout)
        except PodUnreachable as exc:
            if not os.path.isdir(self.pod_dir(name)):
                raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {self.root}") from exc
            if self.process_alive(name):
                raise Exit(
                    EXIT_FAILED, f"pod {name!r} is unresponsive: its process lives but {exc}"
                ) from exc
            fail_for(exc, f"pod {name!r}")
        except PoddError as exc:
            fail_for(exc, f"pod {name!r}")
