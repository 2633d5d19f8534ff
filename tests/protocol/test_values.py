"""``protocol.values.Value``: what attrs would generate, computed from the fields."""

from __future__ import annotations

import attrs
import pytest

from protocol.values import Value


@attrs.frozen(repr=False, eq=False)
class Point(Value):
    x: int
    y: int = 0


@attrs.frozen(repr=False, eq=False)
class Other(Value):
    x: int
    y: int = 0


@attrs.frozen
class Generated:
    x: int
    y: int = 0


class TestValue:
    """A Value class behaves as an ``@attrs.frozen`` class does."""

    def test_equal_when_the_class_and_every_field_are_equal(self) -> None:
        assert Point(1, 2) == Point(1, 2)
        assert Point(1, 2) != Point(1, 3)
        assert (Point(1, 2) != Point(1, 2)) is False

    def test_never_equal_to_another_class_with_the_same_fields(self) -> None:
        assert Point(1, 2) != Other(1, 2)
        assert Point(1, 2) != (1, 2)

    def test_equal_values_hash_alike_and_work_as_keys(self) -> None:
        assert hash(Point(1, 2)) == hash(Point(1, 2))
        assert {Point(1, 2): "a"}[Point(1, 2)] == "a"
        assert len({Point(1, 2), Point(1, 2), Other(1, 2)}) == 2

    def test_repr_is_the_one_attrs_writes(self) -> None:
        assert repr(Generated(1, [2])) == repr(Point(1, [2])).replace("Point", "Generated")  # type: ignore[arg-type]

    def test_stays_frozen_and_slotted(self) -> None:
        point = Point(1)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            point.x = 2  # type: ignore[misc]
        assert not hasattr(point, "__dict__")

    def test_matches_by_position(self) -> None:
        match Point(1, 2):
            case Point(x, y):
                assert (x, y) == (1, 2)
            case _:
                pytest.fail("no match")
