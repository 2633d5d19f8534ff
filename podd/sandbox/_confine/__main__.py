"""The wrapper's start-up: ``python -I -S .../_confine/__main__.py FD`` runs ``wrapper.main``.

Run by path, this file belongs to no package, and ``-I`` puts neither its directory nor
anything of podd on ``sys.path``. So it registers its directory itself as the package
``podd.sandbox._confine``, a bare module with that ``__path__``: the modules there then
import one another (relatively) and are cached as byte code like any module, while
neither ``podd`` nor ``podd.sandbox`` is imported, nor the package's ``__init__`` (a
docstring alone). Running the directory (``python -I -S .../_confine FD``) works the
same, at the cost of ``runpy``; under ``python -m`` the package is real and needs no
stand-in.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    if not __package__:
        _package = type(sys)("podd.sandbox._confine")
        _package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
        sys.modules[_package.__name__] = _package
    from podd.sandbox._confine.wrapper import main

    sys.exit(main(sys.argv))
