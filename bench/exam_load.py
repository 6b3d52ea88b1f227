"""Load test of one hub process: N learners take one synchronized exam.

    .venv/bin/python bench/exam_load.py --mode gevent --learners 10000 --json out.json

1. a fresh database (PostgreSQL `diemcau_bench_<id>` or SQLite) with the demo province,
   N learners and exam #1 shortened to --duration-minutes; one socket token per learner;
2. ONE hub (`python -m server`) in --mode; idle RSS measured after the organizer's login;
3. --workers processes of asyncio learners connect over websocket (offering
   permessage-deflate like a browser) and join: the sealed papers arrive ahead;
4. the organizer opens the exam over HTTP (POST /exams/1/open); each learner records when
   `exam.start` arrived and when its paper was decrypted;
5. steady phase at --rate answers/s (Poisson, each learner in its code's order, sometimes
   changing an earlier answer), then the last --burst-seconds: --burst-share of the learners
   send --burst-rate answers/s between them and --submit-share submit;
6. the hub closes the rest at the deadline (+ grace); the script polls the database until no
   attempt is open and the exam is 'closed', then downloads results.xlsx as the organizer
   and times `exam_report` directly;
7. every acknowledged answer is checked against the database.

Always stops the hub and the workers by PID and drops its database.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psutil  # noqa: E402

from hubctl import PY, ROOT, BenchDB, CpuCap, Hub, Organizer, PgActivity, Sampler, free_port, hub_env, pct, prepare  # noqa: E402
from learners import raise_fd_limit, worker_main  # noqa: E402

mono = time.monotonic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["gevent", "eventlet"], default="gevent")
    p.add_argument("--learners", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=500.0, help="answers/s across all learners, steady phase")
    p.add_argument("--duration-minutes", type=int, default=3)
    p.add_argument("--burst-seconds", type=float, default=25.0)
    p.add_argument("--burst-rate", type=float, default=1000.0, help="answers/s across all learners in the burst")
    p.add_argument("--burst-share", type=float, default=0.6, help="share of learners answering in the burst")
    p.add_argument("--submit-share", type=float, default=0.5, help="share of learners submitting in the burst")
    p.add_argument("--submit-model", choices=["review", "to-end"], default="review",
                   help="when early submitters press the button: after a 2-15 s review (realistic), or uniformly "
                        "between their last answer and the end (the stress case: a fifth in the last second)")
    p.add_argument("--change-prob", type=float, default=0.1, help="chance an answer changes an earlier one")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--connect-rate", type=float, default=500.0, help="new learners/s while connecting (at most)")
    p.add_argument("--connect-concurrency", type=int, default=64,
                   help="connects+joins in flight across all workers (more only overflows the hub's listen backlog)")
    p.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--grace", type=float, default=5.0, help="DIEMCAU_EXAM_GRACE_SECONDS")
    p.add_argument("--scheduler-interval", type=float, default=1.0)
    p.add_argument("--start", choices=["http", "scheduled"], default="http",
                   help="open through POST /exams/1/open, or set opens_at and let the hub's ticker open it")
    p.add_argument("--hub-env", action="append", default=[], help="extra KEY=VALUE for the hub")
    p.add_argument("--py-spy", type=float, default=0.0,
                   help="record a py-spy profile of the hub for this many seconds from the open (0: off)")
    p.add_argument("--py-spy-from", type=float, default=0.0,
                   help="start the py-spy profile this many seconds after the open (e.g. at the burst)")
    p.add_argument("--py-spy-rate", type=int, default=50, help="py-spy samples per second")
    p.add_argument("--py-spy-native", action="store_true", help="py-spy with C frames (pauses the hub per sample)")
    p.add_argument("--snapshots-at", type=float, default=0.0,
                   help="S seconds after the open, every bridge point's kiosk uploads one room snapshot at once (0: off)")
    p.add_argument("--snapshot-sites", type=int, default=164,
                   help="0: the control, nothing is sent and the windows are placed as in a burst (the p99's own swing)")
    p.add_argument("--snapshot-size", default="640x480", help="WxH of the room snapshots")
    p.add_argument("--camera-process", action="store_true",
                   help="camera work in a hub process of its own: the exam's hub runs ANALYSIS_WORKERS=0, the kiosks "
                        "upload to a second hub process (Redis between them), as a reverse proxy would route them")
    p.add_argument("--snapshot-sender-nice", type=int, default=19,
                   help="niceness of the threads that play the 164 cameras (19: they take only idle CPU; 0: as before 2026-12-04)")
    p.add_argument("--camera-nice", type=int, default=10, help="PROCESS_NICE of the camera process")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--hub-launcher", default=None, help="run this script instead of `python -m server` (bench/hub_debug.py)")
    p.add_argument("--keep-log", default=None, help="copy the hub log here")
    p.add_argument("--hub-cpu-max", type=float, default=0.0,
                   help="cap the hub process at this many cores (cgroup v1 cpu quota, 10 ms periods; needs root): "
                        "a slower machine's hub on this one (0: no cap)")
    p.add_argument("--ack-keys", default=None,
                   help="write every ok ack's (attempt_id, seq or -1 for a submission, sent wall, acked wall) here, "
                        "to join with the hub's HUB_DEBUG_HOPS stamps (bench/hops.py)")
    p.add_argument("--json", default=None, help="write all figures (and raw summaries) here")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


# --------------------------------------------------------------------------------
class Workers:
    def __init__(self, n: int, url: str, tokens: list[str], seed: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes, self.procs = [], []
        for w in range(n):
            parent, child = ctx.Pipe()
            cfg = {"url": url, "tokens": tokens[w::n], "exam_id": 1, "seed": seed}
            proc = ctx.Process(target=worker_main, args=(w, child, cfg), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.n_of = [len(tokens[w::n]) for w in range(n)]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def send(self, cmd: str, params_for: Any) -> None:
        for w, pipe in enumerate(self.pipes):
            pipe.send((cmd, params_for(w) if callable(params_for) else params_for))

    def gather(self, cmd: str, timeout: float) -> list[dict]:
        out: list[Any] = [None] * len(self.pipes)
        end = mono() + timeout
        while any(o is None for o in out):
            for w, pipe in enumerate(self.pipes):
                if out[w] is None and pipe.poll(0.05):
                    got_cmd, data = pipe.recv()
                    if got_cmd != cmd:
                        raise RuntimeError(f"worker {w} answered {got_cmd} to {cmd}")
                    if isinstance(data, dict) and "error" in data and len(data) == 1:
                        raise RuntimeError(f"worker {w} failed {cmd}:\n{data['error']}")
                    out[w] = data
            if mono() > end:
                raise TimeoutError(f"workers did not finish {cmd} in {timeout:.0f}s")
            if any(not p.is_alive() for p in self.procs):
                dead = [w for w, p in enumerate(self.procs) if not p.is_alive()]
                raise RuntimeError(f"worker(s) {dead} died during {cmd}")
        return out

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("quit", None))
            except Exception:  # noqa: BLE001
                pass
        end = mono() + 20
        for proc in self.procs:
            proc.join(max(0.1, end - mono()))
        for proc in self.procs:
            if proc.is_alive():
                os.kill(proc.pid, 15)
                proc.join(5)
            if proc.is_alive():
                os.kill(proc.pid, 9)
                proc.join(5)


def lat_stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(pct(values, 0.5) * 1000, 1), "p90_ms": round(pct(values, 0.9) * 1000, 1),
            "p99_ms": round(pct(values, 0.99) * 1000, 1), "max_ms": round(max(values) * 1000, 1)}


#: seconds after the open that the steady phase's figures are also given without (the start's aftermath)
SETTLE_S = 10.0


def per_second(samples: list[tuple[float, float, str]], t0: float, t1: float) -> list[tuple[int, int, float]]:
    """(second, acks sent in that second, p99 latency ms) timeline."""
    buckets: dict[int, list[float]] = {}
    for t, lat, _ in samples:
        if t0 <= t < t1:
            buckets.setdefault(int(t - t0), []).append(lat)
    return [(s, len(v), round(pct(v, 0.99) * 1000, 1)) for s, v in sorted(buckets.items())]


def lag_per_second(lags: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[int, float]]:
    """(second, largest loop lag ms) timeline of the workers' lag samples (wall time, lag s)."""
    worst: dict[int, float] = {}
    for t, lag in lags:
        if t0 <= t < t1:
            s = int(t - t0)
            worst[s] = max(worst.get(s, 0.0), lag)
    return [(s, round(v * 1000, 1)) for s, v in sorted(worst.items())]


# --------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    raise_fd_limit()
    run_id = f"{args.mode}_{os.getpid()}_{int(time.time())}"
    tmp = Path(tempfile.mkdtemp(prefix="diemcau_bench_"))
    instance = tmp / "instance"
    instance.mkdir()
    db = BenchDB(args.db, f"diemcau_bench_{run_id}", tmp)
    res: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "args": vars(args), "machine": {"cores": psutil.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1)},
    }
    hub = camera = workers = sampler = spy = pga = cap = None
    t_phase: dict[str, float] = {}
    try:
        # 1. database ------------------------------------------------------------
        t = mono()
        db.create()
        extra = {"DIEMCAU_EXAM_GRACE_SECONDS": str(args.grace), "DIEMCAU_SCHEDULER_INTERVAL": str(args.scheduler_interval)}
        for kv in args.hub_env:
            k, _, v = kv.partition("=")
            extra[k] = v
        model = ROOT.parent / "shared" / "models" / "yunet_s_640_640.onnx"
        if args.snapshots_at > 0 and model.is_file():
            extra.setdefault("DIEMCAU_FACE_MODEL", str(model))  # YuNet, as in production
        if args.camera_process:
            extra.update(REDIS_URL=args.redis_url, DIEMCAU_ANALYSIS_WORKERS="0")
        env = hub_env(db, args.mode, instance, extra)
        tokens = prepare(db, env, args.learners, args.duration_minutes, tmp / "tokens.txt")
        res["prepare_s"] = round(mono() - t, 1)
        log(f"database {db.name}: {args.learners} learners, exam {args.duration_minutes} min ({res['prepare_s']}s)")

        # 2. hub -----------------------------------------------------------------
        port = free_port()
        hub = Hub(env, port, tmp / "hub.log", args.hub_launcher).start()
        if args.hub_cpu_max > 0:
            cap = CpuCap(hub.pid, args.hub_cpu_max)
            log(f"hub capped at {args.hub_cpu_max} core")
        org = Organizer(hub.url)
        org.login()
        snap_burst = None
        if args.camera_process:
            camera_env = dict(env, DIEMCAU_ANALYSIS_WORKERS="2",
                              DIEMCAU_PROCESS_NICE=str(args.camera_nice))
            camera = Hub(camera_env, free_port(), tmp / "camera.log").start()
            log(f"camera process pid {camera.pid} on {camera.url}, nice {args.camera_nice}")
        if args.snapshots_at > 0:
            from snapshot_burst import SnapshotBurst

            w, h = (int(x) for x in args.snapshot_size.lower().split("x"))
            snap_burst = SnapshotBurst(hub.url, db, args.snapshot_sites, (w, h),
                                       upload_base=camera.url if camera is not None else None,
                                       sender_nice=args.snapshot_sender_nice)
            log(f"{len(snap_burst.kiosks)} kiosks signed in; snapshots of {w}x{h} at open + {args.snapshots_at:.0f}s")
        sampler = Sampler(hub.pid)
        sampler.start()
        pga = PgActivity(db)
        pga.start()
        time.sleep(3)
        base = sampler.snapshot()
        t_phase["idle"] = time.time()
        log(f"hub pid {hub.pid} on :{port} ({args.mode}), idle RSS {base['rss'] / 2**20:.1f} MB")

        # 3. learners connect and join ---------------------------------------------
        workers = Workers(args.workers, hub.url, tokens, args.seed)
        sampler.worker_pids = workers.pids
        t_phase["connect"] = time.time()
        per_worker_rate = args.connect_rate / args.workers
        workers.send("connect", {"rate": per_worker_rate, "concurrency": max(1, args.connect_concurrency // args.workers), "timeout": 60, "retries": 3,
                                 "deadline": args.learners / 20 + 300})
        conn = workers.gather("connect", args.learners / 20 + 400)
        t_phase["joined"] = time.time()
        n_ok = sum(c["ok"] for c in conn)
        fails: Counter = Counter()
        for c in conn:
            fails.update(c["failures"])
        deflate: Counter = Counter()
        for c in conn:
            deflate.update(c["deflate"])
        res["connect"] = {
            "learners": args.learners, "connected_joined": n_ok, "elapsed_s": round(t_phase["joined"] - t_phase["connect"], 1),
            "connect_latency": lat_stats([x for c in conn for x in c["connect_s"]]),
            "join_latency": lat_stats([x for c in conn for x in c["join_s"]]),
            "failures": dict(fails.most_common(10)), "retried": sum(c["retried"] for c in conn),
            "permessage_deflate_negotiated": dict(deflate),
            "sealed_paper_b64_bytes": (conn[0]["sealed_b64_bytes"] or [None])[0],
            "client_loop_lag": [c["lag"] for c in conn],
        }
        log(f"connected+joined {n_ok}/{args.learners} in {res['connect']['elapsed_s']}s; deflate {dict(deflate)}; "
            f"join p99 {res['connect']['join_latency'].get('p99_ms')} ms; failures {dict(fails.most_common(3))}")
        time.sleep(5)  # settle, then measure memory
        joined = sampler.snapshot()
        res["memory"] = {
            "idle_rss_mb": round(base["rss"] / 2**20, 1), "joined_rss_mb": round(joined["rss"] / 2**20, 1),
            "kb_per_learner": round((joined["rss"] - base["rss"]) / 1024 / max(n_ok, 1), 1),
            "mb_per_1000_learners": round((joined["rss"] - base["rss"]) / 2**20 / max(n_ok, 1) * 1000, 1),
            "hub_threads": joined["threads"],
        }
        res["cpu_connect"] = sampler.between(t_phase["connect"], t_phase["joined"])
        log(f"hub RSS {res['memory']['joined_rss_mb']} MB: {res['memory']['mb_per_1000_learners']} MB per 1,000 learners")

        # 4. open the exam -----------------------------------------------------------
        n_total = n_ok
        burst_per_learner = args.burst_rate * args.burst_seconds / max(args.burst_share * n_total, 1)
        exam_s = args.duration_minutes * 60
        run_params = {
            "rate": args.rate, "n_total": n_total, "burst_seconds": args.burst_seconds, "burst_share": args.burst_share,
            "burst_per_learner": burst_per_learner, "submit_share": args.submit_share, "change_prob": args.change_prob,
            "tail_seconds": 1.0, "submit_model": args.submit_model, "grace": args.grace, "close_timeout": 120.0, "start_timeout": 120.0,
            "hard_timeout": exam_s + args.grace + 300, "ack_keys": bool(args.ack_keys),
        }
        workers.send("run", run_params)
        time.sleep(1.0)
        if args.start == "http":
            t_open = mono()
            t_open_wall = time.time()
            org.open_exam()
            res["open_http_s"] = round(mono() - t_open, 3)
        else:
            # the hub's ticker opens it: the "organizer's request" is the planned time
            opens = time.time() + 3.0
            db.query("UPDATE exam SET opens_at = to_timestamp(%s) WHERE id = 1" if args.db == "postgresql"
                     else "UPDATE exam SET opens_at = datetime(%s, 'unixepoch') WHERE id = 1", (opens,))
            t_open_wall = opens
            t_open = mono() + (opens - time.time())
        if args.py_spy > 0:
            if args.py_spy_from > 0:  # start it later (e.g. for the burst) from a timer thread
                import threading

                holder: list = []
                timer = threading.Timer(args.py_spy_from, lambda: holder.append(
                    start_py_spy(hub.pid, args.py_spy, tmp / "hub-profile.txt", args.py_spy_rate,
                                 args.py_spy_native)))
                timer.start()

                class _Later:
                    def wait(self, timeout=None):
                        timer.join()
                        return holder[0].wait(timeout) if holder else None

                    def poll(self):
                        return holder[0].poll() if holder else 0

                    def terminate(self):
                        timer.cancel()
                        if holder:
                            holder[0].terminate()

                spy = _Later()
            else:
                spy = start_py_spy(hub.pid, args.py_spy, tmp / "hub-profile.txt", args.py_spy_rate,
                                 args.py_spy_native)
        deadline = wait_deadline(db, 30)
        if snap_burst is not None:
            snap_burst.at_wall = t_open_wall + args.snapshots_at
            snap_burst.start()
        t_phase["open"] = t_open_wall
        burst_start = deadline - args.burst_seconds
        res["wall"] = {"open": t_open_wall, "burst_start": burst_start, "deadline": deadline}
        log(f"exam open; deadline in {deadline - time.time():.0f}s; burst from {args.burst_seconds:.0f}s before")

        # 5/6. the deadline and the close ------------------------------------------------
        closing = watch_close(db, deadline, args.grace, timeout=args.grace + 300)
        t_closed = closing.get("exam_closed_wall")
        if t_closed:
            x_s, x_status, x_bytes = org.results_xlsx()
            closing["xlsx_get_s"] = round(x_s, 3)
            closing["xlsx_status"] = x_status
            closing["xlsx_bytes"] = x_bytes
            closing["deadline_to_xlsx_s"] = round(t_closed + x_s - deadline, 2)
            closing["close_allowed_to_xlsx_s"] = round(t_closed + x_s - deadline - args.grace, 2)
        closing["report_timing"] = report_timing(env)
        res["close"] = closing
        log(f"close: {json.dumps({k: v for k, v in closing.items() if k != 'timeline'})}")

        runs = workers.gather("run", exam_s + args.grace + 400)
        t_phase["done"] = time.time()
        res.update(summarize_run(runs, t_open, t_open_wall, burst_start, deadline, args))
        if args.ack_keys:
            Path(args.ack_keys).parent.mkdir(parents=True, exist_ok=True)
            Path(args.ack_keys).write_text(json.dumps([k for r in runs for k in r["ack_keys"]]))
        if snap_burst is not None:
            from snapshot_burst import ack_windows

            snap_burst.join(60)
            res["snapshots"] = dict(snap_burst.result)
            res["snapshots"]["acks"] = ack_windows([a for r in runs for a in r["acks"]], snap_burst.result)
            log(f"snapshots: {json.dumps(res['snapshots'])}")
        res["cpu"] = {
            "steady": sampler.between(t_open_wall + 5, burst_start),
            "burst": sampler.between(burst_start, deadline),
            "close": sampler.between(deadline, (t_closed or deadline + args.grace + 5) + 1),
        }

        # 7. acknowledged vs stored ----------------------------------------------------
        res["integrity"] = check_integrity(db, runs)
        log(f"integrity: {res['integrity']}")
        res["hub_log"] = hub.log_problems()
        if camera is not None:
            res["camera_log"] = camera.log_problems()
            cpu = psutil.Process(camera.pid).cpu_times()
            res["camera_process"] = {"pid": camera.pid, "nice": args.camera_nice, "cpu_s": round(cpu.user + cpu.system, 1)}
        pga.stop()
        res["pg_activity"] = {
            "steady": pg_window(pga, t_open_wall + 5, burst_start),
            "burst": pg_window(pga, burst_start, deadline),
            "close": pg_window(pga, deadline, (t_closed or deadline + args.grace + 5) + 1),
            "raw": pga.samples,
        }
        # every half second, in cores: the hub, its analysis processes, PostgreSQL, the
        # simulated learners, this process (the camera senders), the machine's idle and
        # steal (a shared VM's neighbours).
        res["cpu_timeline"] = [
            {"t": round(b["t"] - t_open_wall, 1),
             **{k: round((b[k] - a[k]) / (b["t"] - a["t"]), 2)
                for k in ("hub_cpu", "hub_children_cpu", "pg_cpu", "workers_cpu", "bench_cpu", "idle", "steal")}}
            for a, b in zip(sampler.samples, sampler.samples[1:]) if b["t"] > a["t"]
        ]
        res["hub_cpu_timeline"] = [
            (round(b["t"] - t_open_wall, 1), round((b["hub_cpu"] - a["hub_cpu"]) / (b["t"] - a["t"]), 2),
             round((b["pg_cpu"] - a["pg_cpu"]) / (b["t"] - a["t"]), 2), round(b["rss"] / 2**20))
            for a, b in zip(sampler.samples[::2], sampler.samples[2::2]) if b["t"] > a["t"]
        ]
        if spy is not None:
            spy.wait(args.py_spy + 60)
            res["py_spy_raw"] = str(tmp / "hub-profile.txt")
    finally:
        if pga is not None:
            pga.stop()
        if spy is not None and spy.poll() is None:
            spy.terminate()
        if workers is not None:
            workers.stop()
        if sampler is not None:
            sampler.stop()
        if camera is not None:
            camera.stop()
            if args.keep_log:
                shutil.copy(camera.log_path, str(args.keep_log) + ".camera.log")
        if cap is not None:
            res["hub_cpu_cap"] = cap.stats()
        if hub is not None:
            hub.stop()
            if args.keep_log:
                shutil.copy(hub.log_path, args.keep_log)
            if spy is not None and (tmp / "hub-profile.txt").exists() and args.keep_log:
                shutil.copy(tmp / "hub-profile.txt", str(args.keep_log) + ".spy.txt")
        if cap is not None:
            cap.remove()
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def pg_window(pga: PgActivity, t0: float, t1: float) -> dict:
    rows = [(t, r) for t, r in pga.samples if t0 <= t < t1]
    if not rows:
        return {}
    seen: Counter = Counter()
    for _, rs in rows:
        for st, wait, q, n, _ in rs:
            seen[f"{st} | {wait} | {q}"] += n
    return {"samples": len(rows), "peak_connections": max(sum(r[3] for r in rs) for _, rs in rows),
            "mean_by_kind": {k: round(v / len(rows), 2) for k, v in seen.most_common(10)}}


def start_py_spy(pid: int, seconds: float, out: Path, rate: int = 50, native: bool = False) -> subprocess.Popen:
    spy = str(ROOT / ".venv" / "bin" / "py-spy")
    # --native (C frames too: inside the garbage collector, the driver) pauses the process
    # for each sample; without it py-spy reads the process while it runs.
    how = ["--native"] if native else ["--nonblocking"]
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
                             *how, "--format", "raw", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_deadline(db: BenchDB, timeout: float) -> float:
    from datetime import datetime, timezone

    end = mono() + timeout
    while mono() < end:
        rows = db.query("SELECT ends_at FROM exam WHERE id = 1 AND status = 'open'")
        if rows and rows[0][0] is not None:
            v = rows[0][0]
            if isinstance(v, str):
                v = datetime.fromisoformat(v)
            if v.tzinfo is None:
                v = v.replace(tzinfo=timezone.utc)
            return v.timestamp()
        time.sleep(0.05)
    raise TimeoutError("exam did not open")


def watch_close(db: BenchDB, deadline: float, grace: float, timeout: float) -> dict:
    """Poll the database from the deadline: when is no attempt of exam 1 open, when is the
    exam 'closed' (the ticker closes it after its attempts)."""
    out: dict[str, Any] = {}
    while time.time() < deadline - 0.5:
        time.sleep(min(1.0, deadline - 0.5 - time.time()))
    end = time.time() + timeout
    conn = db.connect()
    try:
        cur = conn.cursor()
        while time.time() < end:
            cur.execute("SELECT count(*) FROM attempt WHERE exam_id = 1 AND status IN ('pending', 'in_progress')")
            n_open = cur.fetchone()[0]
            cur.execute("SELECT status FROM exam WHERE id = 1")
            status = cur.fetchone()[0]
            now = time.time()
            if n_open == 0 and "all_closed_wall" not in out:
                out["all_closed_wall"] = now
            if status == "closed":
                out["exam_closed_wall"] = now
                break
            time.sleep(0.05)
        cur.execute("SELECT count(*), count(score), count(*) FILTER (WHERE status = 'submitted'), "
                    "count(*) FILTER (WHERE status = 'closed') FROM attempt WHERE exam_id = 1"
                    if db.kind == "postgresql" else
                    "SELECT count(*), count(score), sum(status = 'submitted'), sum(status = 'closed') FROM attempt WHERE exam_id = 1")
        total, scored, submitted, closed = cur.fetchone()
        cur.close()
    finally:
        conn.close()
    out.update(attempts=total, scored=scored, submitted=submitted, closed_by_hub=closed)
    if "all_closed_wall" in out:
        out["deadline_to_all_scored_s"] = round(out["all_closed_wall"] - deadline, 2)
        out["close_allowed_to_all_scored_s"] = round(out["all_closed_wall"] - deadline - grace, 2)
    if "exam_closed_wall" in out:
        out["deadline_to_exam_closed_s"] = round(out["exam_closed_wall"] - deadline, 2)
        out["close_allowed_to_exam_closed_s"] = round(out["exam_closed_wall"] - deadline - grace, 2)
    return out


def report_timing(env: dict) -> dict:
    try:
        out = subprocess.run([PY, str(ROOT / "bench" / "report_timing.py"), "1"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as err:  # noqa: BLE001
        return {"error": repr(err)}


def summarize_run(runs: list[dict], t_open: float, t_open_wall: float, burst_start: float, deadline: float, args) -> dict:
    start = [s for r in runs for s in r["start"]]
    n = sum(r["n"] for r in runs)
    recv = [rx - t_open for rx, _, _ in start]
    ready = [rd - t_open for _, rd, _ in start]
    # each browser decrypts its own paper in parallel: arrival + its own decrypt time
    parallel = [rx + d - t_open for rx, _, d in start]
    acks = [a for r in runs for a in r["acks"]]
    steady = [lat for t, lat, ph in acks if ph == "s"]
    burst = [lat for t, lat, ph in acks if ph == "b"]
    steady_t0 = min((t for t, _, ph in acks if ph == "s"), default=burst_start)
    errors: Counter = Counter()
    for r in runs:
        errors.update(r["ack_errors"])
    submits = [lat for r in runs for _, lat in r["submits"]]
    sub_err: Counter = Counter()
    ev: Counter = Counter()
    disc: Counter = Counter()
    for r in runs:
        sub_err.update(r["submit_errors"])
        ev.update(r["events"])
        disc.update(r["disconnects"])
    closed_rx = [t - t_open for r in runs for t in r["closed_rx"]]
    steady_len = burst_start - steady_t0
    out = {
        "start": {
            "learners": n, "got_start": len(start),
            "receive": lat_stats(recv), "on_screen_measured": lat_stats(ready), "on_screen_parallel": lat_stats(parallel),
            "within_2s_parallel": sum(1 for x in parallel if x <= 2.0),
            "decrypt_ms_p50": round(pct([d for _, _, d in start], 0.5) * 1000, 2) if start else None,
        },
        "acks": {
            "steady": lat_stats(steady), "burst": lat_stats(burst),
            # the steady phase split at open + SETTLE_S: before it the hub is still delivering
            # the start to thousands, and a learner answers the moment its paper arrives
            # (no reading time), so those answers queue behind the start.
            "steady_first_s": lat_stats([lat for t, lat, ph in acks if ph == "s" and t < t_open_wall + SETTLE_S]),
            "steady_settled": lat_stats([lat for t, lat, ph in acks if ph == "s" and t >= t_open_wall + SETTLE_S]),
            "steady_rate_per_s": round(len(steady) / steady_len, 1) if steady_len > 0 else None,
            "burst_rate_per_s": round(len(burst) / (args.burst_seconds - 1.0), 1),
            "errors": dict(errors), "sent": sum(r["sent"] for r in runs), "acked_ok": len(acks),
            "lost_to_disconnect": sum(r["lost_acks"] for r in runs), "unacked_at_end": sum(r["unacked"] for r in runs),
            "timeline_burst": per_second(acks, burst_start, deadline),
            "timeline_steady": per_second([a for a in acks if a[2] == "s"], steady_t0, burst_start),
        },
        "submit": {"n": len(submits), "latency": lat_stats(submits), "errors": dict(sub_err),
                   "timeline": per_second([(t, lat, "") for r in runs for t, lat in r["submits"]], burst_start, deadline)},
        "attempt_closed_events": {"n": len(closed_rx), "after_open_p50_s": round(pct(closed_rx, 0.5), 2) if closed_rx else None},
        "results_received": sum(r["results"] for r in runs),
        "client": {"events": dict(ev), "disconnects": dict(disc),
                   "disconnect_info": [d for r in runs for d in r.get("disconnect_info", [])][:100],
                   "disconnect_times_after_open_s": sorted(round(t - t_open_wall, 1) for r in runs for t in r["disconnect_times"])[:200], "reconnects": sum(r["reconnects"] for r in runs),
                   "loop_lag": [r["lag"] for r in runs], "workers_cpu_s": [round(r["cpu"], 1) for r in runs],
                   # the simulated learners' own loops in the burst: per second, the largest lag of any
                   # worker's 50 ms sleep (an ack that arrives while its loop is late is timed late).
                   "loop_lag_burst_ms": lag_per_second([x for r in runs for x in r["lag_raw"]], burst_start, deadline)},
    }
    return out


def check_integrity(db: BenchDB, runs: list[dict]) -> dict:
    acked: dict[tuple[int, int], tuple[int, Any]] = {}
    for r in runs:
        for a, q, s, c in r["acked"]:
            old = acked.get((a, q))
            if old is None or old[0] < s:
                acked[(a, q)] = (s, c)
    rows = db.query("SELECT a.attempt_id, a.question_id, a.seq, a.choice_id FROM answer a "
                    "JOIN attempt t ON t.id = a.attempt_id WHERE t.exam_id = 1")
    stored = {(a, q): (s, c) for a, q, s, c in rows}
    missing = [k for k in acked if k not in stored]
    stale = [k for k, (s, c) in acked.items() if k in stored and stored[k][0] < s]
    differ = [k for k, (s, c) in acked.items() if k in stored and stored[k][0] == s and stored[k][1] != c]
    extra = [k for k in stored if k not in acked]
    newer = [k for k, (s, c) in acked.items() if k in stored and stored[k][0] > s]
    return {"acked_answers": len(acked), "db_answers": len(stored), "acked_missing_in_db": len(missing),
            "db_older_than_ack": len(stale), "db_choice_differs": len(differ), "db_newer_than_ack": len(newer),
            "db_not_acked": len(extra), "match": not missing and not stale and not differ and len(acked) == len(stored)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def headline(res: dict) -> str:
    c, s, a, m, cl = res.get("connect", {}), res.get("start", {}), res.get("acks", {}), res.get("memory", {}), res.get("close", {})
    cpu = res.get("cpu", {})
    lines = [
        f"mode {res['args']['mode']}, {res['args']['learners']} learners, db {res['args']['db']}, {res['date']}",
        f"  learners connected+joined : {c.get('connected_joined')} / {c.get('learners')}  (deflate negotiated: {c.get('permessage_deflate_negotiated')})",
        f"  start → questions on screen: p50 {s.get('on_screen_parallel', {}).get('p50_ms')} ms, p99 {s.get('on_screen_parallel', {}).get('p99_ms')} ms, "
        f"max {s.get('on_screen_parallel', {}).get('max_ms')} ms (measured incl. client queueing: p99 {s.get('on_screen_measured', {}).get('p99_ms')} ms); "
        f"{s.get('within_2s_parallel')} / {s.get('learners')} within 2 s",
        f"  ack latency steady         : p50 {a.get('steady', {}).get('p50_ms')} ms, p99 {a.get('steady', {}).get('p99_ms')} ms, max {a.get('steady', {}).get('max_ms')} ms at {a.get('steady_rate_per_s')} answers/s",
        f"  ack latency steady, split  : before open+{SETTLE_S:.0f}s {a.get('steady_first_s')}; after {a.get('steady_settled')}",
        f"  ack latency burst          : p50 {a.get('burst', {}).get('p50_ms')} ms, p99 {a.get('burst', {}).get('p99_ms')} ms, max {a.get('burst', {}).get('max_ms')} ms at {a.get('burst_rate_per_s')} answers/s",
        f"  submit latency             : {res.get('submit', {}).get('latency')}",
        f"  ack errors                 : {a.get('errors')}",
        f"  hub RSS                    : idle {m.get('idle_rss_mb')} MB, joined {m.get('joined_rss_mb')} MB → {m.get('mb_per_1000_learners')} MB / 1,000 learners",
        f"  hub CPU (cores)            : connect {res.get('cpu_connect', {}).get('hub_cores')}, steady {cpu.get('steady', {}).get('hub_cores')}, "
        f"burst {cpu.get('burst', {}).get('hub_cores')}, close {cpu.get('close', {}).get('hub_cores')}  "
        f"(postgres steady {cpu.get('steady', {}).get('pg_cores')}, burst {cpu.get('burst', {}).get('pg_cores')}, close {cpu.get('close', {}).get('pg_cores')})",
        f"  deadline → all scored      : {cl.get('deadline_to_all_scored_s')} s ({cl.get('close_allowed_to_all_scored_s')} s after deadline+grace)",
        f"  deadline → exam closed     : {cl.get('deadline_to_exam_closed_s')} s; + results.xlsx GET {cl.get('xlsx_get_s')} s → "
        f"{cl.get('deadline_to_xlsx_s')} s ({cl.get('close_allowed_to_xlsx_s')} s after deadline+grace)",
        f"  exam_report()              : {cl.get('report_timing', {}).get('exam_report_s')} s; workbook {cl.get('report_timing', {}).get('workbook_s')} s",
        f"  integrity                  : {res.get('integrity')}",
        f"  hub log                    : {res.get('hub_log', {}).get('tracebacks')} tracebacks, {res.get('hub_log', {}).get('error_lines')} error lines",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        res = run(args)
    except Exception:
        traceback.print_exc()
        return 1
    print(headline(res), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
