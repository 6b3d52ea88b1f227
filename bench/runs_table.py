"""One markdown row per `exam_load.py --json` file: the figures docs/benchmarks.md compares.

    .venv/bin/python bench/runs_table.py bench/results/s7/*.json

Columns: burst ack p99, seconds of the burst over 250 ms (with the worst second), submit p99,
the last full second's ack p99, the hub's and the learners' cores in the steady phase and in the
burst, the learners' worst loop lag in the burst, the cameras' move of the p99, acked
answers missing from the database, and close-allowed → results.xlsx.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HEAD = ("| run | burst p99 ms | s > 250 (worst) | submit p99 ms | last s p99 | hub cores steady / burst "
        "| learners cores steady / burst | learners' lag max in burst ms | cameras Δ ms | acked lost | xlsx s |")


def g(d: dict, *path, default=None):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def row(name: str, r: dict) -> str:
    tl = g(r, "acks", "timeline_burst", default=[]) or []
    over = [(s, p) for s, _, p in tl if p > 250]
    worst = max(over, key=lambda x: x[1]) if over else None
    lag = g(r, "client", "loop_lag_burst_ms", default=[]) or []
    cap = g(r, "hub_cpu_cap", "cores")
    cells = [
        name + (f" (hub ≤ {cap} core)" if cap else ""),
        g(r, "acks", "burst", "p99_ms"),
        f"{len(over)}" + (f" ({worst[0]}s: {worst[1]:.0f})" if worst else ""),
        g(r, "submit", "latency", "p99_ms"),
        # the last second the learners sent in (a second after the deadline holds a few stragglers)
        next((p for _, n, p in reversed(tl) if n >= 100), None),
        f"{g(r, 'cpu', 'steady', 'hub_cores')} / {g(r, 'cpu', 'burst', 'hub_cores')}",
        f"{g(r, 'cpu', 'steady', 'workers_cores')} / {g(r, 'cpu', 'burst', 'workers_cores')}",
        max((v for _, v in lag), default=None),
        g(r, "snapshots", "acks", "p99_moved_vs_around_ms"),
        g(r, "integrity", "acked_missing_in_db"),
        g(r, "close", "close_allowed_to_xlsx_s"),
    ]
    return "| " + " | ".join("" if c is None else str(c) for c in cells) + " |"


def main(paths: list[str]) -> int:
    print(HEAD)
    print("|" + "---|" * (HEAD.count("|") - 1))
    for p in paths:
        try:
            r = json.loads(Path(p).read_text())
        except (OSError, ValueError) as err:
            print(f"| {p} | unreadable: {err} |")
            continue
        print(row(Path(p).stem, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
