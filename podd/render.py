"""Human output of the CLI: tables and trees with rich, never truncating names.

rich assumes 80 columns when output is piped and would cut cells with "…"; here the
console is as wide as the content needs when stdout is not a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from podd.inventory import PodView

__all__ = ["format_age", "pod_table", "pod_tree", "status"]

STATE_STYLE = {
    "idle": "green",
    "running": "cyan",
    "stopping": "yellow",
    "unresponsive": "magenta",
    "stale": "red",
}


def _console() -> Console:
    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False, soft_wrap=True)


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def pod_table(pods: Sequence[PodView]) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("NAME", "STATE", "PID", "PARENT", "AGE", "CHILDREN"):
        table.add_column(column, no_wrap=True, overflow="fold")
    for pod in pods:
        d = pod.to_dict()
        table.add_row(
            pod.name,
            f"[{STATE_STYLE.get(pod.state, '')}]{pod.state}[/]",
            str(pod.pid or "-"),
            pod.parent or "-",
            format_age(d["age"]),
            str(len(pod.children)),
        )
    console = _console()
    if not pods:
        console.print("no pods")
        return
    console.print(table)


def pod_tree(pods: Sequence[PodView], root: str) -> None:
    by_name = {p.name: p for p in pods}
    children: dict[str | None, list[PodView]] = {}
    for pod in pods:
        parent = pod.parent if pod.parent in by_name else None
        children.setdefault(parent, []).append(pod)
    tree = Tree(root, guide_style="dim")

    def label(pod: PodView) -> str:
        style = STATE_STYLE.get(pod.state, "")
        return f"{pod.name} [{style}]{pod.state}[/] pid {pod.pid or '-'}"

    def add(node: Tree, pod: PodView, seen: set[str]) -> None:
        branch = node.add(label(pod))
        seen.add(pod.name)
        for child in children.get(pod.name, []):
            if child.name not in seen:
                add(branch, child, seen)

    seen: set[str] = set()
    for top in children.get(None, []):
        add(tree, top, seen)
    _console().print(tree)


def status(doc: dict[str, Any]) -> None:
    console = _console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    last = doc.get("last_turn") or {}
    rows = [
        ("name", doc["name"]),
        ("state", doc["state"]),
        ("pid", str(doc["pid"])),
        ("parent", doc.get("parent") or "-"),
        ("incarnation", str(doc["incarnation"])),
        ("socket", doc["socket"]),
        ("agent", doc.get("agent") or "- (supervisor only)"),
        ("turns", str(doc["turns"])),
        ("last turn", last.get("message", "-") if last else "-"),
        ("scope", ", ".join(_rule(r) for r in doc["scope"]) or "-"),
        ("enforcement", doc.get("enforcement", "-")),
        ("notifications", str(doc["notifications_pending"])),
        ("lag", "last {last:.4f}s  max {max:.4f}s  mean {mean:.4f}s".format(**doc["lag"])),
    ]
    for key, value in rows:
        grid.add_row(key, value)
    console.print(grid)
    if doc["children"]:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None)
        for column in ("CHILD", "PID", "VIA", "SCOPE"):
            table.add_column(column, no_wrap=True, overflow="fold")
        for child in doc["children"]:
            scope = ", ".join(_rule(r) for r in child["scope_delegated"])
            table.add_row(child["pod_name"], str(child["pid"]), child["parent_pod"], scope)
        console.print(table)


def _rule(rule: dict[str, Any]) -> str:
    suffix = "" if rule.get("recursive", True) else " (non-recursive)"
    return f"{rule['permission']}:{rule['target']}{suffix}"
