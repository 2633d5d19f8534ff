"""Tests for ``protocol.errors``: one class per wire code, and back."""

# House style writes asserts as `expected == actual`.

from __future__ import annotations

import pytest

from protocol import (
    ERROR_CLASSES,
    AlreadyRunning,
    Forbidden,
    FrameTooLarge,
    FramingError,
    InternalError,
    InvalidJson,
    InvalidName,
    InvalidParams,
    NoAgent,
    PodExists,
    PodNotFound,
    ProtocolError,
    ScopeNotSubset,
    ShuttingDown,
    SpawnFailed,
    UnknownMethod,
    WireError,
    WriteConflict,
    error_from_wire,
)
from protocol.errors import QueueFull

EXPECTED_TABLE: dict[str, type[ProtocolError]] = {
    "frame_too_large": FrameTooLarge,
    "invalid_json": InvalidJson,
    "unknown_method": UnknownMethod,
    "invalid_params": InvalidParams,
    "forbidden": Forbidden,
    "invalid_name": InvalidName,
    "not_found": PodNotFound,
    "already_exists": PodExists,
    "already_running": AlreadyRunning,
    "no_agent": NoAgent,
    "scope_not_subset": ScopeNotSubset,
    "write_conflict": WriteConflict,
    "spawn_failed": SpawnFailed,
    "shutting_down": ShuttingDown,
    "internal": InternalError,
    "queue_full": QueueFull,
}

ABSTRACT_CLASSES = {ProtocolError, FramingError, WireError}


def all_subclasses(cls: type[ProtocolError]) -> set[type[ProtocolError]]:
    found: set[type[ProtocolError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


class TestErrorTable:
    """Every wire code names exactly one class, and every concrete class has a code."""

    def test_table_is_exactly_the_documented_codes(self) -> None:
        assert EXPECTED_TABLE == ERROR_CLASSES

    @pytest.mark.parametrize("code", sorted(EXPECTED_TABLE))
    def test_class_code_is_its_table_key(self, code: str) -> None:
        assert code == ERROR_CLASSES[code].code

    def test_no_class_appears_twice(self) -> None:
        assert len(ERROR_CLASSES) == len(set(ERROR_CLASSES.values()))

    def test_every_concrete_error_class_is_in_the_table(self) -> None:
        concrete = {
            cls
            for cls in all_subclasses(ProtocolError) - ABSTRACT_CLASSES
            if cls.__module__ == "protocol.errors"
        }

        assert concrete == set(ERROR_CLASSES.values())

    @pytest.mark.parametrize(
        "code",
        ["invalid_json", "unknown_method", "invalid_params", "frame_too_large", "forbidden"],
    )
    def test_codes_of_the_wire_contract_are_present(self, code: str) -> None:
        assert code in ERROR_CLASSES

    def test_abstract_bases_have_no_table_entry(self) -> None:
        codes = {cls.code for cls in ABSTRACT_CLASSES}

        assert set() == codes & set(ERROR_CLASSES)


class TestErrorFromWire:
    """An error frame's code and message become the matching exception, unraised."""

    @pytest.mark.parametrize(("code", "cls"), sorted(EXPECTED_TABLE.items()))
    def test_known_code_gives_exactly_its_class(self, code: str, cls: type[ProtocolError]) -> None:
        exc = error_from_wire(code, "what happened")

        assert cls is type(exc)
        assert code == exc.code

    def test_message_is_kept(self) -> None:
        exc = error_from_wire("write_conflict", "/srv held by child-a")

        assert "/srv held by child-a" == exc.message
        assert "/srv held by child-a" == str(exc)

    def test_request_id_is_unset(self) -> None:
        assert error_from_wire("internal", "boom").request_id is None

    def test_unknown_code_gives_a_wire_error_that_keeps_the_code(self) -> None:
        exc = error_from_wire("rate_limited", "slow down")

        assert WireError is type(exc)
        assert "rate_limited" == exc.code
        assert "slow down" == exc.message

    def test_unknown_code_leaves_the_wire_error_class_alone(self) -> None:
        error_from_wire("rate_limited", "slow down")

        assert "error" == WireError.code


class TestHierarchy:
    """Errors form one tree under ProtocolError, split by where they arise."""

    @pytest.mark.parametrize("cls", [FrameTooLarge, InvalidJson])
    def test_bytes_that_are_not_a_frame_are_framing_errors(self, cls: type[ProtocolError]) -> None:
        assert issubclass(cls, FramingError)

    @pytest.mark.parametrize("cls", [UnknownMethod, InvalidParams])
    def test_request_shape_errors_are_neither_framing_nor_wire_errors(
        self, cls: type[ProtocolError]
    ) -> None:
        assert (False, False) == (issubclass(cls, FramingError), issubclass(cls, WireError))

    @pytest.mark.parametrize(
        "cls",
        [
            Forbidden,
            InvalidName,
            PodNotFound,
            PodExists,
            AlreadyRunning,
            NoAgent,
            ScopeNotSubset,
            WriteConflict,
            SpawnFailed,
            ShuttingDown,
            InternalError,
        ],
    )
    def test_answers_to_well_formed_requests_are_wire_errors(
        self, cls: type[ProtocolError]
    ) -> None:
        assert issubclass(cls, WireError)

    @pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
    def test_every_error_is_a_protocol_error(self, code: str) -> None:
        assert issubclass(ERROR_CLASSES[code], ProtocolError)


class TestProtocolError:
    """A ProtocolError carries its message and, when known, the id of the request."""

    def test_message_and_request_id_are_kept(self) -> None:
        exc = InvalidParams("bad params", request_id="req-7")

        assert ("bad params", "req-7", "bad params") == (exc.message, exc.request_id, str(exc))

    def test_request_id_defaults_to_none(self) -> None:
        assert InvalidJson("garbage").request_id is None

    def test_root_code_is_generic(self) -> None:
        assert "protocol_error" == ProtocolError("x").code
