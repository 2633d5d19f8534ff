"""Fixtures of the confinement tests: fresh directories, the modes this host allows."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from podd.sandbox import WRAPPER, EnforcementMode, enforcement_mode, namespace_problem
from tests.sandbox.support import NOBODY, SYSTEM_PYTHON, make_dir, read_text, skip_unless


@pytest.fixture
def landlock() -> None:
    if enforcement_mode() == "advisory":
        pytest.skip("Landlock is not available here: confinement is advisory")


@pytest.fixture(params=["exact", "approximate"])
def mode(request: pytest.FixtureRequest) -> EnforcementMode:
    chosen: EnforcementMode = request.param
    skip_unless(chosen)
    return chosen


@pytest.fixture
def work() -> Iterator[str]:
    """A write-scope directory holding file f, directories held/ (with f and deep/) and free/."""
    top = make_dir()
    os.makedirs(os.path.join(top, "held", "deep"))
    os.makedirs(os.path.join(top, "free"))
    for path in ("f", "held/f", "free/f"):
        with open(os.path.join(top, path), "w") as file:
            file.write("old\n")
    yield top
    shutil.rmtree(top)


@pytest.fixture
def outside() -> Iterator[str]:
    top = make_dir()
    yield top
    shutil.rmtree(top)


@pytest.fixture
def temp() -> Iterator[str]:
    top = make_dir()
    yield top
    shutil.rmtree(top)


@pytest.fixture
def nobody_tree() -> Iterator[str]:
    """A fresh directory owned by nobody: W (with sub/ and f), out/ and tmp/, and a copy of
    the wrapper that nobody can read wherever the checkout lives."""
    if os.geteuid() != 0:
        pytest.skip("already not root: every other test here runs in a user namespace")
    problem = namespace_problem(NOBODY, read_text)
    if problem is not None:
        pytest.skip(f"no user namespaces for nobody here: {problem}")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"no {SYSTEM_PYTHON} for nobody to run the wrapper with")
    top = make_dir()
    os.chmod(top, 0o755)
    for path in ("W/sub/deep", "W/tmp", "out", "tmp"):
        os.makedirs(os.path.join(top, path))
    with open(os.path.join(top, "W", "f"), "w") as file:
        file.write("old\n")
    wrapper = os.path.dirname(WRAPPER)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(wrapper, os.path.join(top, os.path.basename(wrapper)), ignore=ignore)
    for directory, dirs, files in os.walk(top):
        for name in [directory] + [os.path.join(directory, n) for n in dirs + files]:
            os.chown(name, NOBODY, NOBODY)
    yield top
    shutil.rmtree(top)
