"""podd: a supervisor for trees of agent pods on one Linux host.

The runtime: the pod process and its dispatch loop, its socket server, the clients,
the spawner, registry, scope and the ``podd`` command line. The wire protocol lives in
the sans-I/O package ``protocol``.
"""

from podd.errors import PoddError, PodFailed, PodUnreachable, RootError, UsageError

__all__ = ["PodFailed", "PodUnreachable", "PoddError", "RootError", "UsageError"]
__version__ = "0.1.0"
