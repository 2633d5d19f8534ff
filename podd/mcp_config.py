"""The ``--mcp-config`` document that points an MCP client at ``podd mcp``.

Apart from the server (``podd.mcp_server``), so that the pod runtime can write it for
``spawn --mcp`` without depending on a front end.
"""

from __future__ import annotations

# Type checkers take this as true; the typing module is not imported here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["SERVER_NAME", "config_for"]

SERVER_NAME = "podd"
"""The server's name, and its key in an ``mcpServers`` document."""


def config_for(root: str, as_pod: str | None, python: str) -> dict[str, Any]:
    """The ``--mcp-config`` document that gives an MCP client ``podd mcp --as AS_POD``
    (None: acting for root pods) under ``root``, run by the interpreter ``python``."""
    args = ["-m", "podd", "--root", root, "mcp"] + (["--as", as_pod] if as_pod else [])
    return {"mcpServers": {SERVER_NAME: {"command": python, "args": args}}}
