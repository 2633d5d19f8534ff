"""The CLI's plain-JSON readers see what the pods' typed writers wrote."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import attrs
import pytest

from podd.core.registry import ChildRecord, Registry
from podd.core.spec import Ancestor, PodInfo, PodSpec
from podd.store.journal import Snapshot, write_stopped
from podd.store.pod_files import read_info, save_registry, write_info
from podd.store.records import read_pod_record, read_registry, read_stopped_record
from protocol import ScopeRule, converter


@pytest.fixture
def root() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="podd-r", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def info(root: str, name: str = "child", parent: str | None = "top") -> PodInfo:
    spec = PodSpec(
        name=name,
        root=root,
        cwd="/",
        scope=[ScopeRule("/srv", "write")],
        parent=parent,
        incarnation=3,
    )
    return PodInfo(spec=spec, pid=4242, start_time=1796000000.25)


class TestPodRecord:
    """read_pod_record gives the fields of a pod.json written by write_info."""

    def test_written_as_the_converter_would_and_read_back(self, root: str) -> None:
        # Every field away from its default, so that a field whose type gets a hook of
        # its own (which write_info's attrs.asdict would not apply) shows here.
        spec = attrs.evolve(
            info(root).spec,
            ancestors=[Ancestor("top", "/r/top/sock"), Ancestor("base", "/r/base/sock")],
            agent="claude -p",
            task="do it",
            turn_timeout=60.5,
            wake_on_notify=True,
            restart="on-failure",
            parent_socket="/r/top/sock",
            parent_pid=77,
            reclaim_interval=2.0,
            restore=True,
            nested_sandbox=True,
            driver="claude",
            env={"KEY": "value"},
            mcp=True,
            until="DONE",
            max_iterations=3,
            budget=120.0,
            gate="make test",
            gate_timeout=9.0,
            after=["a", "b"],
            max_running=2,
            slot_holders=[Ancestor("top", "/r/top/sock")],
        )
        bare = PodSpec(name=spec.name, root=spec.root, cwd=spec.cwd, scope=spec.scope)
        given = [f.name for f in attrs.fields(PodSpec) if f.default is not attrs.NOTHING]
        assert [] == [name for name in given if getattr(spec, name) == getattr(bare, name)]
        written = PodInfo(spec=spec, pid=4242, start_time=1796000000.25)
        path = os.path.join(root, "pod.json")
        write_info(path, written)
        with open(path, "rb") as f:
            assert converter.unstructure(written) == json.load(f)
        assert written == read_info(path)

    def test_fields_of_a_written_pod_json(self, root: str) -> None:
        path = os.path.join(root, "pod.json")
        write_info(path, info(root))
        record = read_pod_record(path)
        assert ("child", 4242, 1796000000.25, "top", 3) == (
            record.name,
            record.pid,
            record.start_time,
            record.parent,
            record.incarnation,
        )

    def test_a_root_pod_has_no_parent(self, root: str) -> None:
        path = os.path.join(root, "pod.json")
        write_info(path, info(root, "top", None))
        assert None is read_pod_record(path).parent

    @pytest.mark.parametrize(
        "content",
        [
            b"",
            b"{torn",
            b"[]",
            b'{"pid": 1, "start_time": 2.0}',
            b'{"pid": "1", "start_time": 2.0, "spec": {"name": "a"}}',
            b'{"pid": 1, "start_time": true, "spec": {"name": "a"}}',
            b'{"pid": 1, "start_time": 2.0, "spec": {"name": 5}}',
            b'{"pid": 1, "start_time": 2.0, "spec": {"name": "a", "parent": 1}}',
        ],
    )
    def test_what_is_not_a_pod_record_is_refused(self, root: str, content: bytes) -> None:
        path = os.path.join(root, "pod.json")
        with open(path, "wb") as f:
            f.write(content)
        with pytest.raises(ValueError):
            read_pod_record(path)

    def test_a_missing_file_is_an_os_error(self, root: str) -> None:
        with pytest.raises(FileNotFoundError):
            read_pod_record(os.path.join(root, "pod.json"))

    def test_the_record_a_stopped_pod_left(self, root: str) -> None:
        write_stopped(root, info(root), Snapshot())
        record = read_stopped_record(root, "child")
        assert record is not None
        assert ("child", "top", 3) == (record.name, record.parent, record.incarnation)
        assert None is read_stopped_record(root, "other")


class TestRegistry:
    """read_registry gives the entries a pod's Registry saved; nothing for a bad file."""

    def test_entries_of_a_saved_registry(self, root: str) -> None:
        registry = Registry()
        for name, parent in (("a", "top"), ("g", "a")):
            registry.add(
                ChildRecord(
                    pod_name=name,
                    socket_path=f"/r/{name}/sock",
                    scope_delegated=[ScopeRule("/srv")],
                    callback_address="/r/top/sock",
                    pid=10,
                    start_time=5.5,
                    parent_pod=parent,
                )
            )
        save_registry(os.path.join(root, "spawned_pods.json"), registry)
        entries = read_registry(root)
        assert [("a", "top", 10, 5.5), ("g", "a", 10, 5.5)] == [
            (e["pod_name"], e["parent_pod"], e["pid"], e["start_time"]) for e in entries
        ]

    @pytest.mark.parametrize(
        "content", [b"{torn", b"[]", b'{"pods": {}}', b'{"pods": [1, {"pid": 2}]}']
    )
    def test_a_bad_registry_has_no_entries(self, root: str, content: bytes) -> None:
        with open(os.path.join(root, "spawned_pods.json"), "wb") as f:
            f.write(content)
        assert [] == read_registry(root)

    def test_no_registry_has_no_entries(self, root: str) -> None:
        assert [] == read_registry(root)

    def test_entries_without_a_name_are_left_out(self, root: str) -> None:
        with open(os.path.join(root, "spawned_pods.json"), "w") as f:
            json.dump({"pods": [{"pod_name": "a"}, {"pid": 3}]}, f)
        assert [{"pod_name": "a"}] == read_registry(root)
