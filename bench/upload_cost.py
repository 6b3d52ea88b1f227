"""What one camera upload costs the hub's process, with nothing else running.

A fresh PostgreSQL database with the demo province (few learners), one hub, the 164
bridge points' kiosks signed in as in `exam_load.py --snapshots-at`; then `--rounds`
rounds of one upload per kiosk, sent `--concurrency` at a time. For each round: the hub's
CPU time (its own process, not the analysis processes) per upload, the wall time, and
the analysis processes' CPU. `--analysis-workers 0` leaves the analysis out, so the
figure is the upload alone (stored, committed, answered).

    .venv/bin/python bench/upload_cost.py [--rounds 3] [--concurrency 164] [--analysis-workers 0]
        [--py-spy F]   # py-spy raw profile of the hub over the rounds (then bench/spy_summary.py F)
        [--probe]      # a learner's time.sync round trips every 5 ms meanwhile (bench/rtt_probe.py,
                       # a process of its own): what the round does to everyone else's acks

With `--probe` each round also gives the round trip's p99 and max in the 2 s before the
round, in its first second, and over the rest of the round.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hubctl import ROOT, BenchDB, Hub, free_port, hub_env, pct, prepare  # noqa: E402
from snapshot_burst import SnapshotBurst  # noqa: E402


def cpu_of(proc: psutil.Process) -> tuple[float, float]:
    """(the process's own CPU seconds, its children's)"""
    own = proc.cpu_times()
    kids = 0.0
    for c in proc.children(recursive=True):
        try:
            t = c.cpu_times()
            kids += t.user + t.system
        except psutil.Error:
            pass
    return own.user + own.system, kids


def probe_windows(samples: list, t0: float, end: float) -> dict:
    """The probe's round trips before the round, in its first second, and after it until the end."""
    def stats(a: float, b: float) -> dict:
        lat = sorted(ms for t, ms in samples if a <= t < b)
        if not lat:
            return {"n": 0}
        return {"n": len(lat), "p50_ms": round(pct(lat, 0.5), 2), "p99_ms": round(pct(lat, 0.99), 2), "max_ms": lat[-1]}

    return {"before": stats(t0 - 2.0, t0), "first_s": stats(t0, t0 + 1.0), "rest": stats(t0 + 1.0, max(end, t0 + 2.0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=164)
    ap.add_argument("--sites", type=int, default=164)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--analysis-workers", type=int, default=0)
    ap.add_argument("--mode", default="gevent")
    ap.add_argument("--hub-env", action="append", default=[], metavar="K=V")
    ap.add_argument("--py-spy", metavar="FILE", help="profile the hub over the rounds (py-spy raw format)")
    ap.add_argument("--probe", action="store_true", help="measure a learner's round trips meanwhile")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="upload-cost-"))
    db = BenchDB("postgresql", f"diemcau_upload_{os.getpid()}", tmp).create()
    hub = None
    spy = None
    try:
        extra = {"DIEMCAU_ANALYSIS_WORKERS": str(args.analysis_workers)}
        model = ROOT.parent / "shared" / "models" / "yunet_s_640_640.onnx"
        if model.is_file():
            extra["DIEMCAU_FACE_MODEL"] = str(model)
        for kv in args.hub_env:
            k, _, v = kv.partition("=")
            extra[k] = v
        env = hub_env(db, args.mode, tmp / "instance", extra)
        tokens = prepare(db, env, 200, 120, tmp / "tokens.txt")
        hub = Hub(env, free_port(), tmp / "hub.log").start()
        w, h = (int(x) for x in args.size.lower().split("x"))
        burst = SnapshotBurst(hub.url, db, args.sites, (w, h), sender_nice=0)
        kiosks, jpegs = burst.kiosks, burst.jpegs
        proc = psutil.Process(hub.pid)
        # one upload each first: the first of a kind loads code and warms caches.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: kiosks[i].send(jpegs[i]), range(min(8, len(kiosks)))))
        time.sleep(2)
        if args.py_spy:
            spy = subprocess.Popen([str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(hub.pid), "--rate", "250", "--format", "raw",
                                    "--output", args.py_spy, "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)
        probe = None
        if args.probe:
            probe_out = tmp / "probe.json"
            probe = subprocess.Popen([sys.executable, str(ROOT / "bench" / "rtt_probe.py"), "--url", hub.url,
                                      "--token", tokens[0], "--seconds", str(args.rounds * 20 + 15),
                                      "--out", str(probe_out)])
            time.sleep(3)
        rounds = []
        for r in range(args.rounds):
            c0, k0 = cpu_of(proc)
            t0, t0_wall = time.perf_counter(), time.time()
            with ThreadPoolExecutor(args.concurrency) as pool:
                sent = list(pool.map(lambda i: kiosks[i].send(jpegs[i]), range(len(kiosks))))
            wall = time.perf_counter() - t0
            time.sleep(0.5)
            c1, k1 = cpu_of(proc)
            ok = sum(1 for _, status, _ in sent if status == 200)
            rounds.append({"uploads": len(sent), "ok": ok, "wall_s": round(wall, 2),
                           "hub_cpu_ms_per_upload": round((c1 - c0) * 1000 / len(sent), 2),
                           "children_cpu_s": round(k1 - k0, 2), "t0_wall": t0_wall, "end_wall": t0_wall + wall})
            print(json.dumps(rounds[-1]), flush=True)
            time.sleep(2.5)  # the analysis of the round (if on) and the writes settle
            if probe is not None:
                time.sleep(max(0.0, 20 - (time.time() - t0_wall)))  # rounds 20 s apart, as the probe expects
        if probe is not None:
            probe.wait(60)
            samples = json.loads(probe_out.read_text())
            for rd in rounds:
                rd["probe"] = probe_windows(samples, rd["t0_wall"], rd["end_wall"])
                print("probe", json.dumps(rd["probe"]), flush=True)
        per = [r["hub_cpu_ms_per_upload"] for r in rounds]
        if probe is not None:
            for key in ("before", "first_s", "rest"):
                vals = [r["probe"][key]["p99_ms"] for r in rounds if r["probe"][key].get("n")]
                if vals:
                    print(f"probe round trip p99, {key}: median {statistics.median(vals)} ms ({vals})")
        out = {"args": vars(args), "rounds": rounds, "median_hub_cpu_ms_per_upload": statistics.median(per)}
        print(f"hub CPU per upload: median {out['median_hub_cpu_ms_per_upload']} ms over {len(rounds)} rounds "
              f"of {len(kiosks)} ({args.size}, {args.concurrency} at a time)")
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        if hub is not None:
            hub.stop()
        db.drop()


if __name__ == "__main__":
    main()
