"""``podd mcp``: podd's tools, served to an MCP client over stdin and stdout.

Every tool runs the ``podd`` CLI itself as a subprocess (``python -m podd --root ROOT
COMMAND ... --json``), so a tool obeys exactly the rules of the command it stands for,
and ``import mcp`` (about 0.7 s) stays out of every other command. Acting as pod NAME
means what running the CLI inside NAME's turn means: ``spawn_pod`` starts children of
NAME, ``read_notifications`` reads NAME's, and the commands run with ``POD_NAME=NAME``.

A command that fails becomes a tool error (``isError: true``) whose text starts with
the podd error code: the code the CLI printed in brackets (``already_exists``,
``scope_not_subset``, ...), else ``invalid_params`` for exit status 2, ``not_found``
for 3, ``failed`` for 1, ``timeout`` when the command outlived its bound.

This module imports nothing heavy; ``config_for`` (from ``podd.mcp_config``, which the
pod runtime uses to write the ``--mcp-config`` of a claude pod) is re-exported here.
The server is built by ``podd.mcp_server.tools``, imported by ``serve`` only.
"""

from __future__ import annotations

from podd.mcp_config import SERVER_NAME, config_for

__all__ = ["SERVER_NAME", "config_for", "serve"]


def serve(root: str, as_pod: str | None) -> int:
    """Serve the tools on stdin and stdout until stdin ends; return the exit status.

    ``as_pod`` is the pod the tools act as (None: root pods). Nothing but MCP frames is
    written on stdout; logs go to stderr.
    """
    import sys

    from podd.core.names import check_name

    if as_pod is not None:
        check_name(as_pod)

    import trio

    from podd.mcp_server.runner import CliRunner
    from podd.mcp_server.tools import build_server

    server = build_server(CliRunner(root, as_pod, python=sys.executable))
    trio.run(server.run_stdio_async)
    return 0
