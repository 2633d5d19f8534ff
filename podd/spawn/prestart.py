"""The pod of a cold root spawn, forked as the command starts.

A cold root spawn (no fork server runs for the root) forks its pod from the CLI, and
the fork imports the runtime itself (``podd.spawn.spawner``). Forked once the command
has parsed its arguments and built the spec, the pod would begin its import only after
the command's own start-up (argparse and the parser, the spec's types, the agent
check): on a spawn's critical path, one thing after the other. ``prestart`` forks it
first instead, before the command imports anything of its own, so that the two run
side by side: the process imports the runtime while the command parses and checks,
then waits for the spec. ``PrestartedPod.hand_over`` sends it, with the readiness and
stderr pipes and the root fork server's socket attached, and the process becomes the
pod (``podd.spawn.forked_pod.become_pod``).

The spec goes over as a pickle: the process is this one's own fork, running the same
code, and only the two of them hold the socket pair. A command that turns out not to
need the pod (a usage error, a failed check, a root fork server that answered) kills
it with ``cancel``; a command that dies leaves it the socket pair closed, and it exits.

Like a pod forked from the CLI, it is forked detached (``podd.spawn.detached``): a
session of its own, and init, not the short-lived command, its parent.

This module is light (the CLI imports it before anything else); what the process needs
to become a pod is imported in the process.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket

from podd.spawn.detached import fork_detached

# Type checkers take this as true; the modules are imported in the forked process only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from podd.core.spec import PodSpec
    from podd.spawn.forked_pod import RunPod

__all__ = ["PrestartedPod", "discard", "prestart", "take"]


def starting_title(root: str) -> str:
    """The process's title until it knows which pod it is."""
    return f"podd: pod starting [{root}]"


MAX_HANDOVER = 4 * 1024 * 1024
"""The largest spec a hand-over carries (a longer one is started the usual way)."""

CANCEL_WAIT = 5.0
"""How long ``cancel`` waits, at most, for the killed process to end (it ends at once
but on a machine too busy to run it)."""


class PrestartedPod:
    """The command's side of a pod process forked by ``prestart``."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self._sock: socket.socket | None = sock
        self.pid = pid
        """The process's pid: the pod's, once it has been handed its spec."""

    def hand_over(
        self,
        spec: PodSpec,
        env: dict[str, str],
        fds: tuple[int, int],
        root_server: tuple[int, int] | None,
    ) -> int | None:
        """Send the process ``spec``, its environment ``env``, its readiness and stderr
        pipes ``fds``, and the root fork server's ``(listening socket, inode)`` to fork
        off itself (None: none); it becomes that pod. Its pid, or None if it cannot
        take them (it is gone, or the spec is too large): then it is killed, and
        nothing was handed over."""
        sock = self._sock
        if sock is None:
            return None
        import pickle

        inode = None if root_server is None else root_server[1]
        payload = pickle.dumps((spec, env, inode), protocol=pickle.HIGHEST_PROTOCOL)
        attached = [*fds] if root_server is None else [*fds, root_server[0]]
        sent = False
        if len(payload) <= MAX_HANDOVER:
            # It is gone, or the message does not fit the socket's buffer: OSError.
            with contextlib.suppress(OSError):
                socket.send_fds(sock, [payload], attached)
                sent = True
        if not sent:
            self.cancel()
            return None
        self._sock = None
        sock.close()
        return self.pid

    def cancel(self) -> None:
        """Kill the process unless it has been handed its pod, and wait (briefly) until
        it is gone. Safe to call more than once."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            # While the socket pair is open the process waits on it (or has ended, its
            # import failed): the pid is still its own.
            pidfd = os.pidfd_open(self.pid)
        except OSError:  # gone already
            pidfd = -1
        sock.close()
        if pidfd < 0:
            return
        try:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            select.select([pidfd], [], [], CANCEL_WAIT)
        finally:
            os.close(pidfd)


_pending: PrestartedPod | None = None


def prestart(load: Callable[[], RunPod], root: str) -> None:
    """Fork the pod process of a cold root spawn under ``root`` now; ``take`` returns
    it. ``load`` imports the runtime and returns what becomes the pod (``run_pod``); the
    process calls it at once. Call it in a process with a single thread; on failure
    there is none, and the pod is forked later, as usual."""
    global _pending
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return
    if min(ours.fileno(), theirs.fileno()) <= 2:
        # A standard stream is closed, and the pair took its place: the process would
        # replace it with /dev/null. The pod is forked later, as usual.
        ours.close()
        theirs.close()
        return

    def become() -> None:
        ours.close()
        _wait_for_spec(theirs, load, root)

    try:
        pid = fork_detached(become)
    except OSError:
        pid = -1
    finally:
        theirs.close()
    if pid < 0:
        ours.close()
        return
    _pending = PrestartedPod(ours, pid)


def take() -> PrestartedPod | None:
    """The process ``prestart`` forked, for the spawn to hand it its pod; None if there
    is none or it was taken."""
    global _pending
    taken, _pending = _pending, None
    return taken


def discard() -> None:
    """Kill the process ``prestart`` forked if nobody took it (the command ended
    without a cold root spawn)."""
    taken = take()
    if taken is not None:
        taken.cancel()


def _wait_for_spec(sock: socket.socket, load: Callable[[], RunPod], root: str) -> None:
    """In the forked process: import the runtime, wait for the spec, become its pod.
    Ends the process if the command sends none (it closed the socket pair)."""
    code = 0
    try:
        # Nothing of the command's: its pipes must reach end-of-file when it exits.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        from podd.proc.title import set_title

        set_title(starting_title(root))
        try:
            run_pod = load()
        except BaseException:
            import traceback

            failure = traceback.format_exc()
        else:
            failure = ""
        message, fds, _, _ = socket.recv_fds(sock, MAX_HANDOVER, 3)
        sock.close()
        if not message:
            return
        for fd in fds:  # as the command's own were: no program this pod runs gets them
            os.set_inheritable(fd, False)
        if failure:  # on the pod's stderr, which the spawn shows when it fails
            code = 1
            os.write(fds[1], failure.encode(errors="replace"))
            return
        import pickle

        from podd.spawn.forked_pod import become_pod

        spec, env, inode = pickle.loads(message)
        argv: tuple[str, ...] = ()
        if inode is not None:
            argv = ("--root-server-fd", str(fds[2]), "--root-server-ino", str(inode))
        become_pod(run_pod, spec, fds[0], fds[1], env, argv=argv)
    except BaseException:
        code = 1
    finally:
        os._exit(code)
