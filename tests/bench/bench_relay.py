"""The `wucme alpn` relay: native splice, the os.splice twin and the copying relay, on loopback.

Run as `.venv/bin/python tests/bench/bench_relay.py [MiB]`.  Each relays MiB one way through a
real TCP front and back connection, and reports wall time and the relay thread's CPU time
(medians of 5); never part of the default test run.
"""
from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wucme._native import splice  # noqa: E402
from wucme._native.splice_pure import relay_copy  # noqa: E402


def pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        a = socket.create_connection(srv.getsockname())
        b, _ = srv.accept()
    return a, b


def once(kind: str, mib: int) -> tuple[float, float]:
    client, front = pair()
    back, server = pair()
    cpu: list[float] = []

    def go() -> None:
        c0 = time.thread_time()
        if kind == "copy":
            front.setblocking(False)
            back.setblocking(False)
            relay_copy(front, back, 10.0)
        else:
            splice.relay(front, back, 10.0, native=kind == "native")
        cpu.append(time.thread_time() - c0)
        front.close()
        back.close()

    block = b"x" * (1 << 20)
    got = [0]

    def drain() -> None:
        while chunk := server.recv(1 << 20):
            got[0] += len(chunk)

    t0 = time.perf_counter()
    relay = threading.Thread(target=go)
    reader = threading.Thread(target=drain)
    relay.start()
    reader.start()
    for _ in range(mib):
        client.sendall(block)
    client.shutdown(socket.SHUT_WR)
    reader.join()
    server.shutdown(socket.SHUT_WR)
    relay.join()
    wall = time.perf_counter() - t0
    for s in (client, server):
        s.close()
    assert got[0] == mib << 20
    return wall, cpu[0]


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    kinds = (["native"] if splice.HAS_NATIVE_SPLICE else []) + ["splice", "copy"]
    print(f"| relay | {mib} MiB wall (s) | MiB/s | relay thread CPU (s) |\n|---|---:|---:|---:|")
    for kind in kinds:
        runs = [once(kind, mib) for _ in range(5)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"| {kind} | {wall:.3f} | {mib / wall:.0f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
