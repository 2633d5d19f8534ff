"""``Value``: the base of the frozen attrs classes that a pod defines by the dozen.

attrs writes the source of ``__init__``, ``__repr__``, ``__eq__`` and ``__hash__`` for
each class and compiles it: about 0.3 ms a class. A pod process defines some ninety
value classes as it starts (the wire messages here, ``podd.core``'s inputs and
effects), which came to a fifth of its start-up. A class declared
``@attrs.frozen(repr=False, eq=False)`` over ``Value`` has only its ``__init__``
compiled, and takes equality, hashing and repr from here, computed from its attrs
fields: the same results, a little slower a call, which none of these classes is
called for often.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Value"]


def _fields(obj: object) -> tuple[Any, ...]:
    attributes: tuple[Any, ...] = obj.__class__.__attrs_attrs__  # type: ignore[attr-defined]
    return tuple(getattr(obj, a.name) for a in attributes)


class Value:
    """Equal to another instance of the same class with equal fields; hashed and
    shown from its fields, in order."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _fields(self) == _fields(other)

    def __hash__(self) -> int:
        return hash((self.__class__, *_fields(self)))

    def __repr__(self) -> str:
        attributes = self.__class__.__attrs_attrs__  # type: ignore[attr-defined]
        shown = ", ".join(f"{a.name}={getattr(self, a.name)!r}" for a in attributes)
        return f"{self.__class__.__qualname__}({shown})"
