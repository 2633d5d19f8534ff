"""Start-up of a fork server: ``python -m podd._forkserver_main CONTROL_FD NAME ROOT``,
or ``--root ROOT READY_FD`` for a runtime root's.

A leaf: it imports the pod runtime once, so that every pod the server forks starts
with it loaded, and nothing imports this module back.
"""

from __future__ import annotations

import sys

from podd import forkserver, process


def main(argv: list[str]) -> None:
    if argv[0] == "--root":
        forkserver.serve_root(process.main, argv[1], int(argv[2]))
    else:
        forkserver.serve(process.main, int(argv[0]), *argv[1:3])


if __name__ == "__main__":
    main(sys.argv[1:])
