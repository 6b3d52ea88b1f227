"""One learner's round trips to the hub, every few milliseconds, from a process of its own.

Connects to `/exam` with a learner's socket token and sends `time.sync` every
`--every-ms`, waiting for each ack; writes `[[wall time sent, round trip ms], ...]` as
JSON to `--out` when it has run `--seconds`. The bench process that drives the load has
threads of its own (164 cameras' senders): measured from there, its own GIL would be in
every round trip.

    .venv/bin/python bench/rtt_probe.py --url http://127.0.0.1:5000 --token T --seconds 20 --out F
"""
from __future__ import annotations

import argparse
import json
import time

import socketio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--every-ms", type=float, default=5.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    sio = socketio.Client(reconnection=False)
    sio.connect(args.url, namespaces=["/exam"], transports=["websocket"], auth={"token": args.token})
    samples: list[list[float]] = []
    end = time.time() + args.seconds
    try:
        while time.time() < end:
            t_wall, t0 = time.time(), time.perf_counter()
            ack = sio.call("time.sync", {"t0": t_wall * 1000}, namespace="/exam", timeout=10)
            if not (isinstance(ack, dict) and ack.get("ok")):
                raise SystemExit(f"time.sync refused: {ack!r}")
            samples.append([t_wall, round((time.perf_counter() - t0) * 1000, 2)])
            time.sleep(max(0.0, args.every_ms / 1000 - (time.perf_counter() - t0)))
    finally:
        sio.disconnect()
        with open(args.out, "w") as fh:
            json.dump(samples, fh)


if __name__ == "__main__":
    main()
