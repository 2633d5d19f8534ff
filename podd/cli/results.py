"""What pods' turns left: ``podd result``, ``podd wait``, ``podd output``, ``reclaim --purge``.

Results and output are read from the files a pod keeps (``podd.store.kept``), so they stay
readable after the pod stops, until its name is spawned again or purged.
"""

from __future__ import annotations

import json
import os
import sys

from podd.cli.context import EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, Context, Exit, print_json
from podd.core.names import check_name
from podd.store import kept

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["cmd_output", "cmd_result", "cmd_wait", "describe", "purge"]

LLM_DRIVERS = ("claude", "codex")


def describe(name: str, record: dict[str, Any]) -> str:
    """One line for a turn record: how it ended, and its cost when known."""
    message = record.get("message") or (
        f"turn {record.get('turn')} {record.get('outcome')}"
        + (f": {record['cause']}" if record.get("cause") else "")
    )
    cost = record.get("cost_usd")
    tail = f" (cost ${cost:.4f})" if isinstance(cost, (int, float)) else ""
    return f"{name}: {message}{tail}"


def _exists(ctx: Context, name: str) -> bool:
    return os.path.isdir(ctx.pod_dir(name)) or os.path.isdir(kept.kept_dir(ctx.root, name))


def _record(ctx: Context, name: str, turn: int | None) -> dict[str, Any]:
    records = kept.read_records(ctx.root, name)
    if turn is not None:
        records = [r for r in records if r.get("turn") == turn]
    if not records:
        if not _exists(ctx, name):
            raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}")
        which = f"turn {turn}" if turn is not None else "a turn"
        raise Exit(EXIT_NOT_RUNNING, f"pod {name!r} has no record of {which}")
    return records[-1]


def cmd_result(ctx: Context) -> int:
    name = check_name(ctx.args.name)
    record = _record(ctx, name, ctx.args.turn)
    finished = record.get("outcome") == "finished"
    if ctx.json:
        print_json(record)
    else:
        result = record.get("result")
        if result:
            sys.stdout.write(result if result.endswith("\n") else result + "\n")
        if not finished:
            print(f"podd: {describe(name, record)}", file=sys.stderr)
    return EXIT_OK if finished else EXIT_FAILED


def cmd_wait(ctx: Context) -> int:
    from podd.client.sync import call
    from podd.errors import PoddError

    name = check_name(ctx.args.name)
    timeout = ctx.args.timeout
    if not ctx.process_alive(name):
        if not _exists(ctx, name):
            raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}")
        records = kept.read_records(ctx.root, name)
        last: dict[str, Any] | None = records[-1] if records else None
    else:
        try:
            last = call(ctx.socket(name), "wait", {}, timeout=timeout)["last_turn"]
        except PoddError as exc:
            if ctx.process_alive(name) and timeout is not None:
                raise Exit(EXIT_FAILED, f"pod {name!r} is still busy after {timeout:g} s") from exc
            if not _exists(ctx, name):
                raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}") from exc
            # It ended while we waited: what it left says how its last turn went.
            records = kept.read_records(ctx.root, name)
            last = records[-1] if records else None
    if ctx.json:
        print_json({"pod": name, "last_turn": last})
    elif last is None:
        print(f"{name}: no turn yet")
    else:
        print(describe(name, last))
    return EXIT_OK if last is None or last.get("outcome") == "finished" else EXIT_FAILED


def _driver(ctx: Context, name: str) -> str:
    records = kept.read_records(ctx.root, name)
    if records and isinstance(records[-1].get("driver"), str):
        return str(records[-1]["driver"])
    try:
        with open(os.path.join(ctx.pod_dir(name), "pod.json"), "rb") as f:
            return str(json.load(f)["spec"].get("driver", "shell"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "shell"


def _turns(ctx: Context, name: str) -> list[int]:
    try:
        leaves = os.listdir(os.path.join(kept.kept_dir(ctx.root, name), "turns"))
    except FileNotFoundError:
        return []
    numbers = {int(leaf.split(".")[0]) for leaf in leaves if leaf.split(".")[0].isdigit()}
    return sorted(numbers)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def cmd_output(ctx: Context) -> int:
    from podd.store import output

    args = ctx.args
    name = check_name(args.name)
    if not _exists(ctx, name):
        raise Exit(EXIT_NOT_RUNNING, f"no pod named {name!r} under {ctx.root}")
    out = sys.stdout.buffer
    stream = "err" if args.stderr else "out"
    driver = _driver(ctx, name)
    readable = driver in LLM_DRIVERS and not args.raw and not args.stderr
    if args.turn is not None:
        path = kept.turn_output(ctx.root, name, args.turn, stream)
        if not os.path.exists(path):
            raise Exit(EXIT_NOT_RUNNING, f"pod {name!r} has no output of turn {args.turn}")
        data = _read(path)
        out.write(_render(driver, data) if readable else data)
        out.flush()
        return EXIT_OK
    if args.follow or not (readable or args.raw or args.stderr):
        # Everything, as it came (stdout and stderr in the order written).
        log = kept.output_log(ctx.root, name)
        output.show(log, os.path.join(ctx.pod_dir(name), "pod.json"), follow=args.follow, out=out)
        return EXIT_OK
    records = {r.get("turn"): r for r in kept.read_records(ctx.root, name)}
    for turn in _turns(ctx, name):
        data = _read(kept.turn_output(ctx.root, name, turn, stream))
        if readable:
            out.write(_header(turn, records.get(turn)).encode())
            out.write(_render(driver, data))
        else:
            out.write(data)
    out.flush()
    return EXIT_OK


def _header(turn: int, record: dict[str, Any] | None) -> str:
    if record is None:
        return f"=== turn {turn} (running) ===\n"
    how = record.get("outcome") or "?"
    if record.get("cause"):
        how += f": {record['cause']}"
    cost = record.get("cost_usd")
    if isinstance(cost, (int, float)):
        how += f", ${cost:.4f}"
    return f"=== turn {turn} ({how}) ===\n"


def _render(driver: str, data: bytes) -> bytes:
    from podd.drivers.render import render_turn

    text = render_turn(driver, data)
    return (text if not text or text.endswith("\n") else text + "\n").encode()


def purge(ctx: Context) -> int:
    """``reclaim --purge NAME``: delete what a stopped NAME keeps."""
    if ctx.args.name is None:
        raise Exit(2, "--purge needs the NAME of a stopped pod")
    name = check_name(ctx.args.name)
    if ctx.process_alive(name):
        raise Exit(EXIT_FAILED, f"pod {name!r} is running: stop it before purging it")
    found = kept.purge(ctx.root, name)
    try:
        os.unlink(os.path.join(ctx.root, f".stopped.{name}.json"))
        found = True
    except FileNotFoundError:
        pass
    if ctx.json:
        print_json({"reclaimed": [], "purged": [name] if found else []})
    else:
        print(f"purged {name}" if found else f"nothing kept for {name!r}")
    return EXIT_OK
