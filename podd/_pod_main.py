"""Start-up of a pod process: ``python -m podd._pod_main --ready-fd N --spec-fd M``.

A leaf: it runs ``podd.runtime.main`` and nothing imports it back. A pod forked by a
fork server or by the command line skips it and calls ``podd.runtime.main.main``
directly.
"""

import sys

from podd.runtime.main import main

if __name__ == "__main__":
    sys.exit(main())
