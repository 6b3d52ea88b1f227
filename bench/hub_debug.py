"""The hub as `python -m server` runs it, plus Engine.IO bookkeeping for diagnosis
(bench only; the hub's code is not changed). Every 5 s it prints one line:

  [eio] t=<s since start> sockets=<n> pings_sent=<Δ> pongs=<Δ> closes={reason: Δ}
        writer_idle_exits=<Δ> queue_max=<largest send queue> answer_queue=<writer backlog>
        gc_total={n<gen>: passes, ms<gen>: their CPU ms, since start}

  [gc] gen=<g> ms=<pause> cpu_ms=<its CPU time> collected=<n> counts=<gc.get_count()>   (every collection over 20 ms)
  [stall] late=<ms> and the loop's stack, when it has not run for 150 ms (HUB_DEBUG_STALLS=1)
  [lag] max=<ms> p99=<ms> over the last 5 s of a 50 ms sleep loop   (how late the loop ran)
  gc: ...   CPython's DEBUG_STATS for every pass (HUB_DEBUG_GC_STATS=1): the objects in each generation
  [young] t=<s> gen=<g> <n> objects: [(type, count), ...]   every HUB_DEBUG_YOUNG seconds
  [late] t=<s> ms=<lag>   each single lag over HUB_DEBUG_LATE_MS (default 60), as it happens
  [up] t=<s> ms=<in the app> path=<p>   each POST of HUB_DEBUG_UPLOADS (default /api/snapshots)

HUB_DEBUG_HOPS=<file>: every answer.save and attempt.submit is stamped (wall time) where it
passes: its frame read off the websocket (r), the writer's save entered (e), its batch
committed and the waiter woken (c), the handler resumed (w), its ack frame written (s).
Appended to <file> as JSON lines [attempt_id, seq or -1, r, e, c, w, s] at every report;
bench/hops.py joins them with the learners' own send and ack times (exam_load --ack-keys).

    .venv/bin/python bench/hub_debug.py --host 127.0.0.1 --port 5000   (same env as the hub)
    bench/exam_load.py --hub-launcher bench/hub_debug.py ...
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server import realtime  # noqa: E402

realtime.patch()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import engineio.socket as eio_socket  # noqa: E402
from engineio import exceptions as eio_exc  # noqa: E402

T0 = time.time()
stats = collections.Counter()
closes = collections.Counter()


def instrument() -> None:
    S = eio_socket.Socket
    orig_send_ping, orig_schedule, orig_close, orig_poll = S._send_ping, S.schedule_ping, S.close, S.poll

    def _send_ping(self):
        orig_send_ping(self)
        stats["pings_sent"] += 1

    def schedule_ping(self):
        stats["pongs"] += 1
        if not self.last_ping:
            stats["pong_without_ping"] += 1
        return orig_schedule(self)

    def close(self, wait=True, abort=False, reason=None):
        if not self.closed and not self.closing:
            closes[str(reason)] += 1
        return orig_close(self, wait=wait, abort=abort, reason=reason)

    def poll(self):
        try:
            return orig_poll(self)
        except eio_exc.QueueEmpty:
            stats["writer_idle_exits"] += 1
            raise

    S._send_ping, S.schedule_ping, S.close, S.poll = _send_ping, schedule_ping, close, poll

    # when the start broadcast left the hub: first and last socket write of exam.start
    from geventwebsocket.websocket import WebSocket

    orig_send = WebSocket.send

    def send(self, message, binary=None):
        if isinstance(message, str) and '"exam.start"' in message[:40]:
            now = time.time()
            start_sends.append(now)
        return orig_send(self, message, binary)

    WebSocket.send = send


start_sends: list = []

HOPS = os.environ.get("HUB_DEBUG_HOPS")
#: frame read, not yet in the writer: (attempt_id, seq) -> record; (ws id, ack id) -> record.
hop_by_key: dict = {}
hop_by_ack: dict = {}
hop_done: list = []


def _ack_id(msg: str) -> tuple[int, int]:
    """The ack id after '42/exam,' or '43/exam,' (-1 if none), and where its digits end."""
    j = 8
    while j < len(msg) and msg[j].isdigit():
        j += 1
    return (int(msg[8:j]) if j > 8 else -1), j


def _parse_event(msg):
    """'42/exam,<ack id>["answer.save",{...}]' -> (ack id, key) for the writer's two events."""
    if not msg.startswith("42/exam,"):
        return None
    ack, j = _ack_id(msg)
    if ack < 0 or not (msg.startswith('["answer.save"', j) or msg.startswith('["attempt.submit"', j)):
        return None
    try:
        name, data = json.loads(msg[j:])[:2]
        key = (int(data["attempt_id"]), int(data["seq"]) if name == "answer.save" else -1)
    except Exception:  # noqa: BLE001 (bad input is the hub's to refuse, not the probe's)
        return None
    return ack, key


def instrument_hops() -> None:
    from geventwebsocket.websocket import WebSocket

    from server.exam import delivery

    orig_receive, orig_send, orig_save = WebSocket.receive, WebSocket.send, delivery.AnswerWriter.save

    def receive(self):
        msg = orig_receive(self)
        if isinstance(msg, str):
            t = time.time()
            parsed = _parse_event(msg)
            if parsed is not None:
                rec = [parsed[1][0], parsed[1][1], t, 0.0, 0.0, 0.0, 0.0]
                hop_by_key[parsed[1]] = rec
                hop_by_ack[(id(self), parsed[0])] = rec
        return msg

    def send(self, message, binary=None):
        if isinstance(message, str) and message.startswith("43/exam,"):
            rec = hop_by_ack.pop((id(self), _ack_id(message)[0]), None)
            if rec is not None:
                rec[6] = time.time()
                hop_done.append(rec)
        return orig_send(self, message, binary)

    def save(self, item, timeout=15.0):
        rec = hop_by_key.pop((item.attempt_id, item.seq if item.kind == delivery.ANSWER else -1), None)
        if rec is not None:
            rec[3] = time.time()
        out = orig_save(self, item, timeout)
        if rec is not None:
            rec[4] = getattr(item.done, "t_set", 0.0)
            rec[5] = time.time()
        return out

    WebSocket.receive, WebSocket.send, delivery.AnswerWriter.save = receive, send, save


def stamp_events() -> None:
    """The writer's events remember when they were set (its batch committed)."""
    from server.extensions import socketio

    eio = socketio.server.eio
    base = type(eio.create_event())

    class Stamped(base):  # a subclass: gevent's compiled Event takes no new attributes
        t_set = 0.0

        def set(self):
            self.t_set = time.time()
            return super().set()

    def create_event(*args, **kwargs):
        return Stamped(*args, **kwargs)

    eio.create_event = create_event


def dump_hops() -> None:
    if not hop_done:
        return
    done = hop_done[:]
    del hop_done[:len(done)]
    with open(HOPS, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in done))


_gc_t0 = [0.0, 0.0]
#: every pass, whatever its length: count and CPU seconds by generation (the [eio] line).
gc_totals = collections.Counter()


def _gc_probe(phase, info) -> None:
    import gc

    if phase == "start":
        _gc_t0[0] = time.perf_counter()
        _gc_t0[1] = time.thread_time()
        return
    ms = (time.perf_counter() - _gc_t0[0]) * 1000
    # cpu_ms: the pass's own CPU time; on a busy machine the wall time also holds the
    # time the kernel gave the core to another process.
    cpu_ms = (time.thread_time() - _gc_t0[1]) * 1000
    gc_totals[f"n{info['generation']}"] += 1
    gc_totals[f"ms{info['generation']}"] += cpu_ms
    if ms >= 20:
        print(f"[gc] t={time.time() - T0:.1f} gen={info['generation']} ms={ms:.0f} cpu_ms={cpu_ms:.0f} "
              f"collected={info['collected']} counts={gc.get_count()}", flush=True)


_beat = [time.perf_counter()]
STALL_S = float(os.environ.get("HUB_DEBUG_STALL_MS", 150)) / 1000
MAIN_THREAD = [0]


def stall_watcher() -> None:
    """A real OS thread: when the loop has not beaten for 150 ms, print where it is."""
    import sys as _sys
    import traceback

    from gevent import monkey

    sleep = monkey.get_original("time", "sleep")
    main_id = MAIN_THREAD[0]
    reported = 0.0
    while True:
        sleep(0.05)
        late = time.perf_counter() - _beat[0]
        if late > STALL_S and _beat[0] != reported:
            reported = _beat[0]
            frame = _sys._current_frames().get(main_id)
            stack = "".join(traceback.format_stack(frame, limit=25)) if frame else "?"
            print(f"[stall] t={time.time() - T0:.1f} late={late * 1000:.0f}ms\n{stack}", flush=True)


def lag_monitor(app) -> None:
    from server.extensions import socketio

    lags, last = [], time.time()
    while True:
        t = time.perf_counter()
        _beat[0] = t
        socketio.sleep(0.01)
        _beat[0] = time.perf_counter()
        socketio.sleep(0.04)
        lag = (time.perf_counter() - t - 0.05) * 1000
        lags.append(lag)
        if lag >= LATE_MS:
            print(f"[late] t={time.time() - T0:.2f} ms={lag:.0f}", flush=True)
        if time.time() - last >= 5:
            lags.sort()
            print(f"[lag] t={time.time() - T0:.0f} max={lags[-1]:.0f} p99={lags[int(len(lags) * 0.99)]:.0f}", flush=True)
            lags, last = [], time.time()


LATE_MS = float(os.environ.get("HUB_DEBUG_LATE_MS", 60))


def time_uploads(app) -> None:
    """Wrap the whole WSGI app (outside the upload gate): how long each upload was in it."""
    paths = set(os.environ.get("HUB_DEBUG_UPLOADS", "/api/snapshots").split(","))
    inner = app.wsgi_app

    def timed(environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in paths:
            return inner(environ, start_response)
        t = time.perf_counter()
        try:
            return inner(environ, start_response)
        finally:
            print(f"[up] t={time.time() - T0:.2f} ms={(time.perf_counter() - t) * 1000:.0f} "
                  f"path={environ.get('PATH_INFO')}", flush=True)

    app.wsgi_app = timed


def young_census(app) -> None:
    """HUB_DEBUG_YOUNG=<s>: every <s> seconds, what the two young generations hold, by type
    (from the loop, never inside a collection's callback: that crashed the hub)."""
    import gc

    from server.extensions import socketio

    every = float(os.environ["HUB_DEBUG_YOUNG"])
    while True:
        socketio.sleep(every)
        for gen in (0, 1):
            objs = gc.get_objects(generation=gen)
            kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objs)
            n = len(objs)
            del objs
            print(f"[young] t={time.time() - T0:.0f} gen={gen} {n} objects: {kinds.most_common(18)}", flush=True)


def garbage_census(app) -> None:
    """HUB_DEBUG_GARBAGE=<s>: every <s> seconds, what a full collection would free, by type."""
    import gc

    from server.extensions import socketio

    every = float(os.environ["HUB_DEBUG_GARBAGE"])
    while True:
        socketio.sleep(every)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kinds = collections.Counter(type(o).__qualname__ for o in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        print(f"[garbage] t={time.time() - T0:.0f} {sum(kinds.values())} objects: {kinds.most_common(25)}", flush=True)


def reporter(app) -> None:
    from server.extensions import socketio

    last = collections.Counter()
    last_closes = collections.Counter()
    while True:
        socketio.sleep(float(os.environ.get("HUB_DEBUG_EVERY", 5)))
        eio = socketio.server.eio
        socks = list(eio.sockets.values())
        qmax = max((s.queue.qsize() for s in socks), default=0)
        writer = app.extensions.get("answer_writer")
        backlog = writer.backlog() if writer is not None else 0
        wstats = ""
        if writer is not None:
            waits, writer.waits = sorted(writer.waits), []
            w99 = waits[int(len(waits) * 0.99)] * 1000 if waits else 0
            wstats = (f" batches={writer.batches} items={writer.items} slowest_batch_ms={writer.slowest_batch_ms:.0f}"
                      f" commit_wait_p99_ms={w99:.0f} n={len(waits)}")
            writer.slowest_batch_ms = 0
        d = {k: stats[k] - last[k] for k in stats}
        dc = {k: closes[k] - last_closes[k] for k in closes if closes[k] - last_closes[k]}
        last, last_closes = collections.Counter(stats), collections.Counter(closes)
        if HOPS:
            dump_hops()
        if start_sends:
            print(f"[start] sent to {len(start_sends)} sockets from {start_sends[0] - T0:.3f} to "
                  f"{start_sends[-1] - T0:.3f} ({(start_sends[-1] - start_sends[0]) * 1000:.0f} ms)", flush=True)
            start_sends.clear()
        print(f"[eio] t={time.time() - T0:.0f} sockets={len(socks)} pings_sent={d.get('pings_sent', 0)} "
              f"pongs={d.get('pongs', 0)} pong_without_ping={d.get('pong_without_ping', 0)} closes={dc} "
              f"writer_idle_exits={d.get('writer_idle_exits', 0)} queue_max={qmax} answer_queue={backlog}{wstats} "
              f"gc_total={{{', '.join(f'{k}: {v:.0f}' for k, v in sorted(gc_totals.items()))}}}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    instrument()
    if HOPS:
        instrument_hops()
    from server import create_app

    app = create_app()
    if HOPS:
        stamp_events()
    from server.exam import notify

    orig_started = notify.exam_started

    def exam_started(exam):
        t = time.time()
        orig_started(exam)
        print(f"[start] exam_started() at {t - T0:.3f}, took {(time.time() - t) * 1000:.0f} ms", flush=True)

    notify.exam_started = exam_started
    time_uploads(app)
    realtime.on_serve(app, reporter)
    realtime.on_serve(app, lag_monitor)
    if os.environ.get("HUB_DEBUG_GARBAGE"):
        realtime.on_serve(app, garbage_census)
    if os.environ.get("HUB_DEBUG_YOUNG"):
        realtime.on_serve(app, young_census)
    if os.environ.get("HUB_DEBUG_STALLS"):
        from gevent import monkey

        MAIN_THREAD[0] = monkey.get_original("_thread", "get_ident")()
        monkey.get_original("_thread", "start_new_thread")(stall_watcher, ())
    import gc

    gc.callbacks.append(_gc_probe)
    if os.environ.get("HUB_DEBUG_GC_STATS"):
        # CPython's own line per pass (to stderr): how many objects each generation holds.
        gc.set_debug(gc.DEBUG_STATS)
    print(f"Điểm Cầu hub (debug) on http://{args.host}:{args.port} ({realtime.mode()})", flush=True)
    realtime.serve(app, args.host, args.port)


if __name__ == "__main__":
    main()
