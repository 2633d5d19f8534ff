"""The pod process: ``python -m podd._pod_main --ready-fd N --spec-fd M`` runs ``main``.

The spec (a JSON document) is read from descriptor M, never from the command line,
which any local user can read; once it is known, the process title says
``podd: pod NAME [ROOT]``.

It claims ``<root>/<name>/`` (refusing a live pod's name, clearing a dead one's
leftovers), binds the socket, writes ``pod.json``, reports readiness on the pipe, and
runs the pod until it stops. The first root pod of a root (``--root-server-fd``: the
CLI found no root fork server and bound its socket) first forks that server off itself
(``podd.spawn.root_forkserver``). A clean stop removes the directory; anything else leaves
``exit_reason`` in it for whoever reclaims or restarts the pod.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import sys
import traceback

import orjson
import trio

from podd.core.spec import PodSpec
from podd.errors import RootError
from podd.faults import fault_injected
from podd.proc.procfs import read_stat
from podd.proc.title import pod_title, set_title
from podd.runtime.pod import Pod
from podd.runtime.server import bind_listener
from podd.spawn.root_forkserver import fork_root_server
from podd.store.journal import Snapshot, load_state, read_stopped, stopped_path, write_stopped
from podd.store.leftovers import kill_leftover_turn
from podd.store.paths import (
    clear_directory,
    ensure_private_dir,
    lock_directory,
    make_private_dir,
    write_private,
)
from protocol import converter

__all__ = ["main"]

log = logging.getLogger("podd")


class StartupError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ReadyPipe:
    """The write end of the readiness pipe: one JSON line, then closed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _send(self, payload: dict[str, object]) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self.fd, orjson.dumps(payload) + b"\n")
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1

    def ok(self, pid: int, socket: str, started: float) -> None:
        self._send({"ok": True, "pid": pid, "socket": socket, "start_time": started})

    def fail(self, code: str, message: str) -> None:
        self._send({"ok": False, "code": code, "message": message})


def claim_directory(spec: PodSpec) -> Snapshot | None:
    """Claim the pod's directory; a live (or starting) pod's name is refused, a dead
    one's leftovers are cleared.

    The claim is an exclusive ``flock`` on the directory, held for the pod's life (the
    kernel drops it when the process dies): of any number of processes racing for a
    name, exactly one wins, and a directory is only ever cleared by its new owner.
    With ``spec.restore`` the state the previous incarnation left is returned: from the
    dead pod's directory if it is still there, else from its stopped record.
    """
    ensure_private_dir(spec.root)
    try:
        make_private_dir(spec.directory)
        created = True
    except FileExistsError:
        created = False
    if not lock_directory(spec.directory):
        raise StartupError("already_exists", f"a pod named {spec.name!r} is running")
    state: Snapshot | None = None
    if not created:
        ensure_private_dir(spec.directory, create=False)
        if spec.restore:
            state = load_state(spec.directory)
        kill_leftover_turn(spec.directory)
        clear_directory(spec.directory)
    if spec.restore and state is None:
        stopped = read_stopped(spec.root, spec.name)
        state = stopped[1] if stopped is not None else Snapshot()
    return state


def write_exit_reason(directory: str, reason: str) -> None:
    """Leave why the pod ended in its directory, for whoever reclaims it."""
    with contextlib.suppress(OSError):
        write_private(os.path.join(directory, "exit_reason"), reason)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def run(spec: PodSpec, ready: ReadyPipe) -> int:
    try:
        restored = claim_directory(spec)
    except StartupError as exc:
        ready.fail(exc.code, exc.message)
        return 1
    except (RootError, OSError) as exc:
        ready.fail("spawn_failed", str(exc))
        return 1
    log_path = os.path.join(spec.directory, "pod.log")
    stopped_cleanly = False
    try:
        os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600))
        logging.basicConfig(
            filename=log_path,
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        # pod.json first: from now on the directory is visibly this live process's, so
        # no `ls` or reclaim mistakes a starting pod for a dead one.
        # From /proc, as psutil computes it: psutil itself is imported after ready.
        own = read_stat(os.getpid())
        pod = Pod(spec, own.start_time if own is not None else 0.0, restored)
        pod.write_info()
        try:
            listener = await bind_listener(spec.directory)
        except FileExistsError as exc:
            raise StartupError("already_exists", f"a pod named {spec.name!r} is running") from exc
        if spec.restore:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stopped_path(spec.root, spec.name))

        def on_ready() -> None:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            ready.ok(pod.pid, spec.socket, pod.start_time)
            log.info("pod %s ready (pid %d, incarnation %d)", spec.name, pod.pid, spec.incarnation)
            if fault_injected("crash", spec.name):
                log.error("injected crash (PODD_FAULT)")
                os._exit(70)

        await pod.run(listener, on_ready)
        write_stopped(spec.root, pod.info(), pod.snapshot(), reason=pod.stop_reason)
        stopped_cleanly = True
        log.info("pod %s stopped", spec.name)
        return 0
    except StartupError as exc:
        ready.fail(exc.code, exc.message)
        shutil.rmtree(spec.directory, ignore_errors=True)
        return 1
    except BaseException as exc:
        if ready.fd >= 0:
            ready.fail("spawn_failed", f"{type(exc).__name__}: {exc}")
            shutil.rmtree(spec.directory, ignore_errors=True)
            raise
        write_exit_reason(spec.directory, "".join(traceback.format_exception(exc)))
        raise
    finally:
        if stopped_cleanly:
            shutil.rmtree(spec.directory, ignore_errors=True)


def _read_spec(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as f:
        return f.read()


_OPTIONS = ("--ready-fd", "--spec-fd", "--root-server-fd", "--root-server-ino")


def parse_options(argv: list[str]) -> dict[str, int]:
    """``--ready-fd N --spec-fd M [--root-server-fd L --root-server-ino I]``: numbers by
    option (-1 if absent). Read by hand: an ``argparse`` parser, built by every pod for
    these few numbers, costs each forked pod private memory and time."""
    options = dict.fromkeys(_OPTIONS, -1)
    words = iter(argv)
    for word in words:
        name, eq, value = word.partition("=")
        if name not in options:
            raise SystemExit(f"podd._pod_main: unknown option {word!r}")
        try:
            options[name] = int(value if eq else next(words))
        except (StopIteration, ValueError):
            raise SystemExit(f"podd._pod_main: {name} needs a number") from None
    return options


def main(argv: list[str] | None = None, given: str | PodSpec | None = None) -> int:
    """Run one pod. The spec comes from ``--spec-fd`` or is ``given``: its JSON document
    (from a fork server), or the ``PodSpec`` itself (in a process forked from the one
    that built it: a cold root spawn)."""
    options = parse_options(sys.argv[1:] if argv is None else argv)
    if isinstance(given, PodSpec):
        spec = given
    else:
        raw = given.encode() if given is not None else _read_spec(options["--spec-fd"])
        spec = converter.structure(orjson.loads(raw), PodSpec)
    if options["--root-server-fd"] >= 0:
        # A cold root spawn: the CLI bound the root fork server's socket; the server is
        # a fork of this process, taken now that the runtime is imported and while it
        # has a single thread (before trio), so that no second interpreter imports it.
        listener, identity = options["--root-server-fd"], options["--root-server-ino"]
        fork_root_server(main, listener, identity, spec.name, spec.root)
    set_title(pod_title(spec.name, spec.root))
    _raise_fd_limit()
    return trio.run(run, spec, ReadyPipe(options["--ready-fd"]))
