"""Does a slow query block the hub's loop? A row lock held from outside for 3 s.

    .venv/bin/python bench/slow_query.py --mode gevent --learners 1000

The exam is opened for everyone; then, three times (--locks), a psycopg2 transaction in this process takes
`SELECT ... FROM attempt WHERE id IN (<50 fresh victims>) FOR UPDATE` and holds it --hold seconds (12 s apart).
Meanwhile:
  * "victims" (learners whose attempt rows are locked) each send one answer: the answer
    writer must wait for the lock;
  * other learners keep sending answers (--rate answers/s);
  * other learners run `time.sync` round trips every --sync-interval s (no database).
If the driver blocked the loop, every time.sync would stall for the lock's duration; with
psycogreen only the greenlet that waits on PostgreSQL is suspended. The script reports
time.sync and answer-ack latencies before, during and after the lock.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from exam_load import Workers, lat_stats, log, wait_deadline  # noqa: E402
from hubctl import BenchDB, Hub, Organizer, free_port, hub_env, prepare  # noqa: E402
from learners import raise_fd_limit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["gevent", "eventlet"], default="gevent")
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--victims", type=int, default=50)
    ap.add_argument("--syncers", type=int, default=100)
    ap.add_argument("--sync-interval", type=float, default=0.2)
    ap.add_argument("--rate", type=float, default=50.0, help="answers/s from other learners")
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--locks", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="diemcau_slowq_"))
    (tmp / "instance").mkdir()
    db = BenchDB("postgresql", f"diemcau_bench_slowq_{a.mode}_{os.getpid()}", tmp)
    hub = workers = None
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(["slow_query.py"] + sys.argv[1:])}
    try:
        db.create()
        env = hub_env(db, a.mode, tmp / "instance")
        tokens = prepare(db, env, a.learners, 60, tmp / "tokens.txt")
        hub = Hub(env, free_port(), tmp / "hub.log").start()
        org = Organizer(hub.url)
        org.login()
        workers = Workers(a.workers, hub.url, tokens, 7)
        workers.send("connect", {"rate": 100.0, "concurrency": 16, "timeout": 60, "retries": 3, "deadline": 600})
        conn = workers.gather("connect", 700)
        log(f"{sum(c['ok'] for c in conn)} learners joined ({a.mode})")
        org.open_exam()
        wait_deadline(db, 30)
        time.sleep(2.0)  # every learner has its paper (exam.start)

        # who is who: victims from worker 0's learners, syncers and answerers from the rest
        local = [(w, i, att) for w, c in enumerate(conn) for i, att in sorted((int(k), v) for k, v in c["attempts"].items())]
        rng = random.Random(3)
        rng.shuffle(local)
        # three locks, each on a fresh set of victims, with quiet stretches around them
        t0 = time.time() + 2.0
        locks_at = [t0 + 8.0 + k * 12.0 for k in range(a.locks)]
        span = 8.0 + a.locks * 12.0
        until = t0 + span
        victim_sets = [local[k * a.victims:(k + 1) * a.victims] for k in range(a.locks)]
        used = a.victims * a.locks
        syncers = local[used: used + a.syncers]
        others = local[used + a.syncers:]
        plan: dict[int, list] = {w: [] for w in range(a.workers)}
        t = t0
        while True:
            t += rng.expovariate(a.rate)
            if t >= until:
                break
            w, i, _ = rng.choice(others)
            plan[w].append((i, t))
        for at, vs in zip(locks_at, victim_sets):  # each victim answers half a second into its lock
            for w, i, _ in vs:
                plan[w].append((i, at + 0.5 + rng.uniform(0, 0.2)))
        victims = [v for vs in victim_sets for v in vs]
        sync_of = {w: [i for ww, i, _ in syncers if ww == w] for w in range(a.workers)}
        workers.send("probe", lambda w: {"until": until, "sync_interval": a.sync_interval,
                                         "sync_learners": sync_of[w], "answer_plan": plan[w]})

        # the locks, from outside the hub
        held = []
        for at, vs in zip(locks_at, victim_sets):
            while time.time() < at:
                time.sleep(0.01)
            pg = db.connect()
            pg.autocommit = False
            cur = pg.cursor()
            ids = sorted(att for _, _, att in vs)
            cur.execute("SELECT id FROM attempt WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,))
            got = len(cur.fetchall())
            lk1 = time.time()
            time.sleep(a.hold)
            pg.commit()
            lk2 = time.time()
            pg.close()
            held.append((lk1, lk2))
            log(f"held FOR UPDATE on {got} attempt rows from +{lk1 - t0:.2f}s to +{lk2 - t0:.2f}s")
        out = workers.gather("probe", span + 120)

        victim_set = {(w, i) for w, i, _ in victims}
        sync = [(t, rtt) for o in out for t, rtt, _ in o["sync"]]
        answers = [(t, lat, (w, i) in victim_set, code) for w, o in enumerate(out) for t, lat, i, code in o["answers"]]

        def during(t):
            return any(l1 <= t < l2 for l1, l2 in held)

        def quiet(t):  # well away from any lock (and 6 s after the open)
            return t >= t0 + 4.0 and all(not (l1 - 1.0 <= t < l2 + 3.0) for l1, l2 in held)

        other_ans = [(t, lat) for t, lat, v, _ in answers if not v]
        res.update({
            "mode": a.mode, "learners": a.learners, "victims_per_lock": a.victims, "locks": len(held),
            "hold_s": [round(l2 - l1, 2) for l1, l2 in held],
            "time_sync": {"quiet": lat_stats([x for t, x in sync if quiet(t)]),
                          "during_lock": lat_stats([x for t, x in sync if during(t)])},
            "other_answers": {"quiet": lat_stats([x for t, x in other_ans if quiet(t)]),
                              "during_lock": lat_stats([x for t, x in other_ans if during(t)])},
            "victim_answers": lat_stats([lat for _, lat, v, _ in answers if v]),
            "answer_codes": {c: sum(1 for *_, cc in answers if cc == c) for c in {x[3] for x in answers}},
            "client_loop_lag": [o["lag"] for o in out],
            "hub_log": hub.log_problems(),
        })
        print(json.dumps({k: v for k, v in res.items() if k != "hub_log"}, indent=1))
        print("hub log:", res["hub_log"]["tracebacks"], "tracebacks")
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    finally:
        if workers is not None:
            workers.stop()
        if hub is not None:
            hub.stop()
        db.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
