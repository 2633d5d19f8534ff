"""The modes this host allows and their details, and the wrapper's imports."""

from __future__ import annotations

import ast
import os

import pytest

from podd import sandbox
from podd.sandbox import (
    WRAPPER,
    enforcement_detail,
    enforcement_mode,
    namespace_problem,
    prepare_confinement,
)
from podd.sandbox._confine import __main__ as wrapper_main
from tests.sandbox.support import assert_denied, exists, run, skip_unless


class TestModes:
    """``status`` reports the mode this host allows, and why it is not exact."""

    def test_mode_and_detail(self) -> None:
        assert enforcement_mode() in ("exact", "approximate", "advisory")
        assert enforcement_mode() is enforcement_mode()
        assert enforcement_detail().startswith(
            {"exact": "Landlock", "approximate": "Landlock", "advisory": "no Landlock"}[
                enforcement_mode()
            ]
        )

    async def test_no_namespaces_variable_forces_approximate(
        self, monkeypatch: pytest.MonkeyPatch, work: str
    ) -> None:
        skip_unless("approximate")
        monkeypatch.setenv("PODD_NO_NAMESPACES", "1")
        assert "approximate" == enforcement_mode()
        detail = enforcement_detail()
        assert "no mount namespaces (PODD_NO_NAMESPACES is set)" in detail
        assert "can be written but not created, removed or renamed" in detail
        assert_denied(await run(f"touch {work}/new.txt", [work], [f"{work}/held"]))
        assert not exists(f"{work}/new.txt")

    def test_nested_sandbox_mode_and_detail(self) -> None:
        if sandbox.mounts_only_problem() is None:
            expected = ("exact", "mounts alone (--nested-sandbox), no Landlock")
        else:
            expected = (enforcement_mode(), "--nested-sandbox is not possible here")
        detail = enforcement_detail(nested_sandbox=True)
        assert expected == (enforcement_mode(nested_sandbox=True), detail[: len(expected[1])])

    async def test_without_namespaces_a_nested_sandbox_falls_back_to_landlock(
        self, monkeypatch: pytest.MonkeyPatch, work: str, outside: str
    ) -> None:
        skip_unless("approximate")
        monkeypatch.setenv("PODD_NO_NAMESPACES", "1")
        prefix = (
            "--nested-sandbox is not possible here (PODD_NO_NAMESPACES is set), so turns are"
            " confined as without it: Landlock"
        )
        detail = enforcement_detail(nested_sandbox=True)
        assert ("approximate", prefix) == (
            enforcement_mode(nested_sandbox=True),
            detail[: len(prefix)],
        )
        with prepare_confinement("true", [work], [], [], nested_sandbox=True) as confine:
            assert (False, "approximate") == (confine.mounts_only, confine.mode)
        assert_denied(await run(f"touch {outside}/x", [work], nested_sandbox=True))
        assert [] == os.listdir(outside)

    @pytest.mark.parametrize(
        ("files", "expected"),
        [
            ({"/proc/sys/user/max_user_namespaces": "15000\n"}, None),
            ({}, "the kernel has no user namespaces"),
            (
                {"/proc/sys/user/max_user_namespaces": "0\n"},
                "user namespaces disabled: user.max_user_namespaces is 0",
            ),
            (
                {
                    "/proc/sys/user/max_user_namespaces": "15000\n",
                    "/proc/sys/kernel/unprivileged_userns_clone": "0\n",
                },
                None,
            ),
        ],
    )
    def test_a_nested_sandbox_needs_user_namespaces_as_root_too(
        self, files: dict[str, str], expected: str | None
    ) -> None:
        files = {"/proc/self/status": "CapEff:\t000001ffffffffff\n", **files}
        assert (None, expected) == (
            namespace_problem(0, files.get),
            namespace_problem(0, files.get, nested_sandbox=True),
        )

    @pytest.mark.parametrize(
        ("euid", "files", "expected"),
        [
            (0, {"/proc/self/status": "CapEff:\t000001ffffffffff\n"}, None),
            (0, {"/proc/self/status": "CapEff:\t0000000000000000\n"}, "root without CAP_SYS_ADMIN"),
            (0, {"/proc/self/status": "CapEff:\tnot-hex\n"}, "root without CAP_SYS_ADMIN"),
            (1000, {"/proc/sys/user/max_user_namespaces": "15000\n"}, None),
            (1000, {}, "the kernel has no user namespaces"),
            (
                1000,
                {"/proc/sys/user/max_user_namespaces": "0\n"},
                "user namespaces disabled: user.max_user_namespaces is 0",
            ),
            (
                1000,
                {
                    "/proc/sys/user/max_user_namespaces": "15000\n",
                    "/proc/sys/kernel/unprivileged_userns_clone": "0\n",
                },
                "user namespaces disabled: kernel.unprivileged_userns_clone is 0",
            ),
            (
                1000,
                {
                    "/proc/sys/user/max_user_namespaces": "15000\n",
                    "/proc/sys/kernel/unprivileged_userns_clone": "1\n",
                    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1\n",
                },
                "user namespaces disabled: kernel.apparmor_restrict_unprivileged_userns is 1",
            ),
        ],
    )
    def test_namespace_problem(
        self, euid: int, files: dict[str, str], expected: str | None
    ) -> None:
        assert expected == namespace_problem(euid, files.get)

    def test_the_wrapper_imports_nothing_of_podd(self) -> None:
        package = os.path.dirname(WRAPPER)
        names = sorted(name for name in os.listdir(package) if name.endswith(".py"))
        imports: set[str] = set()
        siblings: set[str] = set()
        for name in names:
            with open(os.path.join(package, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imports.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module is not None:
                    if node.level == 1:
                        siblings.add(node.module)
                    elif node.module.startswith("podd.sandbox._confine."):
                        # __main__, from the package it registers itself.
                        siblings.add(node.module.rpartition(".")[2])
                    else:
                        imports.add(node.module.split(".")[0])
        assert {
            "__future__",
            "collections",
            "contextlib",
            "ctypes",
            "errno",
            "marshal",
            "os",
            "sys",
        } == imports
        assert siblings <= {name.removesuffix(".py") for name in names}
        assert sandbox.WRAPPER == wrapper_main.__file__
