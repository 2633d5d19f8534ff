"""Importing podd imports nothing else; its error classes load on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import podd
from podd import errors


class TestPackage:
    """The package is free to import and re-exports the runtime's errors."""

    def test_import_loads_no_other_module_of_the_project(self) -> None:
        probe = "import json, sys, podd; print(json.dumps(sorted(sys.modules)))"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
        loaded = json.loads(out.stdout)
        assert ["podd"] == [m for m in loaded if m.split(".")[0] in ("podd", "protocol")]

    @pytest.mark.parametrize("name", podd.__all__)
    def test_errors_are_re_exported(self, name: str) -> None:
        assert getattr(errors, name) is getattr(podd, name)

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            podd.Nope  # noqa: B018
