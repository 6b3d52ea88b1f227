"""The answer writer's cost per batch on PostgreSQL, without the hub: round trips, wall
time, and the CPU of the process that sends them (what the hub pays for each batch).

    .venv/bin/python bench/writer_cost.py [--tree DIR] [--learners 3000] [--batches 150]

A fresh database with the demo province and exam #1 open; then, on one of the answer
writer's own connections (`delivery._writer_engine`: autocommit, the lane's transaction
inside its statements), `--batches` batches of `--answers` answers each, then as many of
the same answers plus `--submits` submissions (each attempt submitted once, after an
answer of its own has started it, as a learner's would be). Prints the
medians per batch of each kind as JSON. `--tree` imports `server` from another checkout
(a git worktree of an older commit) for an A/B; the database is made by this one's CLI.
In the hub every round trip also waits for a turn of the busy event loop, which this
does not show: the round trips are counted for that.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hubctl  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(hubctl.ROOT), help="the checkout whose `server` is measured")
    ap.add_argument("--learners", type=int, default=3000)
    ap.add_argument("--batches", type=int, default=150, help="batches of each kind")
    ap.add_argument("--answers", type=int, default=40, help="answers per batch")
    ap.add_argument("--submits", type=int, default=15, help="submissions per batch of the second kind")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args()
    if args.batches * args.submits + args.answers > args.learners:
        ap.error("--learners must hold --batches × --submits submitting attempts (each submits once)"
                 " and --answers others")

    tmp = Path(tempfile.mkdtemp(prefix="writer-cost-"))
    db = hubctl.BenchDB("postgresql", f"diemcau_bench_w{uuid.uuid4().hex[:8]}", tmp).create()
    try:
        env = hubctl.hub_env(db, "gevent", tmp / "instance")
        hubctl.flask_cli(env, "db", "upgrade")
        hubctl.flask_cli(env, "demo", "create", "--learners", str(args.learners))
        hubctl.flask_cli(env, "exam", "open", "1")
        for key in ("DATABASE_URL", "DIEMCAU_INSTANCE", "SECRET_KEY"):
            os.environ[key] = env[key]
        out = measure(args)
    finally:
        db.drop()
    out["tree"] = args.tree
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def measure(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(Path(args.tree).resolve()))
    import sqlalchemy as sa

    from server import create_app
    from server.core.timeutil import now_utc
    from server.exam.delivery import ANSWER, SUBMIT, Pending, _writer_engine, write_batch
    from server.exam.models import Attempt
    from server.exam.papers import load_code
    from server.extensions import db

    app = create_app()
    grace = timedelta(seconds=app.config["EXAM_GRACE_SECONDS"])
    with app.app_context():
        attempts = db.session.execute(
            sa.select(Attempt.id, Attempt.user_id, Attempt.code_id).where(Attempt.exam_id == 1).order_by(Attempt.id)
        ).all()
        codes = {code_id: load_code(code_id) for code_id in {a.code_id for a in attempts}}
        engine, _ = _writer_engine(app)
        sent: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        seq = 0

        # the attempts that answer and those that submit (each once), apart
        to_submit = iter(attempts[len(attempts) - args.batches * args.submits:])
        answering = attempts[: len(attempts) - args.batches * args.submits]

        def answers(k: int) -> list:
            nonlocal seq
            items = []
            for j in range(args.answers):
                a = answering[(k * args.answers + j) % len(answering)]
                code = codes[a.code_id]
                qid = code.paper[(k + j) % len(code.paper)]["id"]
                seq += 1
                items.append(Pending(ANSWER, a.id, a.user_id, a.code_id, qid, code.key[qid], False, seq, True))
            return items

        def run(batch: list) -> tuple[float, float, int]:
            del sent[:]
            w0, c0 = time.perf_counter(), time.process_time()
            with engine.connect() as conn:
                write_batch(conn, batch, now_utc(), grace, own_transaction=True)
            w1, c1 = time.perf_counter(), time.process_time()
            bad = [it.result for it in batch if not (it.result or {}).get("ok")]
            if bad:
                raise SystemExit(f"refused in the bench's batch: {bad[:3]}")
            return (w1 - w0) * 1000, (c1 - c0) * 1000, len(sent)

        for k in range(20):  # warm: connections, statement caches
            run(answers(k))
        # every attempt started (as a learner who submits has answered): one answer each
        for k in range(0, len(attempts), args.answers):
            batch = []
            for a in attempts[k : k + args.answers]:
                qid = codes[a.code_id].paper[0]["id"]
                seq += 1
                batch.append(Pending(ANSWER, a.id, a.user_id, a.code_id, qid, codes[a.code_id].key[qid], False, seq, True))
            run(batch)
        kinds: dict[str, list] = {"answers": [], "answers+submits": []}
        for k in range(args.batches):
            kinds["answers"].append(run(answers(k)))
            subs = [next(to_submit) for _ in range(args.submits)]
            batch = answers(k + 7) + [Pending(SUBMIT, a.id, a.user_id, a.code_id) for a in subs]
            kinds["answers+submits"].append(run(batch))
        engine.dispose()
    out = {"answers_per_batch": args.answers, "submits_per_batch": args.submits, "batches": args.batches}
    for kind, rows in kinds.items():
        out[kind] = {
            "wall_ms_p50": round(statistics.median(r[0] for r in rows), 3),
            "cpu_ms_p50": round(statistics.median(r[1] for r in rows), 3),
            "round_trips": sorted(set(r[2] for r in rows)),
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
