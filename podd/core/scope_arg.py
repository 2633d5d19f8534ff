"""The ``--scope`` argument of ``podd spawn``: ``PATH``, ``PATH:read`` or ``PATH:write``.

``parse`` gives the rule as the wire carries it, a dict, with no wire type imported:
spawning a child is one request to its parent, and importing attrs would cost that
command more than the rest of it. ``podd.core.scope.parse_scope_arg`` gives the same rule as
a ``ScopeRule``, through this function.
"""

from __future__ import annotations

import os.path

__all__ = ["parse"]

_SUFFIXES = {":read": "read", ":write": "write"}


def parse(text: str, base_dir: str) -> dict[str, object]:
    """Parse a ``--scope`` argument into ``{"target", "permission", "recursive"}``.

    No suffix means read. A relative PATH is taken relative to ``base_dir``; the target
    is absolute with symlinks resolved and ``..`` normalised. A path may contain ``:``;
    only a trailing ``:read`` or ``:write`` is a suffix, so a path that itself ends in
    ``:word`` must be given with an explicit suffix (``/data/a:b:read``).

    Raises ``ValueError`` for an empty path or an unknown suffix such as ``:rw``.
    """
    path = text
    permission = "read"
    for suffix, perm in _SUFFIXES.items():
        if text.endswith(suffix):
            path, permission = text[: -len(suffix)], perm
            break
    else:
        _, sep, tail = text.rpartition(":")
        if sep and (not tail or tail.isalpha()):
            raise ValueError(
                f"bad permission suffix ':{tail}' in scope {text!r}: expected PATH,"
                f" PATH:read or PATH:write (a path that ends in ':{tail}' needs an"
                f" explicit suffix, e.g. {text + ':read'!r})"
            )
    if not path:
        raise ValueError(f"empty path in scope {text!r}: expected PATH[:read|:write]")
    target = os.path.realpath(os.path.join(base_dir, path))
    return {"target": target, "permission": permission, "recursive": True}
