"""Where does a learner's connect + join time go? Times each step for N learners connecting
at once (one process, asyncio): websocket handshake, Engine.IO open, namespace connect,
attempt.join, and an idle time.sync round trip. Optionally dumps the hub's stacks with
py-spy while the connects are in flight.

    .venv/bin/python bench/probe_connect.py --mode gevent --learners 200 [--spy]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402

from hubctl import ROOT, BenchDB, Hub, free_port, hub_env, pct, prepare  # noqa: E402
from learners import raise_fd_limit  # noqa: E402


async def recv_until(ws, prefix):
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"socket ended: {msg.type} {msg.data} {msg.extra}")
        if msg.data == "2":
            await ws.send_str("3")
        elif msg.data.startswith(prefix):
            return msg


async def one(session, url, token, out, concurrency):
    async with concurrency:
        t0 = time.monotonic()
        ws = await session.ws_connect(url + "/socket.io/?EIO=4&transport=websocket", compress=15)
        t1 = time.monotonic()
        await ws.receive()
        t2 = time.monotonic()
        await ws.send_str('40/exam,' + json.dumps({"token": token}))
        await recv_until(ws, "40/exam,")
        t3 = time.monotonic()
        await ws.send_str('42/exam,1["attempt.join",{"exam_id":1}]')
        await recv_until(ws, "43/exam,1[")
        t4 = time.monotonic()
        await ws.send_str('42/exam,2["time.sync",{"t0":1}]')
        await recv_until(ws, "43/exam,2[")
        t5 = time.monotonic()
        out.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, ws))


async def main_async(url, tokens, conc, spy_pid):
    out = []
    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        spy = None
        if spy_pid:
            async def dump():
                await asyncio.sleep(0.8)
                p = await asyncio.create_subprocess_exec(str(ROOT / ".venv/bin/py-spy"), "dump", "--pid", str(spy_pid),
                                                         stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                data, _ = await p.communicate()
                return data.decode()
            spy = asyncio.create_task(dump())
        t = time.monotonic()
        await asyncio.gather(*(one(session, url, tok, out, sem) for tok in tokens))
        total = time.monotonic() - t
        dump_text = await spy if spy else ""
        for *_, ws in out:
            await ws.close()
    return out, total, dump_text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="gevent")
    ap.add_argument("--learners", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=1000)
    ap.add_argument("--spy", action="store_true")
    ap.add_argument("--record", default="", help="py-spy record (raw collapsed stacks) of the hub into this file")
    ap.add_argument("--hub-env", action="append", default=[])
    a = ap.parse_args()
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="diemcau_probe_"))
    (tmp / "instance").mkdir()
    db = BenchDB("postgresql", f"diemcau_bench_probe_{os.getpid()}", tmp).create()
    hub = None
    try:
        extra = dict(kv.split("=", 1) for kv in a.hub_env)
        env = hub_env(db, a.mode, tmp / "instance", extra)
        tokens = prepare(db, env, a.learners, 120, tmp / "t.txt")
        hub = Hub(env, free_port(), tmp / "hub.log").start()
        rec = None
        if a.record:
            rec = subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(hub.pid), "--format", "raw",
                                    "--rate", "200", "-o", a.record], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        import psutil
        hp = psutil.Process(hub.pid)
        def pgcpu():
            return sum(sum(p.info["cpu_times"][:2]) for p in psutil.process_iter(["name", "cpu_times"])
                       if (p.info["name"] or "").startswith("postgres") and p.info["cpu_times"])
        def sessions():
            return db.query("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")[0][0]
        s0 = sessions(); pg0 = pgcpu()
        c0 = sum(hp.cpu_times()[:2]); me0 = sum(os.times()[:2])
        out, total, dump_text = asyncio.run(main_async(hub.url, tokens, a.concurrency, hub.pid if a.spy else 0))
        if rec:
            rec.send_signal(2)
            rec.wait(30)
        c1 = sum(hp.cpu_times()[:2]); me1 = sum(os.times()[:2])
        print(f"postgres CPU {pgcpu() - pg0:.2f}s, new postgres sessions {sessions() - s0}")
        print(f"hub CPU {c1 - c0:.2f}s ({(c1 - c0) / len(tokens) * 1000:.1f} ms/learner, {(c1 - c0) / total:.2f} cores), client CPU {me1 - me0:.2f}s")
        names = ["ws handshake", "eio open", "ns connect", "attempt.join", "time.sync"]
        print(f"{a.mode}: {len(out)} learners in {total:.2f}s")
        for i, n in enumerate(names):
            v = [o[i] for o in out]
            print(f"  {n:13s} p50 {pct(v, .5)*1000:8.1f} ms  p99 {pct(v, .99)*1000:8.1f} ms  max {max(v)*1000:8.1f} ms")
        if dump_text:
            print(dump_text[:20000])
        print("hub log problems:", hub.log_problems()["sample"][:5])
    finally:
        if hub:
            hub.stop()
        db.drop()


if __name__ == "__main__":
    main()
