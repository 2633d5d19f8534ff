"""Human output piped to a program: plain aligned columns, names whole, no colour."""

from __future__ import annotations

import time
from typing import Any

import pytest

from podd.cli import render
from podd.cli.inventory import PodView


class TestColumns:
    """Each column is as wide as its widest cell; the header is underlined."""

    def test_aligned_with_a_header(self) -> None:
        text = render.columns(("NAME", "PID"), [["a", "1"], ["long-name", "12345"]])
        rule = "─" * len("long-name   12345")
        assert f"NAME        PID\n{rule}\na           1\nlong-name   12345\n" == text

    def test_without_a_header(self) -> None:
        assert "k     v\nkey   value\n" == render.columns(None, [["k", "v"], ["key", "value"]], 3)

    def test_no_cell_is_cut(self) -> None:
        name = "n" * 62 + "z"
        text = render.columns(("NAME",), [[name]])
        assert name == text.splitlines()[2]
        assert "…" not in text

    def test_nothing(self) -> None:
        assert "" == render.columns(None, [])


def view(name: str, parent: str | None, children: list[str]) -> PodView:
    return PodView(name, "idle", 7, parent, f"/r/{name}/sock", 1, time.time() - 75, children)


class TestPiped:
    """pod_table and status print plain text when stdout is not a terminal."""

    def test_pod_table(self, capsys: pytest.CaptureFixture[str]) -> None:
        render.pod_table([view("root", None, ["a"]), view("a", "root", [])])
        lines = capsys.readouterr().out.splitlines()
        assert ["NAME", "STATE", "PID", "PARENT", "AGE", "CHILDREN", "COST"] == lines[0].split()
        assert [
            ["root", "idle", "7", "-", "1m15s", "1", "-"],
            ["a", "idle", "7", "root", "1m15s", "0", "-"],
        ] == [line.split() for line in lines[2:]]

    def test_no_pods(self, capsys: pytest.CaptureFixture[str]) -> None:
        render.pod_table([])
        assert "no pods\n" == capsys.readouterr().out

    def test_status(self, capsys: pytest.CaptureFixture[str]) -> None:
        rule = {"target": "/srv", "permission": "write", "recursive": True}
        doc: dict[str, Any] = {
            "name": "root",
            "state": "idle",
            "pid": 7,
            "parent": None,
            "incarnation": 1,
            "socket": "/r/root/sock",
            "agent": None,
            "turns": 0,
            "last_turn": None,
            "scope": [rule],
            "enforcement": "exact",
            "notifications_pending": 2,
            "lag": {"last": 0.0, "max": 0.001, "mean": 0.0005},
            "children": [
                {"pod_name": "a", "pid": 8, "parent_pod": "root", "scope_delegated": [rule]}
            ],
        }
        render.status(doc)
        lines = capsys.readouterr().out.splitlines()
        assert "name           root" == lines[0]
        assert "driver         shell" == lines[7]
        assert "scope          write:/srv" == lines[15]
        assert "lag            last 0.0000s  max 0.0010s  mean 0.0005s" == lines[18]
        assert ["CHILD", "PID", "VIA", "SCOPE"] == lines[19].split()
        assert ["a", "8", "root", "write:/srv"] == lines[21].split()
