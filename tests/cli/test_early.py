"""What the CLI reads of its arguments before its parser: whether a command is a cold
root spawn, whose pod is forked at once, and under which root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from podd.cli.early import cold_root_spawn, command_word, quick_read
from podd.cli.parser import build_parser
from podd.spawn.forkserver import ROOT_SOCKET


@pytest.fixture
def plain_env(monkeypatch: pytest.MonkeyPatch, root: str) -> Iterator[str]:
    for var in ("POD_NAME", "PODD_NO_FORKSERVER", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PODD_ROOT", root)
    yield root


class TestColdRootSpawn:
    @pytest.mark.parametrize(
        "argv",
        [
            ["spawn", "a"],
            ["spawn", "a", "--cwd", "/", "--task", "go", "--json"],
            ["spawn", "a", "--agent", "claude", "--scope", "/srv:write"],
        ],
    )
    def test_a_root_spawn_under_a_root_without_a_server(
        self, plain_env: str, argv: list[str]
    ) -> None:
        assert plain_env == cold_root_spawn(argv)

    @pytest.mark.parametrize(
        "argv",
        [
            ["spawn", "a", "--parent", "p"],
            ["spawn", "a", "--parent=p"],
            ["spawn", "--help"],
            ["spawn", "a", "-h"],
            ["ls"],
            ["status", "spawn"],
            ["restart", "a"],
            [],
        ],
    )
    def test_no_pod_for_anything_else(self, plain_env: str, argv: list[str]) -> None:
        assert None is cold_root_spawn(argv)

    def test_not_inside_a_pod(self, plain_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
        # There, a spawn without --parent makes a child of the pod.
        monkeypatch.setenv("POD_NAME", "lead")
        assert None is cold_root_spawn(["spawn", "a"])

    def test_not_where_a_root_fork_server_may_answer(self, plain_env: str) -> None:
        open(os.path.join(plain_env, ROOT_SOCKET), "w").close()
        assert None is cold_root_spawn(["spawn", "a"])

    def test_not_without_fork_servers(
        self, plain_env: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PODD_NO_FORKSERVER", "1")
        assert None is cold_root_spawn(["spawn", "a"])

    @pytest.mark.parametrize(
        "argv",
        [
            ["--root", "{other}", "spawn", "a"],
            ["spawn", "a", "--root", "{other}"],
            ["--root=/elsewhere", "spawn", "a", "--root={other}"],
        ],
    )
    def test_the_root_given_last_wins_over_the_environment(
        self, plain_env: str, workdir: str, argv: list[str]
    ) -> None:
        assert workdir == cold_root_spawn([word.format(other=workdir) for word in argv])


class TestQuickRead:
    """The quick reads parsed without argparse give exactly what argparse gives."""

    @pytest.mark.parametrize(
        "argv",
        [
            ["ls"],
            ["ls", "--json"],
            ["ls", "--tree"],
            ["ls", "--tree", "--json", "--json"],
            ["--root", "/r", "ls"],
            ["--root=/r", "ls", "--json"],
            ["ls", "--root", "/r"],
            ["--root", "/a", "ls", "--root=/b"],
            ["--root", "ls", "ls"],
            ["--root=", "ls"],
            ["status", "lead"],
            ["status", "lead", "--json"],
            ["status", "--json", "lead"],
            ["--root", "/r", "status", "lead", "--root", "/s", "--json"],
            ["status", "NOT-A-NAME"],
        ],
    )
    def test_the_same_namespace_as_argparse(self, argv: list[str]) -> None:
        quick = quick_read(argv)
        assert quick is not None
        assert vars(build_parser(command_word(argv)).parse_args(argv)) == vars(quick)

    @pytest.mark.parametrize(
        "argv",
        [
            ["ls", "--help"],
            ["ls", "-h"],
            ["ls", "--js"],
            ["ls", "--no-such-flag"],
            ["ls", "extra"],
            ["ls", "--root"],
            ["ls", "--root", "--json"],
            ["status"],
            ["status", "a", "b"],
            ["status", "--", "-a"],
            ["status", "a", "--tree"],
            ["--json", "ls"],
            ["send", "a", "hi"],
            ["notifications"],
            [],
        ],
    )
    def test_anything_else_is_left_to_argparse(self, argv: list[str]) -> None:
        assert None is quick_read(argv)

    @pytest.mark.parametrize("argv", [["ls"], ["ls", "--json"], ["status", "nope", "--json"]])
    def test_a_quick_read_does_not_import_argparse(self, root: str, argv: list[str]) -> None:
        probe = (
            "import sys; from podd.cli import main; status = main(sys.argv[1:]); "
            "print(status, 'argparse' in sys.modules, file=sys.stderr)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", probe, "--root", root, *argv],
            capture_output=True,
            timeout=30,
            check=False,
        )
        expected = "3" if argv[0] == "status" else "0"
        assert f"{expected} False" == proc.stderr.decode().strip().splitlines()[-1]
