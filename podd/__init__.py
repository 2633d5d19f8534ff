"""podd: a supervisor for trees of agent pods on one Linux host.

Packages by concern, each importing only those below it (a layers contract in
``pyproject.toml``): ``cli`` (the command line), ``mcp_server`` (``podd mcp``),
``runtime`` (the pod process), ``spawn`` and ``sandbox`` (starting pods, confining
turns), ``client`` (asking a pod), ``store`` (files on disk), ``proc`` (process facts),
``core`` (the pod's rules, pure) and ``drivers`` (how an agent CLI is run and read).
The wire protocol lives in the sans-I/O package ``protocol``.

Importing this package imports nothing else: every ``podd`` command imports it first,
and a command that only reads a file or asks a pod one question should cost little
more than the interpreter's start-up. The error classes are loaded on first use.
"""

# Type checkers take this as true; the typing module is not imported (see above).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from podd.errors import PoddError, PodFailed, PodUnreachable, RootError, UsageError

__all__ = ["PodFailed", "PodUnreachable", "PoddError", "RootError", "UsageError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name in __all__:
        from podd import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'podd' has no attribute {name!r}")
