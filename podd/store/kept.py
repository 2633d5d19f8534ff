"""What a pod keeps beyond its process: the agent's state dir, output and turn records.

``<root>/.kept/<name>/`` holds, for pod NAME:

    agent/          the agent's own state (``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``)
    output.log      everything the agent wrote, every turn, as it came (rotated)
    turns/N.out     turn N's stdout, turns/N.err its stderr
    turns.jsonl     one turn record per line, oldest first

It outlives the pod's directory (removed when the pod stops), so a stopped pod's
output and results stay readable and ``podd restart`` resumes the agent's session from
its state dir. Spawning the name again starts its output and records afresh but keeps
``agent/`` (the agent's login and settings); ``podd reclaim --purge NAME`` removes it
all. Readers here use only the standard library: the CLI imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

from podd.store.atomic import write_atomic

__all__ = [
    "append_record",
    "kept_dir",
    "output_log",
    "prepare",
    "purge",
    "read_records",
    "seed_login",
    "state_dir",
    "turn_output",
    "write_mcp_config",
]

KEPT = ".kept"


def kept_dir(root: str, name: str) -> str:
    return os.path.join(root, KEPT, name)


def state_dir(root: str, name: str) -> str:
    """The agent's state dir: writable by the pod's turns, never shared with another pod."""
    return os.path.join(root, KEPT, name, "agent")


def output_log(root: str, name: str) -> str:
    return os.path.join(root, KEPT, name, "output.log")


def turn_output(root: str, name: str, turn: int, stream: str) -> str:
    """Turn ``turn``'s ``stream`` (``out`` or ``err``)."""
    return os.path.join(root, KEPT, name, "turns", f"{turn}.{stream}")


def records_path(root: str, name: str) -> str:
    return os.path.join(root, KEPT, name, "turns.jsonl")


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def prepare(root: str, name: str, *, fresh: bool) -> None:
    """Make the directories; with ``fresh`` (a new pod under this name, not a restart),
    drop the previous pod's output and records, keeping its agent state."""
    _private_dir(os.path.join(root, KEPT))
    directory = kept_dir(root, name)
    _private_dir(directory)
    if fresh:
        for leaf in ("output.log", "output.log.1", "turns.jsonl", "mcp.json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, leaf))
        shutil.rmtree(os.path.join(directory, "turns"), ignore_errors=True)
    _private_dir(os.path.join(directory, "turns"))
    _private_dir(state_dir(root, name))


LOGINS = {
    "claude": ("CLAUDE_CONFIG_DIR", ".claude", ".credentials.json"),
    "codex": ("CODEX_HOME", ".codex", "auth.json"),
}
"""Per driver: the variable naming the CLI's own config dir, its default under $HOME,
and the file that holds a login made with the CLI itself."""


def seed_login(root: str, name: str, driver: str, env: dict[str, str]) -> bool:
    """Copy the user's own CLI login into the pod's state dir, if there is one and the
    state dir has none yet; whether it did.

    A copy, not a link: what an agent does to its state dir never reaches the user's
    own config, nor another pod's. API keys need nothing: their variables pass through.
    """
    if driver not in LOGINS:
        return False
    variable, default, leaf = LOGINS[driver]
    home = env.get("HOME") or os.path.expanduser("~")
    source_dir = env.get(variable) or os.path.join(home, default)
    source = os.path.join(source_dir, leaf)
    target = os.path.join(state_dir(root, name), leaf)
    if os.path.realpath(source_dir) == os.path.realpath(state_dir(root, name)):
        return False
    if os.path.exists(target) or not os.path.isfile(source):
        return False
    try:
        with open(source, "rb") as f:
            data = f.read()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return True


def purge(root: str, name: str) -> bool:
    """Remove everything kept for NAME; whether there was anything."""
    directory = kept_dir(root, name)
    existed = os.path.isdir(directory)
    shutil.rmtree(directory, ignore_errors=True)
    return existed


def append_record(root: str, name: str, record: dict[str, object]) -> None:
    """Add a turn record (one ``write`` of one line, so readers never see half of it)."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    fd = os.open(
        records_path(root, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
    )
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_records(root: str, name: str) -> list[dict[str, object]]:
    """Every turn record of NAME, oldest first (a torn or foreign line is skipped)."""
    try:
        with open(records_path(root, name), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def write_mcp_config(root: str, name: str, document: dict[str, object]) -> None:
    """Write the ``--mcp-config`` of pod NAME (``spawn --mcp``) as ``mcp.json``."""
    write_atomic(os.path.join(kept_dir(root, name), "mcp.json"), json.dumps(document).encode())
