"""The hub's C-speed replacements inside gevent-websocket give the originals' answers."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from geventwebsocket import utf8validator as original_utf8
from geventwebsocket.websocket import Header

from server.realtime import FastUtf8Validator, fast_mask_payload


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 4097, 94_000])
def test_unmasking_equals_the_original(size):
    payload = os.urandom(size)
    header = Header(fin=True, opcode=1, length=size)
    header.mask = os.urandom(4)
    assert fast_mask_payload(header, payload) == Header.mask_payload(header, payload)
    assert bytes(fast_mask_payload(header, fast_mask_payload(header, payload))) == payload


def _frames(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(3, len(data) - 1))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


CASES = [
    "Điểm Cầu: câu trả lời đã được lưu".encode(), "đ".encode()[:1], b"\xff\xfe", b"plain ascii",
    "ắ".encode() + b"\xc3\x28", "😀 emoji".encode(), "😀".encode()[:3], b"",
]


@pytest.mark.parametrize("data", CASES)
def test_utf8_validation_equals_the_original_frame_by_frame(data):
    rng = random.Random(len(data))
    frames = _frames(data, rng) or [b""]
    ours, theirs = FastUtf8Validator(), original_utf8.Utf8Validator()
    for frame in frames:
        mine, ref = ours.validate(frame), theirs.validate(frame)
        assert mine[0] == ref[0]
        if not ref[0]:
            break
        assert mine[1] == ref[1]


@pytest.mark.parametrize("upgrade", [False, True])
def test_a_socket_events_request_context_leaves_no_cyclic_garbage(app, upgrade):
    """Flask-SocketIO builds a request context from the socket's handshake for each event;
    routing that path must not raise (an exception's traceback is a cycle per event)."""
    import gc

    from flask import request
    from flask.ctx import RequestContext
    from werkzeug.test import EnvironBuilder

    headers = {"Upgrade": "websocket", "Connection": "Upgrade"} if upgrade else {}
    environ = EnvironBuilder(path="/socket.io/", query_string="EIO=4&transport=websocket", headers=headers).get_environ()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            with app.request_context(dict(environ)):
                assert request.routing_exception is None
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, (RequestContext, BaseException))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


_SERVING_PROBE = """
import gc, json
from server import realtime
realtime.patch()
import gevent
from server import create_app
app = create_app()
realtime.collector_policy(app)
before = gc.get_stats()[0]["collections"]
gevent.sleep(2.3)  # the loop runs: nothing here allocates enough to trigger a pass by count
print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count() > 0,
                  "track": gevent.config.track_greenlet_tree,
                  "young_passes": gc.get_stats()[0]["collections"] - before}))
"""


def _serving_probe(tmp_path, **env) -> dict:
    root = Path(__file__).resolve().parents[2]
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DIEMCAU_GC", "GEVENT_TRACK"))}
    full.update(DIEMCAU_ASYNC_MODE="gevent", DIEMCAU_INSTANCE=str(tmp_path), SECRET_KEY="x", **env)
    full.pop("DATABASE_URL", None)
    full.pop("REDIS_URL", None)
    out = subprocess.run([sys.executable, "-c", _SERVING_PROBE], cwd=root, env=full, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_serving_gevent_hub_collects_young_objects_rarely_and_spawns_untracked(tmp_path):
    got = _serving_probe(tmp_path, DIEMCAU_GC_YOUNG_INTERVAL="0.5")
    # young passes by count (10,000) and by time; no automatic middle or full pass
    assert got["threshold"] == [10_000, 2**31 - 1, 2**31 - 1]
    assert 3 <= got["young_passes"] <= 6  # one every 0.5 s over 2.3 s
    assert got["frozen"] is True
    assert got["track"] is False


def test_the_collectors_thresholds_pacing_and_greenlet_tracking_are_settings(tmp_path):
    got = _serving_probe(tmp_path, DIEMCAU_GC_YOUNG_THRESHOLD="1234", GEVENT_TRACK_GREENLET_TREE="1",
                         DIEMCAU_GC_YOUNG_INTERVAL="0")
    assert got["threshold"] == [1234, 10, 2**31 - 1]  # unpaced: Python's middle generation
    assert got["young_passes"] == 0
    assert got["track"] is True  # the operator's own GEVENT_TRACK_GREENLET_TREE wins


# Engine.IO's pings: one timer per server instead of a sleeping task per socket ------------

class _FakeServer:
    ping_interval = 25

    def __init__(self) -> None:
        self.started: list = []
        self.slept: list[float] = []

    def start_background_task(self, fn):
        self.started.append(fn)
        return object()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class _FakeSocket:
    def __init__(self, sid: str, fail: bool = False) -> None:
        self.sid, self.fail = sid, fail
        self.closing = self.closed = False
        self.last_ping = None
        self.sent: list = []

    def send(self, pkt) -> None:
        if self.fail:
            raise OSError("broken pipe")
        self.sent.append(pkt)


def test_the_ping_timer_pings_each_socket_once_when_due_in_order_and_skips_the_closed():
    from engineio import packet

    from server.realtime import PingTimer

    server = _FakeServer()
    timer = PingTimer(server)
    a, b, broken, gone, c = (_FakeSocket("a"), _FakeSocket("b"), _FakeSocket("x", fail=True),
                             _FakeSocket("gone"), _FakeSocket("c"))
    for s in (a, b, broken, gone):
        timer.add(s)
    assert len(server.started) == 1  # one task for the server, started with the first socket
    first_due = timer.due[0][0]
    timer.add(c)
    assert len(server.started) == 1
    gone.closed = True

    assert timer.send_due(first_due - 0.001) == 0  # nothing before its time
    assert not a.sent and a.last_ping is None
    # all but c are due (c was added later); the broken socket does not stop the others
    sent = timer.send_due(timer.due[3][0])
    assert sent == 2
    assert [p.packet_type for p in a.sent] == [packet.PING] and [p.packet_type for p in b.sent] == [packet.PING]
    assert a.last_ping is not None and b.last_ping is not None
    assert gone.sent == [] and gone.last_ping is None
    assert [s for _, s in timer.due] == [c]
    assert timer.send_due(timer.due[0][0]) == 1 and len(c.sent) == 1
    assert not timer.due


def test_the_engineio_socket_schedules_its_pings_through_the_shared_timer():
    import engineio.socket as eio_socket

    from server import realtime

    original = eio_socket.Socket.schedule_ping
    try:
        realtime.one_ping_timer()
        server = _FakeServer()
        sock = eio_socket.Socket.__new__(eio_socket.Socket)
        sock.server, sock.sid, sock.last_ping, sock.closing, sock.closed = server, "s1", 123.0, False, False
        sock.schedule_ping()
        assert sock.last_ping is None
        assert [s for _, s in realtime.PingTimer.of(server).due] == [sock]
        sock.schedule_ping()  # a second pong before the next ping: not scheduled twice
        assert len(realtime.PingTimer.of(server).due) == 1
    finally:
        eio_socket.Socket.schedule_ping = original


def _raw_engineio(hub, answer_pings: bool, seconds: float) -> tuple[int, bool]:
    """A bare Engine.IO websocket: (pings received, closed by the hub) within `seconds`."""
    import time

    import websocket

    ws = websocket.create_connection(f"ws://127.0.0.1:{hub.port}/socket.io/?EIO=4&transport=websocket", timeout=1)
    pings, closed = 0, False
    end = time.time() + seconds
    try:
        assert ws.recv().startswith("0{")  # the open packet
        while time.time() < end:
            try:
                msg = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                closed = True
                break
            if msg == "2":
                pings += 1
                if answer_pings:
                    ws.send("3")
            elif msg in ("1", ""):
                closed = True
                break
    finally:
        ws.close()
    return pings, closed


@pytest.mark.parametrize("mode", ["gevent", "eventlet"])
def test_a_live_hub_pings_every_socket_again_and_again_and_drops_the_silent(db_url, hub_factory, mode):
    import threading

    hub = hub_factory(db_url, mode=mode, DIEMCAU_SOCKET_PING_INTERVAL=1, DIEMCAU_SOCKET_PING_TIMEOUT=1)
    out: dict = {}
    threads = [threading.Thread(target=lambda k=k, a=a: out.__setitem__(k, _raw_engineio(hub, a, 5.5)))
               for k, a in (("answers", True), ("silent", False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    pings, closed = out["answers"]
    assert pings >= 4 and not closed  # a ping every second, each after the previous pong
    pings, closed = out["silent"]
    assert pings == 1 and closed  # no pong: dropped after the timeout
