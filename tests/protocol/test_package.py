"""The protocol package loads each name on first use, from the module it lives in."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import protocol

LOADED = "import json, sys; {imports}; print(json.dumps(sorted(sys.modules)))"


def modules_after(imports: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``imports``."""
    out = subprocess.run(
        [sys.executable, "-c", LOADED.format(imports=imports)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(out.stdout))


class TestLazyExports:
    """Importing the errors or the framing costs those modules only; every name resolves."""

    @pytest.mark.parametrize(
        "imports",
        [
            "import protocol.errors",
            "import protocol.framing",
            "from protocol import FrameBuffer, ProtocolError, error_from_wire",
        ],
    )
    def test_no_codec_no_message_types(self, imports: str) -> None:
        loaded = modules_after(imports)
        heavy = {"protocol.codec", "protocol.messages", "attr", "attrs", "cattrs", "orjson"}
        assert set() == heavy & loaded

    def test_the_codec_comes_with_its_names(self) -> None:
        assert "protocol.codec" in modules_after("from protocol import converter")

    @pytest.mark.parametrize("name", protocol.__all__)
    def test_every_name_is_its_modules(self, name: str) -> None:
        home = importlib.import_module(protocol._MODULE_OF[name])
        assert getattr(home, name) is getattr(protocol, name)

    def test_the_table_covers_all_and_nothing_else(self) -> None:
        assert sorted(protocol.__all__) == sorted(protocol._MODULE_OF)
        assert set(protocol.__all__) <= set(dir(protocol))

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            protocol.Nope  # noqa: B018
