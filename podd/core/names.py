"""Pod names: ``^[a-z0-9][a-z0-9_.-]{0,62}$``, checked wherever a name is accepted."""

from __future__ import annotations

import re

from podd.errors import UsageError

__all__ = ["NAME_RULE", "check_name", "is_valid_name"]

NAME_RULE = "^[a-z0-9][a-z0-9_.-]{0,62}$"
_NAME_RE = re.compile(NAME_RULE)


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid pod name, else raise ``UsageError`` naming the rule."""
    if not is_valid_name(name):
        raise UsageError(
            f"invalid pod name {name!r}: names must match {NAME_RULE} "
            "(lower-case letters, digits, '_', '.', '-'; at most 63 characters)"
        )
    return name
