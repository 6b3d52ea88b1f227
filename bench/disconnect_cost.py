"""What one socket's disconnect costs the hub's loop, by number of learners connected.

Each learner is in the exam's namespace as the hub puts it there: Socket.IO's room of
the socket, the exam's room and the attempt's own room. The script times python-socketio's
manager against the hub's (`server.core.sockets.IndexedManager`, with the room index),
in-process, no network: the loop time a disconnect takes, nothing else.

    .venv/bin/python bench/disconnect_cost.py [--learners 2000 10000] [--disconnects 500] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import socketio  # noqa: E402

from server.core.sockets import IndexedManager  # noqa: E402


def one_round(cls: type, learners: int, disconnects: int) -> float:
    manager = cls()
    manager.set_server(socketio.Server(async_mode="threading"))
    manager.initialize()
    sids = []
    for i in range(learners):
        sid = manager.connect(f"eio{i}", "/exam")
        manager.enter_room(sid, "/exam", "exam:1")
        manager.enter_room(sid, "/exam", f"attempt:{i}")
        sids.append(sid)
    t = time.perf_counter()
    for sid in sids[:disconnects]:
        manager.disconnect(sid, "/exam")
    return (time.perf_counter() - t) * 1000 / disconnects


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--learners", type=int, nargs="+", default=[2000, 10000])
    p.add_argument("--disconnects", type=int, default=500)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    print("learners  python-socketio ms  hub ms  ratio   (loop time per disconnect, median of rounds)")
    for n in args.learners:
        plain = statistics.median(one_round(socketio.Manager, n, args.disconnects) for _ in range(args.rounds))
        ours = statistics.median(one_round(IndexedManager, n, args.disconnects) for _ in range(args.rounds))
        print(f"{n:8d}  {plain:18.3f}  {ours:6.4f}  {plain / ours:5.0f}x")


if __name__ == "__main__":
    main()
