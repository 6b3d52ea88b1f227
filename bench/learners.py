"""A worker process of simulated learners (asyncio, one event loop, thousands of sockets).

The parent drives it over a multiprocessing Pipe with commands and gets raw samples back:

  ("connect", {...})  connect + attempt.join every learner, paced      → ("connected", stats)
  ("run", {...})      the exam: wait for exam.start, steady phase, burst, submit or wait
                      for attempt.closed                                → ("run", samples)
  ("probe", {...})    time.sync loops and planned answers (slow_query)  → ("probe", samples)
  ("quit", None)      close every socket                              → ("bye", None)

Times: `time.time()` (wall, to line up with the hub's deadline_ms) for schedules and
`time.monotonic()` (system-wide on Linux, comparable with the parent's) for latencies.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import resource
import time
import traceback
from collections import Counter
from typing import Any, Optional

import aiohttp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sio import Conn, ConnectError

mono = time.monotonic


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def unseal(sealed: dict, key: bytes) -> list:
    plain = AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["data"]), None)
    return json.loads(plain)


class Learner:
    __slots__ = (
        "idx", "token", "conn", "attempt_id", "code_id", "sealed", "qids", "choices", "next_q", "seq",
        "acked", "outstanding", "start_rx", "start_ready", "decrypt_s", "deadline_ms", "started",
        "closed_rx", "closed", "result", "submitted", "reconnects", "unacked", "done", "rng",
        "join_bytes", "reconnecting",
    )

    def __init__(self, idx: int, token: str, seed: int) -> None:
        self.idx, self.token = idx, token
        self.conn: Optional[Conn] = None
        self.attempt_id = self.code_id = None
        self.sealed = None
        self.qids: list[int] = []
        self.choices: dict[int, list[int]] = {}
        self.next_q = 0
        self.seq = 0
        #: question id → (seq, choice) of the newest acknowledged answer
        self.acked: dict[int, tuple[int, Optional[int]]] = {}
        self.outstanding = 0
        self.start_rx = self.start_ready = self.decrypt_s = None
        self.deadline_ms = None
        self.started = asyncio.Event()
        self.closed_rx = None
        self.closed = asyncio.Event()
        self.result = None
        self.submitted = False
        self.reconnects = 0
        #: packet payloads sent but not acknowledged (resent after a reconnect)
        self.unacked: dict[int, dict] = {}
        self.done = False
        self.rng = random.Random(seed)
        self.join_bytes = 0
        self.reconnecting = False


class Worker:
    def __init__(self, wid: int, pipe: Any, cfg: dict) -> None:
        self.wid, self.pipe, self.cfg = wid, pipe, cfg
        self.url = cfg["url"]
        self.exam_id = cfg.get("exam_id", 1)
        self.learners = [Learner(i, tok, cfg.get("seed", 1) * 1_000_003 + wid * 100_000 + i)
                         for i, tok in enumerate(cfg["tokens"])]
        self.session: Optional[aiohttp.ClientSession] = None
        self.running = False
        self.phase_bounds = (0.0, 0.0)  # (burst_start_wall, deadline_wall)
        self.to_unseal: list = []
        self.last_arrival = 0.0
        self.unsealer: Optional[asyncio.Future] = None
        self.reset_samples()

    def reset_samples(self) -> None:
        self.ack_samples: list[tuple[float, float, str]] = []  # (t_send_wall, latency_s, phase)
        self.ack_errors: Counter = Counter()
        self.submit_samples: list[tuple[float, float]] = []
        self.submit_errors: Counter = Counter()
        self.sync_samples: list[tuple[float, float, int]] = []
        self.lost_acks = 0
        self.sent = 0
        self.events: Counter = Counter()
        self.lag: list[tuple[float, float]] = []
        self.disconnects: Counter = Counter()
        self.disconnect_times: list[float] = []
        self.disconnect_info: list[dict] = []
        #: (attempt_id, seq or -1 for the submission, t_send_wall, t_ack_wall) of every ok ack,
        #: for bench/hops.py to join with the hub's own stamps; None unless the run asks.
        self.keys: Optional[list[tuple[int, int, float, float]]] = None

    # plumbing -----------------------------------------------------------------
    async def main(self) -> None:
        raise_fd_limit()
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=True, ttl_dns_cache=None)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=30))
        loop = asyncio.get_running_loop()
        try:
            while True:
                cmd, params = await loop.run_in_executor(None, self.pipe.recv)
                if cmd == "quit":
                    await self.close_all()
                    self.pipe.send(("bye", None))
                    return
                try:
                    if cmd == "connect":
                        out = await self.connect_all(params)
                    elif cmd == "run":
                        out = await self.run_exam(params)
                    elif cmd == "probe":
                        out = await self.probe(params)
                    else:
                        out = {"error": f"unknown command {cmd}"}
                except Exception:  # noqa: BLE001
                    out = {"error": traceback.format_exc()}
                self.pipe.send((cmd, out))
        finally:
            await self.session.close()

    async def close_all(self) -> None:
        self.running = False
        conns = [L.conn for L in self.learners if L.conn is not None]
        for i in range(0, len(conns), 500):
            await asyncio.gather(*(c.close() for c in conns[i:i + 500]), return_exceptions=True)

    async def _lag_monitor(self, stop: asyncio.Event) -> None:
        step = 0.05
        while not stop.is_set():
            t = mono()
            await asyncio.sleep(step)
            self.lag.append((time.time(), mono() - t - step))

    # connect + join -----------------------------------------------------------
    async def open_learner(self, L: Learner, timeout: float) -> dict:
        conn = Conn("/exam")
        conn.on_event = lambda name, data, L=L: self.on_event(L, name, data)
        conn.on_close = lambda reason, L=L: self.on_close(L, reason)
        t0 = mono()
        await conn.connect(self.session, self.url, {"token": L.token}, timeout=timeout)
        t1 = mono()
        L.conn = conn
        ack = await conn.call("attempt.join", {"exam_id": self.exam_id}, timeout=timeout)
        t2 = mono()
        if not ack or not ack.get("ok"):
            await conn.close()
            L.conn = None
            raise ConnectError(f"join refused: {json.dumps(ack)[:200]}")
        L.attempt_id = ack["attempt"]["attempt_id"]
        L.code_id = ack["code"]["id"]
        if "sealed" in ack:
            L.sealed = ack["sealed"]
            L.join_bytes = len(ack["sealed"]["data"])
        if "paper" in ack:
            self._set_paper(L, ack["paper"])
            for q, a in (ack.get("answers") or {}).items():
                # what the hub has is what we know it has
                L.acked.setdefault(int(q), (a["seq"], a["choice"]))
                L.seq = max(L.seq, a["seq"])
            if ack["attempt"].get("deadline_ms") and L.deadline_ms is None:
                L.deadline_ms = ack["attempt"]["deadline_ms"]
            if not L.started.is_set():
                L.start_rx = L.start_ready = mono()
                L.decrypt_s = 0.0
                L.started.set()
        if not ack["attempt"].get("status") in ("pending", "in_progress"):
            L.result = ack["attempt"]
        return {"connect_s": t1 - t0, "join_s": t2 - t1, "deflate": conn.deflate}

    async def connect_all(self, p: dict) -> dict:
        rate = p["rate"]  # learners per second for this worker
        sem = asyncio.Semaphore(p.get("concurrency", 200))
        timeout = p.get("timeout", 30.0)
        retries = p.get("retries", 3)
        start = mono()
        connect_s, join_s, failures, retried = [], [], Counter(), 0
        deflate = Counter()
        stop = asyncio.Event()
        lagger = asyncio.create_task(self._lag_monitor(stop))

        async def one(L: Learner, i: int) -> None:
            nonlocal retried
            delay = start + i / rate - mono()
            if delay > 0:
                await asyncio.sleep(delay)
            for attempt in range(retries + 1):
                async with sem:
                    try:
                        r = await self.open_learner(L, timeout)
                        connect_s.append(r["connect_s"])
                        join_s.append(r["join_s"])
                        deflate[r["deflate"]] += 1
                        return
                    except Exception as err:  # noqa: BLE001
                        failures[type(err).__name__ + ": " + str(err)[:120]] += 1
                        if L.conn is not None:
                            await L.conn.close()
                            L.conn = None
                if attempt < retries:
                    retried += 1
                    await asyncio.sleep(1.0 + random.random())

        deadline = p.get("deadline", 600)
        try:
            await asyncio.wait_for(asyncio.gather(*(one(L, i) for i, L in enumerate(self.learners))), deadline)
        except asyncio.TimeoutError:
            failures["connect phase timed out"] += 1
        stop.set()
        await lagger
        ok = [L for L in self.learners if L.conn is not None and not L.conn.closed and L.attempt_id]
        return {
            "wid": self.wid, "n": len(self.learners), "ok": len(ok), "elapsed": mono() - start,
            "connect_s": connect_s, "join_s": join_s, "failures": dict(failures), "retried": retried,
            "deflate": {str(k): v for k, v in deflate.items()},
            "sealed_b64_bytes": [L.join_bytes for L in ok[:50]],
            "attempts": {L.idx: L.attempt_id for L in ok},
            "lag": self._lag_summary(),
            "cpu": _cpu(),
        }

    # events -------------------------------------------------------------------
    def _set_paper(self, L: Learner, paper: list) -> None:
        L.qids = [q["id"] for q in paper]
        L.choices = {q["id"]: [c["id"] for c in q["choices"]] for q in paper}

    def on_event(self, L: Learner, name: str, data: Any) -> None:
        self.events[name] += 1
        if name == "exam.start":
            if L.started.is_set() or L.start_rx is not None:
                return
            L.start_rx = mono()
            L.deadline_ms = data.get("deadline_ms")
            # Decrypt once the broadcast has passed: the 2,500 learners of one worker would
            # otherwise read the start behind each other's decryption (~1 s of it), which in
            # reality happens on 2,500 different devices ("on screen, parallel" = arrival +
            # the learner's own decrypt time, measured below).
            self.to_unseal.append((L, data))
            self.last_arrival = mono()
            if self.unsealer is None or self.unsealer.done():
                self.unsealer = asyncio.ensure_future(self._unseal_when_quiet())
        elif name == "attempt.closed":
            if L.closed_rx is None:
                L.closed_rx = mono()
                L.result = data
            L.closed.set()

    async def _unseal_when_quiet(self) -> None:
        while self.to_unseal:
            while mono() - self.last_arrival < 0.2:
                await asyncio.sleep(0.05)
            batch, self.to_unseal = self.to_unseal, []
            for i, (L, data) in enumerate(batch):
                self._unseal(L, data)
                if i % 50 == 49:
                    await asyncio.sleep(0)

    def _unseal(self, L: Learner, data: Any) -> None:
        if L.started.is_set():
            return
        t = time.perf_counter()
        try:
            key = base64.b64decode(data["keys"][str(L.code_id)])
            self._set_paper(L, unseal(L.sealed, key))
        except Exception as err:  # noqa: BLE001
            self.events["unseal.failed:" + type(err).__name__] += 1
            return
        L.decrypt_s = time.perf_counter() - t
        L.start_ready = mono()
        L.started.set()

    def on_close(self, L: Learner, reason: str) -> None:
        self.disconnects[reason[:80]] += 1
        self.disconnect_times.append(time.time())
        c, now = L.conn, time.monotonic()
        if c is not None and len(self.disconnect_info) < 300:
            self.disconnect_info.append({"reason": reason[:60], "since_rx_s": round(now - c.last_rx, 2),
                                         "since_ping_s": round(now - c.last_ping, 2) if c.last_ping else None,
                                         "pings": c.pings, "age_s": round(now - c.opened_at, 1)})
        if self.running and not L.done and not L.reconnecting:
            asyncio.ensure_future(self.reconnect(L))

    async def reconnect(self, L: Learner) -> None:
        """What a browser does: reconnect, join again, resend what was not acknowledged."""
        L.reconnecting = True
        try:
            for attempt in range(6):
                if not self.running or L.done:
                    return
                await asyncio.sleep(min(0.5 * 2 ** attempt, 8) * (0.5 + random.random()))
                try:
                    await self.open_learner(L, 30.0)
                    L.reconnects += 1
                    self.events["reconnected"] += 1
                    for payload in list(L.unacked.values()):
                        await self._send_answer(L, payload, resend=True)
                    return
                except Exception:  # noqa: BLE001
                    continue
            self.events["reconnect.gave_up"] += 1
        finally:
            L.reconnecting = False

    # answers ------------------------------------------------------------------
    def _next_answer(self, L: Learner, change_prob: float) -> Optional[dict]:
        rng = L.rng
        if not L.qids:
            return None
        if L.next_q < len(L.qids) and not (L.next_q > 0 and rng.random() < change_prob):
            q = L.qids[L.next_q]
            L.next_q += 1
        else:
            q = L.qids[rng.randrange(max(L.next_q, 1))]
        L.seq += 1
        return {"attempt_id": L.attempt_id, "question_id": q, "choice_id": rng.choice(L.choices[q]),
                "flagged": rng.random() < 0.03, "seq": L.seq}

    async def _send_answer(self, L: Learner, payload: dict, resend: bool = False) -> None:
        t_wall = time.time()
        t0 = mono()
        burst_start = self.phase_bounds[0]
        phase = "b" if t_wall >= burst_start else "s"
        key = payload["seq"]
        L.unacked[key] = payload
        L.outstanding += 1
        self.sent += 1

        def done(value: Any) -> None:
            L.outstanding -= 1
            if value is None:  # socket lost: stays in unacked, resent after reconnect
                self.lost_acks += 1
                return
            L.unacked.pop(key, None)
            if value.get("ok"):
                self.ack_samples.append((t_wall, mono() - t0, phase))
                if self.keys is not None:
                    self.keys.append((L.attempt_id, key, t_wall, time.time()))
                q = payload["question_id"]
                old = L.acked.get(q)
                if old is None or old[0] < payload["seq"]:
                    L.acked[q] = (payload["seq"], payload["choice_id"])
            else:
                code = (value.get("error") or {}).get("code", "?")
                self.ack_errors[f"{phase}:{code}"] += 1
                if code in ("server.busy", "server.retry", "server.error"):
                    # the real client keeps it and sends it again
                    L.unacked[key] = payload

        if L.conn is None or L.conn.closed:
            L.outstanding -= 1
            self.lost_acks += 1
            return
        await L.conn.emit_cb("answer.save", payload, done)

    async def answer(self, L: Learner, change_prob: float) -> None:
        payload = self._next_answer(L, change_prob)
        if payload is not None:
            await self._send_answer(L, payload)

    async def _sleep_until(self, t_wall: float) -> None:
        d = t_wall - time.time()
        if d > 0:
            await asyncio.sleep(d)

    async def learner_run(self, L: Learner, p: dict) -> None:
        try:
            await asyncio.wait_for(L.started.wait(), p["start_timeout"])
        except asyncio.TimeoutError:
            self.events["start.timeout"] += 1
            return
        rng = L.rng
        deadline = L.deadline_ms / 1000.0
        burst_start = deadline - p["burst_seconds"]
        tail_end = deadline - p["tail_seconds"]
        lam = p["rate"] / p["n_total"]
        change = p["change_prob"]
        # steady phase: a Poisson process per learner, the sum is `rate` answers/s
        while lam > 0:
            dt = rng.expovariate(lam)
            if time.time() + dt >= burst_start:
                break
            await asyncio.sleep(dt)
            await self.answer(L, change)
        # burst
        await self._sleep_until(burst_start)
        last = burst_start
        if rng.random() < p["burst_share"]:
            k_mean = p["burst_per_learner"]
            k = int(k_mean) + (1 if rng.random() < k_mean - int(k_mean) else 0)
            remaining = max(len(L.qids) - L.next_q, 0)
            k = min(k, remaining) if p.get("only_remaining", True) else k
            times = sorted(rng.uniform(burst_start, tail_end) for _ in range(k))
            for t in times:
                await self._sleep_until(t)
                await self.answer(L, 0.0)
                last = t
        if rng.random() < p["submit_share"]:
            t_sub = self._submit_time(rng, last, tail_end, p.get("submit_model", "to-end"), last > burst_start)
            await self._sleep_until(t_sub)
            t_wait = mono() + 10.0
            while (L.outstanding > 0 or L.unacked) and mono() < t_wait:
                await asyncio.sleep(0.05)
            t_wall, t0 = time.time(), mono()
            try:
                ack = await L.conn.call("attempt.submit", {"attempt_id": L.attempt_id, "confirm": True}, timeout=30.0)
                if ack and ack.get("ok"):
                    self.submit_samples.append((t_wall, mono() - t0))
                    if self.keys is not None:
                        self.keys.append((L.attempt_id, -1, t_wall, time.time()))
                    L.submitted = True
                    L.result = ack
                    L.done = True
                    return
                self.submit_errors[(ack or {}).get("error", {}).get("code", "?")] += 1
            except Exception as err:  # noqa: BLE001
                self.submit_errors[type(err).__name__] += 1
        # the hub closes it at the deadline
        left = deadline + p["grace"] + p["close_timeout"] - time.time()
        try:
            await asyncio.wait_for(L.closed.wait(), max(left, 1.0))
        except asyncio.TimeoutError:
            self.events["closed.timeout"] += 1
        L.done = True

    @staticmethod
    def _submit_time(rng: random.Random, last: float, end: float, model: str, answered_in_burst: bool) -> float:
        """When a learner who submits early presses the button.

        "to-end": any moment between the last answer and the end, uniformly. Summed over
        the learners this density grows without bound at the end (a learner who answered
        at end − 0.1 s submits within 0.1 s): a fifth of all submissions land in the last
        second. Kept as the stress case.
        "review": the learner reviews for 2-15 s (the page asks to confirm), then submits;
        one whose review would run past the end hurries in the last 5 s instead. Learners
        who had finished before the burst submit at any moment of it, in both models.
        """
        if model == "review" and answered_in_burst:
            t = last + rng.uniform(2.0, 15.0)
            return t if t <= end else rng.uniform(max(last, end - 5.0), end)
        return rng.uniform(min(last + 0.3, end), end)

    async def run_exam(self, p: dict) -> dict:
        self.reset_samples()
        if p.get("ack_keys"):
            self.keys = []
        self.running = True
        stop = asyncio.Event()
        lagger = asyncio.create_task(self._lag_monitor(stop))
        cpu0 = _cpu()

        async def bounds() -> None:
            # every learner gets the same deadline; the first start sets the phases
            for L in self.learners:
                if L.attempt_id:
                    await L.started.wait()
                    d = L.deadline_ms / 1000.0
                    self.phase_bounds = (d - p["burst_seconds"], d)
                    return

        bt = asyncio.create_task(bounds())
        active = [L for L in self.learners if L.attempt_id and L.conn is not None]
        tasks = [asyncio.create_task(self.learner_run(L, p)) for L in active]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), p["hard_timeout"])
        except asyncio.TimeoutError:
            self.events["run.hard_timeout"] += 1
        bt.cancel()
        self.running = False
        stop.set()
        await lagger
        cpu1 = _cpu()
        return {
            "wid": self.wid,
            "n": len(active),
            "start": [(L.start_rx, L.start_ready, L.decrypt_s) for L in active if L.start_ready is not None],
            "acks": self.ack_samples,
            "ack_errors": dict(self.ack_errors),
            "submits": self.submit_samples,
            "submit_errors": dict(self.submit_errors),
            "closed_rx": [L.closed_rx for L in active if L.closed_rx is not None],
            "results": sum(1 for L in active if L.result is not None),
            "submitted": sum(1 for L in active if L.submitted),
            "acked": [(L.attempt_id, q, s, c) for L in active for q, (s, c) in L.acked.items()],
            "unacked": sum(len(L.unacked) for L in active),
            "sent": self.sent,
            "lost_acks": self.lost_acks,
            "events": dict(self.events),
            "disconnects": dict(self.disconnects),
            "disconnect_times": self.disconnect_times,
            "disconnect_info": self.disconnect_info,
            "reconnects": sum(L.reconnects for L in active),
            "lag": self._lag_summary(),
            "lag_raw": self.lag,
            "cpu": cpu1 - cpu0,
            "phase_bounds": self.phase_bounds,
            "ack_keys": self.keys or [],
        }

    # probe (slow_query) --------------------------------------------------------
    async def probe(self, p: dict) -> dict:
        """time.sync loops on some learners and planned answers from others, until p["until"]."""
        self.reset_samples()
        self.running = True
        self.phase_bounds = (1e18, 1e18)
        for L in self.learners:
            if L.attempt_id and not L.qids and L.sealed is not None and p.get("keys"):
                self._set_paper(L, unseal(L.sealed, base64.b64decode(p["keys"][str(L.code_id)])))
        until = p["until"]
        stop = asyncio.Event()
        lagger = asyncio.create_task(self._lag_monitor(stop))

        async def syncer(L: Learner) -> None:
            rng = L.rng
            await asyncio.sleep(rng.uniform(0, p["sync_interval"]))
            while time.time() < until:
                t_wall, t0 = time.time(), mono()
                try:
                    await L.conn.call("time.sync", {"t0": int(t_wall * 1000)}, timeout=30.0)
                    self.sync_samples.append((t_wall, mono() - t0, L.idx))
                except Exception as err:  # noqa: BLE001
                    self.events["sync." + type(err).__name__] += 1
                await asyncio.sleep(p["sync_interval"])

        answer_samples: list[tuple[float, float, int, str]] = []

        async def planned(L: Learner, t_wall: float) -> None:
            await self._sleep_until(t_wall)
            payload = self._next_answer(L, 0.0)
            t_send, t0 = time.time(), mono()
            try:
                ack = await L.conn.call("answer.save", payload, timeout=30.0)
                ok = bool(ack and ack.get("ok"))
                code = "ok" if ok else (ack or {}).get("error", {}).get("code", "?")
                if ok:
                    L.acked[payload["question_id"]] = (payload["seq"], payload["choice_id"])
                answer_samples.append((t_send, mono() - t0, L.idx, code))
            except Exception as err:  # noqa: BLE001
                answer_samples.append((t_send, mono() - t0, L.idx, type(err).__name__))

        tasks = [asyncio.create_task(syncer(self.learners[i])) for i in p["sync_learners"]]
        tasks += [asyncio.create_task(planned(self.learners[i], t)) for i, t in p["answer_plan"]]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), until - time.time() + 40)
        except asyncio.TimeoutError:
            self.events["probe.timeout"] += 1
        stop.set()
        await lagger
        self.running = False
        return {"wid": self.wid, "sync": self.sync_samples, "answers": answer_samples,
                "events": dict(self.events), "lag": self._lag_summary(), "lag_raw": self.lag,
                "acked": [(L.attempt_id, q, s, c) for L in self.learners if L.attempt_id for q, (s, c) in L.acked.items()]}

    def _lag_summary(self) -> dict:
        vals = sorted(v for _, v in self.lag)
        if not vals:
            return {}
        return {"p50": vals[len(vals) // 2], "p99": vals[min(len(vals) - 1, int(len(vals) * 0.99))], "max": vals[-1]}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def worker_main(wid: int, pipe: Any, cfg: dict) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    raise_fd_limit()
    try:
        asyncio.run(Worker(wid, pipe, cfg).main())
    except KeyboardInterrupt:
        pass
