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
print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count() > 0,
                  "track": gevent.config.track_greenlet_tree}))
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
    got = _serving_probe(tmp_path)
    assert got["threshold"] == [10_000, 10, 2**31 - 1]  # no automatic full pass
    assert got["frozen"] is True
    assert got["track"] is False


def test_the_collectors_threshold_and_greenlet_tracking_are_settings(tmp_path):
    got = _serving_probe(tmp_path, DIEMCAU_GC_YOUNG_THRESHOLD="1234", GEVENT_TRACK_GREENLET_TREE="1")
    assert got["threshold"][0] == 1234
    assert got["track"] is True  # the operator's own GEVENT_TRACK_GREENLET_TREE wins
