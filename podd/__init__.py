"""podd: a supervisor for trees of agent pods on one Linux host.

The runtime: the pod process and its dispatch loop, its socket server, the clients,
the spawner, registry, scope and the ``podd`` command line. The wire protocol lives in
the sans-I/O package ``protocol``.

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
