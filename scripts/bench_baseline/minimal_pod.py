#!/usr/bin/env python3
"""The baseline pod of ``scripts/bench``: the least a trio Unix-socket pod can be.

Server (the pod):

    minimal_pod.py SOCKET [READY_FD]

binds SOCKET, listens, writes ``{"ok": true, "pid": N, "socket": SOCKET}`` and a newline
to READY_FD and closes it, then serves newline-delimited JSON on every connection:

- ``{"method": "ping", "id": X}`` -> ``{"id": X, "result": {"pong": true}}``
- ``{"method": "spawn", "params": {"name": N}, "id": X}`` starts another minimal pod at
  ``<directory of SOCKET>/N.sock`` as this process's own child, waits for its ready line
  and answers ``{"name", "pid", "socket"}``. A child that exits is forgotten at once.
- ``{"method": "children", "id": X}`` -> the names of the live children.
- ``{"method": "stats", "id": X}`` -> ``{"count", "first_ns", "last_ns", "latencies_ns"}``
  about the events received so far.
- A frame without ``id`` is an event: it is decoded (``json.loads``) and counted, with
  the receive time (``time.monotonic_ns``) of the first and the last; when its params
  carry ``t`` (the sender's ``time.monotonic_ns`` at send) the one-way latency is kept.
  No dispatch loop, no registry, no acknowledgement: the cheapest receiver there is.

Sender (the load generator of the event baselines, no trio):

    minimal_pod.py --send SOCKET COUNT [BATCH [RATE [NAME]]]

connects, prints ``connected``, waits for one line on stdin, then writes COUNT event
frames, BATCH frames per write (1: one write per event), as fast as it can or RATE per
second (0: unpaced), and exits.
"""

import json
import os
import sys
import time


def send(sock_path: str, count: int, batch: int, rate: float, name: str) -> int:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    sys.stdout.write("connected\n")
    sys.stdout.flush()
    sys.stdin.readline()
    started = time.perf_counter()
    pending: list[bytes] = []
    for i in range(1, count + 1):
        if rate > 0:
            due = started + (i - 1) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        params = {"kind": "turn_ended", "pod_name": name, "turn": i, "seq": i}
        if rate > 0:
            params["t"] = time.monotonic_ns()
        pending.append(json.dumps({"method": "pod_event", "params": params}).encode() + b"\n")
        if len(pending) >= batch:
            sock.sendall(b"".join(pending))
            pending.clear()
    if pending:
        sock.sendall(b"".join(pending))
    sock.close()
    return 0


def serve(sock_path: str, ready_fd: int) -> int:
    import socket
    import subprocess

    import trio

    here = os.path.abspath(__file__)
    stats = {"count": 0, "first_ns": 0, "last_ns": 0}
    latencies: list[int] = []
    children: dict[str, int] = {}
    watchers: list[trio.Nursery] = []

    async def spawn(name: str) -> dict[str, object]:
        child_sock = os.path.join(os.path.dirname(sock_path), name + ".sock")
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            proc = await trio.lowlevel.open_process(
                [sys.executable, here, child_sock, str(write_fd)],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(write_fd)
        line = b""
        async with trio.lowlevel.FdStream(read_fd) as ready:
            while b"\n" not in line:
                chunk = await ready.receive_some(4096)
                if not chunk:
                    break
                line += chunk
        children[name] = proc.pid

        async def watch() -> None:
            await proc.wait()
            children.pop(name, None)

        watchers[0].start_soon(watch)
        info = json.loads(line)
        return {"name": name, "pid": info["pid"], "socket": child_sock}

    async def handle(stream: trio.SocketStream) -> None:
        lock = trio.Lock()

        async def reply(frame: dict[str, object]) -> None:
            async with lock:
                await stream.send_all(json.dumps(frame).encode() + b"\n")

        async def spawn_and_reply(request_id: object, name: str) -> None:
            try:
                result = await spawn(name)
            except OSError as exc:
                await reply(
                    {"id": request_id, "error": {"code": "spawn_failed", "message": str(exc)}}
                )
                return
            await reply({"id": request_id, "result": result})

        buffer = b""
        try:
            async with stream, trio.open_nursery() as nursery:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if not line:
                            continue
                        try:
                            message = json.loads(line)
                        except ValueError:
                            await reply(
                                {"id": None, "error": {"code": "invalid_json", "message": ""}}
                            )
                            continue
                        request_id = message.get("id")
                        if request_id is None:
                            now = time.monotonic_ns()
                            stats["count"] += 1
                            if not stats["first_ns"]:
                                stats["first_ns"] = now
                            stats["last_ns"] = now
                            sent = (message.get("params") or {}).get("t")
                            if sent:
                                latencies.append(now - sent)
                            continue
                        method = message.get("method")
                        if method == "ping":
                            await reply({"id": request_id, "result": {"pong": True}})
                        elif method == "spawn":
                            name = str((message.get("params") or {}).get("name"))
                            nursery.start_soon(spawn_and_reply, request_id, name)
                        elif method == "children":
                            await reply({"id": request_id, "result": {"children": list(children)}})
                        elif method == "stats":
                            result = {**stats, "latencies_ns": latencies}
                            await reply({"id": request_id, "result": result})
                        else:
                            error = {"code": "unknown_method", "message": str(method)}
                            await reply({"id": request_id, "error": error})
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def main() -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.bind(sock_path)
        sock.listen(1024)
        if ready_fd >= 0:
            os.write(
                ready_fd,
                json.dumps({"ok": True, "pid": os.getpid(), "socket": sock_path}).encode() + b"\n",
            )
            os.close(ready_fd)
        async with trio.open_nursery() as nursery:
            watchers.append(nursery)
            await trio.serve_listeners(handle, [trio.SocketListener(sock)])

    trio.run(main)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--send":
        extra = [*args[3:], "1", "0", "sender"][:3]
        sys.exit(send(args[1], int(args[2]), int(extra[0]), float(extra[1]), extra[2]))
    if not args:
        sys.exit(__doc__)
    sys.exit(serve(args[0], int(args[1]) if len(args) > 1 else -1))
