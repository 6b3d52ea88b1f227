"""Live webcast relay benchmark: one rapporteur at 1.5 Mbit/s to 164 bridge points.

    .venv/bin/python bench/webcast_bench.py --sites 164 --seconds 45 --runs 3

1. a fresh SQLite database with the demo province (164 bridge points), a rapporteur and,
   per run, a live lecture; a kiosk token per bridge point;
2. a recorded WebM (VP8 + Opus, 1 s keyframes, ~1.5 Mbit/s; made once by ffmpeg and
   cached under bench/.cache/) is replayed by a publisher socket into ONE hub process
   (gevent), cut every --slice-ms at arbitrary bytes and paced at --kbps, like the stage
   page's MediaRecorder;
3. --workers processes hold the simulated bridge points: minimal Engine.IO/Socket.IO
   websocket clients on aiohttp that subscribe to the lecture, ack every media.data and
   note when each piece arrived (time.monotonic is system-wide, so it compares with the
   publisher's send times);
4. one site stops acking after --stall-after seconds (a room whose link died without
   closing): the hub should cut it to the live edge, then disconnect it, while the
   others see no change.

Printed per run and as the median of the runs: hub CPU (cores, while streaming),
delivery latency p50/p99 (chunk sent by the publisher → the piece that completes it
received by a site), bytes delivered vs sent per site, and the stalled site's fate with
the others' p99 before and after it stalled. Stops the hub and the workers by PID.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from bisect import bisect_left
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402

from hubctl import ROOT, SECRET, BenchDB, Hub, Sampler, flask_cli, free_port, hub_env, pct  # noqa: E402

mono = time.monotonic
CACHE = Path(__file__).resolve().parent / ".cache"
NS = "/media"


# a minimal Socket.IO client with binary attachments ----------------------------------------

class MediaConn:
    """One websocket speaking Engine.IO 4 / Socket.IO 5 on /media, binary events included."""

    def __init__(self) -> None:
        self.ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self.on_data = None          # callback(header: dict, data: bytes, ack_id) for media.data
        self.acks: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.closed = False
        self.close_reason = ""
        self._pending: Optional[tuple[int | None, list]] = None
        self._connected: Optional[asyncio.Future] = None
        self._reader: Optional[asyncio.Task] = None

    async def connect(self, session: aiohttp.ClientSession, url: str, auth: dict) -> None:
        self.ws = await session.ws_connect(url + "/socket.io/?EIO=4&transport=websocket", max_msg_size=0,
                                           autoping=True, heartbeat=None)
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT or not msg.data.startswith("0"):
            raise RuntimeError(f"bad open packet {msg.data!r:.80}")
        self._connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        await self.ws.send_str(f"40{NS}," + json.dumps(auth))
        await asyncio.wait_for(self._connected, 30)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._text(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self._binary(msg.data)
                else:
                    break
        except Exception as err:  # noqa: BLE001
            self.close_reason = repr(err)
        finally:
            self.closed = True
            self.close_reason = self.close_reason or "closed by the hub"
            if self._connected and not self._connected.done():
                self._connected.set_exception(RuntimeError("closed before connect"))
            for fut in self.acks.values():
                if not fut.done():
                    fut.set_exception(RuntimeError("closed"))

    def _text(self, data: str) -> None:
        if data == "2":
            asyncio.ensure_future(self.ws.send_str("3"))
            return
        kind = data[:2]
        body = data[2:]
        attachments = 0
        if kind in ("45", "46"):
            cut = body.index("-")
            attachments, body = int(body[:cut]), body[cut + 1:]
        if body.startswith(NS + ","):
            body = body[len(NS) + 1:]
        elif body.startswith(NS):
            body = body[len(NS):]
        i = 0
        while i < len(body) and body[i].isdigit():
            i += 1
        pid = int(body[:i]) if i else None
        payload = json.loads(body[i:]) if body[i:] else None
        if kind == "40":
            if not self._connected.done():
                self._connected.set_result(payload)
        elif kind == "44":
            if not self._connected.done():
                self._connected.set_exception(RuntimeError(f"refused: {payload}"))
        elif kind == "43":
            fut = self.acks.pop(pid, None)
            if fut and not fut.done():
                fut.set_result(payload[0] if payload else None)
        elif kind == "45" and attachments == 1:
            self._pending = (pid, payload)
        elif kind == "42" and payload and payload[0] == "media.ended":
            pass
        elif kind == "41":
            self.closed = True

    def _binary(self, data: bytes) -> None:
        if self._pending is None:
            return
        pid, payload = self._pending
        self._pending = None
        if payload[0] == "media.data" and self.on_data:
            self.on_data(payload[1], data, pid)

    def ack(self, pid: Optional[int]) -> None:
        if pid is not None and not self.closed:
            asyncio.ensure_future(self.ws.send_str(f"43{NS},{pid}[]"))

    async def call(self, event: str, data: Any, binary: Optional[bytes] = None, timeout: float = 30) -> Any:
        self.next_id += 1
        pid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.acks[pid] = fut
        if binary is None:
            await self.ws.send_str(f"42{NS},{pid}" + json.dumps([event, data]))
        else:
            data = dict(data, data={"_placeholder": True, "num": 0})
            await self.ws.send_str(f"451-{NS},{pid}" + json.dumps([event, data]))
            await self.ws.send_bytes(binary)
        return await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()


# the simulated bridge points (worker processes) -----------------------------------------------

class SiteClient:
    def __init__(self, idx: int, token: str, stall_at: Optional[float]) -> None:
        self.idx, self.token, self.stall_at = idx, token, stall_at
        self.conn = MediaConn()
        self.rx: list[tuple[float, int, int, bool]] = []  # (t, seq, bytes, init)
        self.stalled = False

    def on_data(self, head: dict, data: bytes, pid) -> None:
        now = mono()
        self.rx.append((now, head.get("seq", 0), len(data), bool(head.get("init"))))
        if self.stall_at is not None and now >= self.stall_at:
            self.stalled = True  # a dead room: takes nothing more
            return
        self.conn.ack(pid)


async def _sites_main(url: str, lecture_id: int, tokens: list[tuple[int, str]], stall: dict, conn_pipe) -> None:
    sites = [SiteClient(i, tok, stall.get(i)) for i, tok in tokens]
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sem = asyncio.Semaphore(40)

        async def join(site: SiteClient) -> None:
            async with sem:
                site.conn.on_data = site.on_data
                await site.conn.connect(session, url, {"kiosk": site.token})
                ack = await site.conn.call("media.subscribe", {"lecture_id": lecture_id, "track": "av"})
                if not ack or not ack.get("ok"):
                    raise RuntimeError(f"subscribe refused: {ack}")

        await asyncio.gather(*(join(s) for s in sites))
        conn_pipe.send(("ready", len(sites)))
        loop = asyncio.get_running_loop()
        cmd = await loop.run_in_executor(None, conn_pipe.recv)
        # absolute stall times arrive with the start command
        if isinstance(cmd, tuple) and cmd[0] == "stall":
            for s in sites:
                if s.idx in cmd[1]:
                    s.stall_at = cmd[1][s.idx]
            cmd = await loop.run_in_executor(None, conn_pipe.recv)
        out = [{"idx": s.idx, "rx": s.rx, "closed": s.conn.closed, "reason": s.conn.close_reason,
                "stalled": s.stalled} for s in sites]
        for s in sites:
            await s.conn.close()
        conn_pipe.send(("done", out))


def sites_worker(url: str, lecture_id: int, tokens: list[tuple[int, str]], stall: dict, conn_pipe) -> None:
    try:
        asyncio.run(_sites_main(url, lecture_id, tokens, stall, conn_pipe))
    except Exception:  # noqa: BLE001
        conn_pipe.send(("error", traceback.format_exc()))


# the publisher (in this process) -----------------------------------------------------------------

async def publish(url: str, token: str, lecture_id: int, data: bytes, kbps: int, slice_ms: int,
                  seconds: float) -> dict:
    per = int(kbps * 1000 / 8 * slice_ms / 1000)
    conn = MediaConn()
    sent: list[tuple[float, int]] = []  # (time sent, stream offset at the end of the chunk)
    acks: list[float] = []
    refused: list = []
    async with aiohttp.ClientSession() as session:
        await conn.connect(session, url, {"token": token})
        start = mono()
        offset, seq, i = 0, int(time.time() * 1000), 0
        in_flight: set[asyncio.Task] = set()
        while offset < len(data) and mono() - start < seconds:
            chunk = data[offset:offset + per]
            seq += 1
            t = mono()
            sent.append((t, offset + len(chunk)))
            offset += len(chunk)

            async def send(chunk=chunk, seq=seq, t=t):
                ack = await conn.call("media.publish", {"lecture_id": lecture_id, "track": "av", "seq": seq},
                                      binary=chunk)
                acks.append(mono() - t)
                if not ack or not ack.get("ok"):
                    refused.append(ack)

            task = asyncio.create_task(send())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            i += 1
            await asyncio.sleep(max(0.0, start + i * slice_ms / 1000 - mono()))
        await asyncio.gather(*in_flight)
        await conn.call("media.end", {"lecture_id": lecture_id, "track": "av", "seq": seq})
        await conn.close()
    return {"sent": sent, "bytes": offset, "ack_p50": pct(acks, 0.5), "ack_p99": pct(acks, 0.99),
            "refused": refused[:3], "n_refused": len(refused), "start": start}


# setup ---------------------------------------------------------------------------------------------

def recorded_webm(seconds: int, kbps: int) -> bytes:
    """A 'recorded lecture': 640x360 moving picture with noise (so VP8 spends its bits),
    Opus sound, a cluster per 1 s keyframe, in the live (piped) layout."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"lecture-{seconds}s-{kbps}k.webm"
    if not path.exists():
        v = kbps - 64
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=330", "-t", str(seconds),
                        "-vf", "noise=alls=12:allf=t", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
                        "-b:v", f"{v}k", "-minrate", f"{v}k", "-maxrate", f"{v}k", "-bufsize", f"{v}k", "-g", "25",
                        "-c:a", "libopus", "-b:a", "64k", "-cluster_size_limit", "4000000", "-cluster_time_limit", "1000",
                        "-f", "webm", str(path) + ".part"], check=True)
        os.replace(str(path) + ".part", path)
    return path.read_bytes()


def seed(db: BenchDB, env: dict) -> dict:
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "demo", "create", "--learners", "200")
    os.environ.setdefault("DIEMCAU_ASYNC_MODE", "threading")
    sys.path.insert(0, str(ROOT))
    from server import create_app
    from server.accounts.auth import kiosk_token, socket_token
    from server.accounts.models import Role, User
    from server.extensions import db as sdb
    from server.places.models import BridgePoint

    app = create_app({"SQLALCHEMY_DATABASE_URI": db.url, "SECRET_KEY": SECRET, "ASYNC_MODE": "threading",
                      "RUN_SCHEDULER": False})
    with app.app_context(), app.test_request_context():
        user = User(role=Role.rapporteur, username="bcv-bench", full_name="Báo cáo viên (bench)")
        sdb.session.add(user)
        sdb.session.commit()
        bps = sdb.session.scalars(sdb.select(BridgePoint).order_by(BridgePoint.id)).all()
        return {"rapporteur_id": user.id, "rapporteur_token": socket_token(user),
                "kiosks": [kiosk_token(bp.id) for bp in bps]}


def new_lecture(db: BenchDB, rapporteur_id: int, run: int) -> int:
    db.query("INSERT INTO lecture (title, rapporteur_id, status, current_page, recording_bytes, duration_ms, "
             "created_at, started_at) VALUES (%s, %s, 'live', 1, 0, 0, datetime('now'), datetime('now'))",
             (f"Bench {run}", rapporteur_id))
    return db.query("SELECT max(id) FROM lecture")[0][0]


# one run ---------------------------------------------------------------------------------------------

def run_once(args, db: BenchDB, seeded: dict, data: bytes, run: int, tmp: Path) -> dict:
    lecture_id = new_lecture(db, seeded["rapporteur_id"], run)
    env = hub_env(db, "gevent", tmp, {"DIEMCAU_RUN_SCHEDULER": "0",
                                      "DIEMCAU_MEDIA_DEAD_AFTER_S": str(args.dead_after),
                                      **dict(kv.split("=", 1) for kv in args.hub_env)})
    hub = Hub(env, free_port(), tmp / f"hub-{run}.log").start()
    sampler = Sampler(hub.pid, every=0.5)
    sampler.start()
    workers, pipes = [], []
    try:
        tokens = list(enumerate(seeded["kiosks"][:args.sites]))
        shares = [tokens[w::args.workers] for w in range(args.workers)]
        stalled_idx = 0
        for share in shares:
            parent, child = mp.Pipe()
            p = mp.Process(target=sites_worker, args=(hub.url, lecture_id, share, {}, child), daemon=True)
            p.start()
            workers.append(p)
            pipes.append(parent)
            sampler.worker_pids.append(p.pid)
        for pipe in pipes:
            msg = pipe.recv()
            if msg[0] != "ready":
                raise RuntimeError(msg[1])
        t0 = time.time()
        stall_at = mono() + args.stall_after
        for pipe in pipes:
            pipe.send(("stall", {stalled_idx: stall_at}))
        pub = asyncio.run(publish(hub.url, seeded["rapporteur_token"], lecture_id, data, args.kbps, args.slice_ms,
                                  args.seconds))
        t1 = time.time()
        time.sleep(1.5)  # the last pieces arrive
        for pipe in pipes:
            pipe.send(("stop", None))
        results = []
        for pipe in pipes:
            msg = pipe.recv()
            if msg[0] != "done":
                raise RuntimeError(msg[1])
            results += msg[1]
        cpu = sampler.between(t0 + 2, t1)
        problems = hub.log_problems()
        if args.keep_logs:
            Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
            (Path(args.keep_logs) / f"hub-{run}-{int(t0)}.log").write_text(hub.log())
    finally:
        sampler.stop()
        for p in workers:
            p.join(10)
            if p.is_alive():
                p.kill()
        hub.stop()
    return summarize(pub, results, cpu, stalled_idx, stall_at, problems)


def summarize(pub: dict, results: list[dict], cpu: dict, stalled_idx: int, stall_at: float, problems: dict) -> dict:
    times = [t for t, _ in pub["sent"]]
    ends = [e for _, e in pub["sent"]]
    lat_before, lat_after, ratios = [], [], []
    windows: dict[int, list[float]] = {}
    gaps = 0
    stalled = None
    for site in results:
        if site["idx"] == stalled_idx:
            stalled = site
            continue
        got = 0
        last_seq = None
        for t, seq, n, init in site["rx"]:
            got += n
            if not init and last_seq is not None and seq != last_seq + 1:
                gaps += 1
            last_seq = seq
            k = bisect_left(ends, got)  # the chunk whose arrival completed these bytes
            if k < len(times):
                (lat_after if t >= stall_at else lat_before).append(t - times[k])
                windows.setdefault(int((times[k] - times[0]) // 5), []).append(t - times[k])
        ratios.append(got / pub["bytes"])
    lat = lat_before + lat_after
    out = {
        "sites": len(results), "sent_bytes": pub["bytes"], "seconds": round(pub["sent"][-1][0] - pub["sent"][0][0], 1),
        "mbit_s": round(pub["bytes"] * 8 / max(1e-9, pub["sent"][-1][0] - pub["sent"][0][0]) / 1e6, 2),
        "hub_cores": cpu.get("hub_cores"), "workers_cores": cpu.get("workers_cores"),
        "hub_rss_mb": cpu.get("hub_rss_mb_end"),
        "latency_ms_p50": round(1000 * pct(lat, 0.5), 1), "latency_ms_p99": round(1000 * pct(lat, 0.99), 1),
        "latency_ms_max": round(1000 * max(lat), 1),
        "p99_before_stall_ms": round(1000 * pct(lat_before, 0.99), 1) if lat_before else None,
        "p99_after_stall_ms": round(1000 * pct(lat_after, 0.99), 1) if lat_after else None,
        "delivered_ratio_min": round(min(ratios), 4), "delivered_ratio_median": round(statistics.median(ratios), 4),
        "seq_gaps_healthy": gaps,
        "publish_ack_ms_p50": round(1000 * pub["ack_p50"], 1), "publish_ack_ms_p99": round(1000 * pub["ack_p99"], 1),
        "refused": pub["n_refused"], "hub_tracebacks": problems["tracebacks"],
        "p99_ms_by_5s": [round(1000 * pct(windows[w], 0.99)) for w in sorted(windows)],
    }
    if stalled:
        got = sum(n for _, _, n, _ in stalled["rx"])
        last = max((t for t, *_ in stalled["rx"]), default=stall_at)
        out["stalled_site"] = {"delivered_ratio": round(got / pub["bytes"], 3), "disconnected": stalled["closed"],
                               "last_piece_after_stall_s": round(last - stall_at, 2)}
    return out


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=164)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seconds", type=float, default=45.0, help="streaming time per run")
    p.add_argument("--kbps", type=int, default=1500, help="publisher pace")
    p.add_argument("--slice-ms", type=int, default=500, help="the recorder's timeslice")
    p.add_argument("--stall-after", type=float, default=10.0, help="one site stops acking after this many seconds")
    p.add_argument("--dead-after", type=float, default=10.0, help="MEDIA_DEAD_AFTER_S for the hub")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE", help="extra hub setting")
    p.add_argument("--json", help="write every run's figures here")
    p.add_argument("--keep-logs", metavar="DIR", help="copy each run's hub log here")
    args = p.parse_args(argv)

    data = recorded_webm(int(args.seconds) + 15, args.kbps)
    with tempfile.TemporaryDirectory(prefix="webcast-bench-") as tmpdir:
        tmp = Path(tmpdir)
        db = BenchDB("sqlite", "webcast_bench", tmp).create()
        env = hub_env(db, "gevent", tmp)
        seeded = seed(db, env)
        runs = []
        for run in range(1, args.runs + 1):
            res = run_once(args, db, seeded, data, run, tmp)
            runs.append(res)
            print(f"run {run}: " + json.dumps(res, ensure_ascii=False), flush=True)
        db.drop()
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and v is not None]
    median = {k: statistics.median(r[k] for r in runs if r.get(k) is not None) for k in keys}
    median["stalled_disconnected"] = [r.get("stalled_site", {}).get("disconnected") for r in runs]
    print("median of runs: " + json.dumps(median, ensure_ascii=False), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "median": median}, indent=2))


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
