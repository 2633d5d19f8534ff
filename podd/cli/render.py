"""Human output of the CLI: tables and trees that never truncate names.

On a terminal, tables are drawn with rich (colour, borders). Piped to a file or a
program, which is how scripts and agents read them, they are plain aligned columns
written here: the same columns and values, each column as wide as its widest cell.
rich costs about 30 ms to import, more than the rest of such a command. ``ls --tree``
is always drawn with rich; piped, its console is as wide as the content needs (rich
would otherwise assume 80 columns and cut cells with "…").
"""

from __future__ import annotations

import sys

# Type checkers take this as true; the typing module is not imported (it costs every
# command-line call a few milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from rich.console import Console

    from podd.cli.inventory import PodView

__all__ = ["columns", "format_age", "pod_table", "pod_tree", "status"]

STATE_STYLE = {
    "idle": "green",
    "running": "cyan",
    "stopping": "yellow",
    "unresponsive": "magenta",
    "stale": "red",
}

POD_COLUMNS = ("NAME", "STATE", "PID", "PARENT", "AGE", "CHILDREN", "COST")
CHILD_COLUMNS = ("CHILD", "PID", "VIA", "SCOPE")
RULE = "─"
"""The line under a table's header."""


def _console() -> Console:
    from rich.console import Console

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


def columns(header: Sequence[str] | None, rows: Sequence[Sequence[str]], gap: int = 3) -> str:
    """Plain aligned columns, one line per row, ``gap`` spaces between columns; with a
    ``header``, it comes first, underlined across the table's width. Cells are never
    cut; lines carry no trailing spaces."""
    table = [list(header), *rows] if header is not None else [list(row) for row in rows]
    if not table:
        return ""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    spacer = " " * gap

    def line(row: Sequence[str]) -> str:
        return spacer.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    lines = [line(row).rstrip() for row in table]
    if header is not None:
        lines.insert(1, RULE * (sum(widths) + gap * (len(widths) - 1)))
    return "\n".join(lines) + "\n"


def _pod_rows(pods: Sequence[PodView]) -> list[list[str]]:
    return [
        [
            pod.name,
            pod.state,
            str(pod.pid or "-"),
            pod.parent or "-",
            format_age(pod.to_dict()["age"]),
            str(len(pod.children)),
            _cost(pod.cost_usd),
        ]
        for pod in pods
    ]


def pod_table(pods: Sequence[PodView]) -> None:
    if not pods:
        sys.stdout.write("no pods\n")
        return
    rows = _pod_rows(pods)
    if not sys.stdout.isatty():
        sys.stdout.write(columns(POD_COLUMNS, rows))
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in POD_COLUMNS:
        table.add_column(column, no_wrap=True, overflow="fold")
    for pod, row in zip(pods, rows, strict=True):
        row[1] = f"[{STATE_STYLE.get(pod.state, '')}]{pod.state}[/]"
        table.add_row(*row)
    _console().print(table)


def pod_tree(pods: Sequence[PodView], root: str) -> None:
    from rich.tree import Tree

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


def _status_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    last = doc.get("last_turn") or {}
    return [
        ("name", doc["name"]),
        ("state", doc["state"]),
        ("pid", str(doc["pid"])),
        ("parent", doc.get("parent") or "-"),
        ("incarnation", str(doc["incarnation"])),
        ("socket", doc["socket"]),
        ("agent", doc.get("agent") or "- (supervisor only)"),
        ("driver", str(doc.get("driver") or "shell")),
        ("turns", str(doc["turns"])),
        ("last turn", last.get("message", "-") if last else "-"),
        ("result", _one_line(str(last["summary"])) if last.get("summary") else "-"),
        ("session", doc.get("session_id") or "-"),
        ("cost", _cost(doc.get("cost_usd"))),
        ("waiting for", doc.get("waiting_on") or "-"),
        ("queue", _queue(doc.get("queue") or [])),
        ("scope", ", ".join(_rule(r) for r in doc["scope"]) or "-"),
        ("enforcement", _enforcement(doc)),
        ("notifications", str(doc["notifications_pending"])),
        ("lag", "last {last:.4f}s  max {max:.4f}s  mean {mean:.4f}s".format(**doc["lag"])),
    ]


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cost(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, (int, float)) else "-"


def _queue(items: list[dict[str, Any]]) -> str:
    if not items:
        return "-"
    first = items[0]
    text = _one_line(first["text"], 60)
    return f"{len(items)} queued; next (priority {first['priority']}): {text}"


def _enforcement(doc: dict[str, Any]) -> str:
    mode = str(doc.get("enforcement", "-"))
    return f"{mode} (nested sandbox)" if doc.get("nested_sandbox") else mode


def _child_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            child["pod_name"],
            str(child["pid"]),
            child["parent_pod"],
            ", ".join(_rule(r) for r in child["scope_delegated"]),
        ]
        for child in doc["children"]
    ]


def status(doc: dict[str, Any]) -> None:
    rows = _status_rows(doc)
    children = _child_rows(doc)
    if not sys.stdout.isatty():
        sys.stdout.write(columns(None, rows, gap=2))
        if children:
            sys.stdout.write(columns(CHILD_COLUMNS, children))
        return
    from rich import box
    from rich.table import Table

    console = _console()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value)
    console.print(grid)
    if children:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None)
        for column in CHILD_COLUMNS:
            table.add_column(column, no_wrap=True, overflow="fold")
        for row in children:
            table.add_row(*row)
        console.print(table)


def _rule(rule: dict[str, Any]) -> str:
    suffix = "" if rule.get("recursive", True) else " (non-recursive)"
    return f"{rule['permission']}:{rule['target']}{suffix}"
