"""gevent vs eventlet, side by side: alternating runs of exam_load.py, then a table of
medians and eventlet/gevent ratios.

    .venv/bin/python bench/compare_modes.py --runs 3 --out bench/results/cmp10k -- --learners 10000
    .venv/bin/python bench/compare_modes.py --table bench/results/cmp10k     # table only, from saved JSON

Everything after `--` goes to exam_load.py unchanged. Each run writes <out>/<mode>-<i>.json.
"""
from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = str(HERE.parent / ".venv" / "bin" / "python")

# (label, path in the result JSON, lower is better?)
FIGURES = [
    ("learners connected+joined", ("connect", "connected_joined"), False),
    ("connect+join time, s", ("connect", "elapsed_s"), True),
    ("join ack p99, ms", ("connect", "join_latency", "p99_ms"), True),
    ("start→on screen p50, ms", ("start", "on_screen_parallel", "p50_ms"), True),
    ("start→on screen p99, ms", ("start", "on_screen_parallel", "p99_ms"), True),
    ("start→on screen max, ms", ("start", "on_screen_parallel", "max_ms"), True),
    ("steady answers/s acked", ("acks", "steady_rate_per_s"), False),
    ("steady ack p50, ms", ("acks", "steady", "p50_ms"), True),
    ("steady ack p99, ms", ("acks", "steady", "p99_ms"), True),
    ("burst answers/s acked", ("acks", "burst_rate_per_s"), False),
    ("burst ack p50, ms", ("acks", "burst", "p50_ms"), True),
    ("burst ack p99, ms", ("acks", "burst", "p99_ms"), True),
    ("burst seconds with ack p99 > 250 ms", ("_derived", "burst_seconds_over_250"), True),
    ("worst 1-s burst ack p99, ms", ("_derived", "burst_worst_second_ms"), True),
    ("submit ack p99, ms", ("submit", "latency", "p99_ms"), True),
    ("ack errors (busy/retry/...)", ("_derived", "ack_error_count"), True),
    ("hub RSS idle, MB", ("memory", "idle_rss_mb"), True),
    ("hub RSS per 1,000 learners, MB", ("memory", "mb_per_1000_learners"), True),
    ("hub CPU connect, cores", ("cpu_connect", "hub_cores"), True),
    ("hub CPU steady, cores", ("cpu", "steady", "hub_cores"), True),
    ("hub CPU burst, cores", ("cpu", "burst", "hub_cores"), True),
    ("deadline→all scored, s", ("close", "deadline_to_all_scored_s"), True),
    ("deadline→exam closed, s", ("close", "deadline_to_exam_closed_s"), True),
    ("deadline→results.xlsx, s", ("close", "deadline_to_xlsx_s"), True),
    ("(same, after deadline+grace), s", ("close", "close_allowed_to_xlsx_s"), True),
    ("exam_report(), ms", ("_derived", "exam_report_ms"), True),
    ("acked answers missing in DB", ("integrity", "acked_missing_in_db"), True),
    ("stored but not acked", ("integrity", "db_not_acked"), True),
    ("hub log tracebacks", ("hub_log", "tracebacks"), True),
]


def get(res: dict, path: tuple) -> float | None:
    if path[0] == "_derived":
        if path[1] == "burst_seconds_over_250":
            return float(sum(1 for _, _, p99 in res.get("acks", {}).get("timeline_burst", []) if p99 > 250))
        if path[1] == "burst_worst_second_ms":
            return max((p99 for _, _, p99 in res.get("acks", {}).get("timeline_burst", [])), default=None)
        if path[1] == "ack_error_count":
            errs = res.get("acks", {}).get("errors", {})
            return float(sum(v for k, v in errs.items() if not k.endswith(("attempt.closed", "attempt.deadline_passed"))))
        if path[1] == "exam_report_ms":
            v = res.get("close", {}).get("report_timing", {}).get("exam_report_s")
            return None if v is None else v * 1000
    cur = res
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur if isinstance(cur, (int, float)) else None


def table(out: Path) -> str:
    runs = {"gevent": [], "eventlet": []}
    for f in sorted(glob.glob(str(out / "*.json"))):
        res = json.loads(Path(f).read_text())
        runs.setdefault(res["args"]["mode"], []).append(res)
    ng, ne = len(runs["gevent"]), len(runs["eventlet"])
    lines = [f"| figure | gevent (median of {ng}) | eventlet (median of {ne}) | eventlet/gevent |", "|---|---:|---:|---:|"]
    for label, path, _lower in FIGURES:
        med = {}
        for mode in ("gevent", "eventlet"):
            vals = [v for v in (get(r, path) for r in runs[mode]) if v is not None]
            med[mode] = statistics.median(vals) if vals else None
        g, e = med["gevent"], med["eventlet"]
        ratio = f"{e / g:.2f}" if g not in (None, 0) and e is not None else "–"
        fmt = lambda v: "–" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}".rstrip("0").rstrip("."))
        lines.append(f"| {label} | {fmt(g)} | {fmt(e)} | {ratio} |")
    if runs["gevent"] or runs["eventlet"]:
        any_run = (runs["gevent"] or runs["eventlet"])[0]
        lines.append("")
        lines.append(f"command (per run): {any_run.get('command')}")
        lines.append("dates: " + ", ".join(sorted(r["date"] for m in runs.values() for r in m)))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / time.strftime("cmp-%Y%m%d-%H%M")))
    ap.add_argument("--table", default=None, help="only print the table of a finished comparison")
    ap.add_argument("--first", choices=["gevent", "eventlet"], default="gevent")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.table:
        print(table(Path(a.table)))
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    Path("/tmp/diemcau_bench_logs").mkdir(exist_ok=True)
    extra = [x for x in a.rest if x != "--"]
    order = [a.first, "eventlet" if a.first == "gevent" else "gevent"]
    for i in range(a.runs):
        for mode in order:
            target = out / f"{mode}-{i + 1}.json"
            if target.exists():
                continue
            cmd = [PY, str(HERE / "exam_load.py"), "--mode", mode, "--json", str(target),
                   "--keep-log", f"/tmp/diemcau_bench_logs/{out.name}-{mode}-{i + 1}.hub.log", *extra]
            print(f"[{time.strftime('%H:%M:%S')}] run {i + 1}/{a.runs} {mode}: {' '.join(cmd[1:])}", flush=True)
            rc = subprocess.call(cmd, cwd=HERE.parent)
            if rc != 0:
                print(f"run failed with {rc}", flush=True)
        order.reverse()  # alternate who goes first
    print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
