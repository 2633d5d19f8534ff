"""The CLI's --scope parser gives the rule podd.core.scope.parse_scope_arg gives, as a dict."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from podd.core import scope_arg
from podd.core.scope import parse_scope_arg
from protocol import converter

TEXTS = [
    "/x/work",
    "/x/work:read",
    "/x/work:write",
    "/x/work/:write",
    "/x//work/./sub/..",
    "/x/../y:write",
    "/",
    "//",
    "/data/v1:2",
    "/data/a:b:read",
    "/data/a:write:read",
    "work",
    "work:write",
    ".",
    "..:write",
    "../../../..",
]
BAD = ["", ":read", ":write", "/x:rw", "/x:WRITE", "/x:", "rel:wrte"]


@pytest.fixture
def tree() -> Iterator[str]:
    path = os.path.realpath(tempfile.mkdtemp(prefix="podd-s", dir="/tmp"))
    os.makedirs(os.path.join(path, "a", "b"))
    os.symlink(os.path.join(path, "a", "b"), os.path.join(path, "a", "link"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class TestSameRule:
    """Every text parses to the same rule both ways; every bad text fails both ways alike."""

    @pytest.mark.parametrize("text", TEXTS)
    def test_same_rule(self, text: str) -> None:
        expected = converter.unstructure(parse_scope_arg(text, "/base/dir"))
        assert expected == scope_arg.parse(text, "/base/dir")

    @pytest.mark.parametrize("text", ["a/link", "a/link/..", "a/link:write"])
    def test_same_rule_through_a_symlink(self, tree: str, text: str) -> None:
        expected = converter.unstructure(parse_scope_arg(text, tree))
        assert expected == scope_arg.parse(text, tree)

    @pytest.mark.parametrize("text", BAD)
    def test_same_refusal(self, text: str) -> None:
        with pytest.raises(ValueError) as typed:
            parse_scope_arg(text, "/base")
        with pytest.raises(ValueError) as plain:
            scope_arg.parse(text, "/base")
        assert str(typed.value) == str(plain.value)
