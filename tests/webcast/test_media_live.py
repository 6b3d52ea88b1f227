"""The live media path over real python-socketio clients against live hubs on loopback.

A publisher (the rapporteur's socket) feeds a real ffmpeg-made WebM (VP8 + Opus, 1 s
keyframes, in MediaRecorder's layout: unknown-size Segment and Clusters) in ~250 ms
chunks cut at arbitrary bytes, at the pace a recorder would; bridge points (kiosk
sockets) subscribe and ffmpeg must decode what each one received. The first tests are
in-process units of the bus, the relay's track state and the recording writer.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio

from conftest import need, socket_token_for
from factories import PASSWORD, make_staff
from hub import staff_session
from server.core.timeutil import now_utc
from server.extensions import db
from server.webcast.bus import Message, TrackRelay
from server.webcast.models import Lecture, LectureStatus
from server.webcast.recording import RecordingWriter, has_cues, probe_duration_ms, remux
from server.webcast.webm import CLUSTER, LiveStream, read_id, read_size

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
SECONDS = 8
CHUNK_S = 0.25


def need_ffmpeg() -> None:
    need(Path(FFMPEG).exists() and Path(FFPROBE).exists(), "ffmpeg/ffprobe are not installed")


def recorder_layout(data: bytes) -> bytes:
    """Rewrite the Segment's and every Cluster's size as unknown, as MediaRecorder writes them."""
    buf = bytearray(data)

    def unknown(at: int) -> int:
        n = read_id(buf, at)[1]
        size, m = read_size(buf, at + n)
        buf[at + n] = 0xFF >> (m - 1)
        buf[at + n + 1:at + n + m] = b"\xff" * (m - 1)
        return at + n + m, size

    head = read_id(buf, 0)
    size, m = read_size(buf, head[1])
    i, _ = unknown(head[1] + m + size)  # into the Segment (already unknown-size when piped)
    while i < len(buf):
        eid, n = read_id(buf, i)
        size, m = read_size(buf, i + n)
        if eid == CLUSTER:
            unknown(i)
        i += n + m + size
    return bytes(buf)


def make_webm(path: Path, seconds: int = SECONDS, freq: int = 440) -> bytes:
    """Piped, like a live muxer (no Duration, Cues or SeekHead), a cluster per keyframe (1 s)."""
    made = subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                           "-f", "lavfi", "-i", f"sine=frequency={freq}", "-t", str(seconds), "-c:v", "libvpx",
                           "-deadline", "realtime", "-b:v", "800k", "-g", "25", "-c:a", "libopus",
                           "-cluster_size_limit", "2000000", "-cluster_time_limit", "1000", "-f", "webm", "-"],
                          check=True, timeout=120, capture_output=True)
    data = recorder_layout(made.stdout)
    path.write_bytes(data)
    return data


@pytest.fixture(scope="module")
def webm(tmp_path_factory) -> bytes:
    need_ffmpeg()
    return make_webm(tmp_path_factory.mktemp("media") / "lecture.webm")


@pytest.fixture(scope="module")
def webm_b(tmp_path_factory) -> bytes:
    """Another recorder run (after a reconnect): same codecs, its clock from 0 again."""
    need_ffmpeg()
    return make_webm(tmp_path_factory.mktemp("media") / "again.webm", seconds=4, freq=660)


def chunks_of(data: bytes, seconds: float = SECONDS) -> list[bytes]:
    """Cut by time, not by structure, like MediaRecorder's timeslices (a little jitter)."""
    per = int(len(data) / seconds * CHUNK_S)
    out, i, k = [], 0, 0
    while i < len(data):
        n = per + (k % 5 - 2) * per // 7
        out.append(data[i:i + n])
        i, k = i + n, k + 1
    return out


def decode(tmp: Path, data: bytes, name: str = "site.webm") -> tuple[int, str, int]:
    """(return code, errors, video frames decoded)."""
    path = tmp / name
    path.write_bytes(data)
    run = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=120)
    frames = int(run.stdout.strip() or 0) if run.stdout.strip().isdigit() else 0
    full = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)
    return full.returncode, full.stderr, frames


# clients ------------------------------------------------------------------------------

class Site:
    """A bridge point's socket on /media; records every media.data (the handler's return acks it)."""

    def __init__(self, url: str, auth: dict, stall_after: int | None = None):
        self.messages: list[dict] = []
        self.times: list[float] = []
        self.ended = threading.Event()
        self.gone = threading.Event()
        self.stall_after = stall_after
        self.release = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("media.data", self._data, namespace="/media")
        self.sio.on("media.ended", lambda data: self.ended.set(), namespace="/media")
        self.sio.on("disconnect", lambda *a: self.gone.set(), namespace="/media")
        self.sio.connect(url, namespaces=["/media"], auth=auth, transports=["websocket"], wait_timeout=10)

    def _data(self, msg):
        self.messages.append(msg)
        self.times.append(time.monotonic())
        if self.stall_after is not None and len(self.messages) >= self.stall_after:
            self.release.wait(60)  # a stalled room: takes nothing more, acks nothing

    def subscribe(self, lecture_id: int, track: str = "av") -> dict:
        return self.sio.call("media.subscribe", {"lecture_id": lecture_id, "track": track}, namespace="/media", timeout=10)

    @property
    def data(self) -> bytes:
        return b"".join(m["data"] for m in self.messages)

    def streams(self) -> list[bytes]:
        """The bytes of each stream received (a new one begins at every init message)."""
        out: list[bytearray] = []
        for m in self.messages:
            if m.get("init") or not out:
                out.append(bytearray())
            out[-1] += m["data"]
        return [bytes(s) for s in out]

    def seq_gaps(self) -> int:
        seqs = [m["seq"] for m in self.messages if not m.get("init")]
        return sum(b - a - 1 for a, b in zip(seqs, seqs[1:]) if b > a + 1)

    def close(self):
        self.release.set()
        try:
            self.sio.disconnect()
        except Exception:
            pass


class Publisher:
    def __init__(self, url: str, token: str):
        self.sio = socketio.Client(reconnection=False)
        self.sio.connect(url, namespaces=["/media"], auth={"token": token}, transports=["websocket"], wait_timeout=10)
        self.seq = 0
        self.sent_at: list[float] = []

    def send(self, lecture_id: int, data, track: str = "av", timeout: float = 10) -> dict:
        self.seq += 1
        self.sent_at.append(time.monotonic())
        return self.sio.call("media.publish", {"lecture_id": lecture_id, "track": track, "seq": self.seq, "data": data},
                             namespace="/media", timeout=timeout)

    def stream(self, lecture_id: int, chunks: list[bytes], track: str = "av", pace: float = CHUNK_S,
               on_chunk=None) -> list[dict]:
        acks, start = [], time.monotonic()
        for i, chunk in enumerate(chunks):
            if on_chunk:
                on_chunk(i)
            acks.append(self.send(lecture_id, chunk, track))
            time.sleep(max(0.0, start + (i + 1) * pace - time.monotonic()))
        return acks

    def call(self, event: str, data) -> dict:
        return self.sio.call(event, data, namespace="/media", timeout=10)

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:
            pass


@pytest.fixture
def stage(app, world, db_url, hub_factory, tmp_path):
    """A live lecture by a rapporteur, and a way to start hubs and open sockets on them."""
    rapporteur = make_staff("rapporteur", "bcv")
    lecture = Lecture(title="Nghị quyết Trung ương", rapporteur_id=rapporteur.id, status=LectureStatus.live,
                      started_at=now_utc())
    db.session.add(lecture)
    db.session.commit()
    opened: list = []

    class Stage:
        pass

    s = Stage()
    s.lecture_id, s.rapporteur_id, s.world, s.app, s.tmp = lecture.id, rapporteur.id, world, app, tmp_path
    s.prefix = f"diemcau:media:test-{uuid.uuid4().hex[:8]}"

    def hub(**env):
        env.setdefault("DIEMCAU_MEDIA_BUS_PREFIX", s.prefix)
        env.setdefault("DIEMCAU_MEDIA_STATUS_CHECK_S", "0.5")
        return hub_factory(db_url, **env)

    def token(user_id: int) -> str:
        return socket_token_for(app, user_id)

    def kiosk(index: int) -> dict:
        from server.accounts.auth import kiosk_token

        with app.test_request_context():
            return {"kiosk": kiosk_token(world.bridge_points[index].id)}

    def site(h, index: int, **kw) -> Site:
        opened.append(Site(h.url, kiosk(index), **kw))
        return opened[-1]

    def publisher(h, user_id: int | None = None) -> Publisher:
        opened.append(Publisher(h.url, token(user_id or rapporteur.id)))
        return opened[-1]

    def lecture_row() -> Lecture:
        db.session.rollback()
        return db.session.get(Lecture, s.lecture_id)

    s.hub, s.token, s.kiosk, s.site, s.publisher, s.lecture = hub, token, kiosk, site, publisher, lecture_row
    yield s
    for client in opened:
        client.close()


def wait_until(check, timeout: float = 15.0, step: float = 0.1):
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {check}")


def end_lecture(stage) -> None:
    """End it as another process would (the control room's operation): the hub notices."""
    db.session.rollback()
    lecture = db.session.get(Lecture, stage.lecture_id)
    lecture.end(now_utc())
    db.session.commit()


def ffprobe_duration(path: Path) -> float:
    """The container's duration (what a finished, remuxed file declares)."""
    return probe_duration_ms(path, FFPROBE) / 1000


def media_seconds(path: Path) -> float:
    """How much media a (live, duration-less) file holds: its latest packet time."""
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=120).stdout
    return max(float(x.strip(",")) for x in out.split() if x.strip(",") not in ("", "N/A"))


# units: the bus, the track state, the recording writer -----------------------------------

def test_bus_messages_survive_the_wire():
    msg = Message("piece", 12, "audio", "pub1", 99, 1234.5, b"\x1aE\xdf\xa3" * 100, True, True, True,
                  'audio/webm; codecs="opus"', b"init")
    assert Message.decode(msg.encode()) == msg
    assert Message.decode(Message("finish", 3).encode()) == Message("finish", 3)


def test_a_track_relay_resyncs_after_a_gap_and_picks_up_a_stream_it_did_not_see_begin(webm):
    live = LiveStream()
    pieces = [p for c in chunks_of(webm) for p in live.feed(c).pieces]
    msgs = [Message("piece", 1, "av", "A", i + 1, 0.0, p.data, p.init, p.cluster_start, p.keyframe, "m",
                    live.init_segment if p.cluster_start and p.keyframe else b"") for i, p in enumerate(pieces)]
    keys = [i for i, m in enumerate(msgs) if m.cluster_start and m.keyframe]
    full = TrackRelay((1, "av"), {}, 8 << 20)
    full.fanout.add("site")
    for m in msgs[:keys[2] + 1] + msgs[keys[2] + 3:]:  # two pieces lost on the way
        full.accept(m, 0.0)
    assert full.gaps == 1
    queue = full.fanout.site("site")
    got = queue.pop_ready(0.0)
    while queue.in_flight:
        queue.ack(got[-1].seq)
        got += queue.pop_ready(0.0)
    assert queue.stats.dropped_chunks > 0  # what followed the hole, up to the next keyframe
    late = TrackRelay((1, "av"), {}, 8 << 20)  # a process started mid-lecture
    for m in msgs[5:]:
        late.accept(m, 0.0)
    payload = late.join.join_payload()
    assert payload is not None and payload.startswith(live.init_segment)


def test_recording_keeps_one_timeline_across_recorder_runs_and_remux_adds_cues(webm, webm_b, tmp_path):
    path = tmp_path / "rec.webm"
    for data in (webm, webm_b):  # a second writer resumes the file after a reconnect
        writer = RecordingWriter.open(path)
        assert RecordingWriter.open(path) is None  # the file is held
        live = LiveStream()
        for chunk in chunks_of(data):
            feed = live.feed(chunk)
            ms = max((e.timecode_ms for e in feed.events if hasattr(e, "track")), default=None)
            writer.append(feed.pieces, media_ms=ms, timecode_scale=live.parser.timecode_scale)
        writer.append(live.end().pieces, media_ms=None, timecode_scale=live.parser.timecode_scale)
        writer.close()
    assert not has_cues(path)
    assert abs(media_seconds(path) - (SECONDS + 4)) < 0.5
    remux(path, FFMPEG)
    assert has_cues(path)
    assert abs(ffprobe_duration(path) - (SECONDS + 4)) < 1.0
    assert decode(tmp_path, path.read_bytes(), "check.webm")[0] == 0


# the hub ----------------------------------------------------------------------------

def test_sites_play_the_live_stream_a_late_joiner_starts_at_a_keyframe_and_it_is_recorded(stage, webm, tmp_path):
    hub = stage.hub()
    a, b = stage.site(hub, 0), stage.site(hub, 1)
    for s in (a, b):
        ack = s.subscribe(stage.lecture_id)
        assert ack["ok"] and ack["track"] == "av" and ack["live"] is False
    pub = stage.publisher(hub)
    late: list[Site] = []

    def join_late(i):
        if i == int(4.2 / CHUNK_S):
            late.append(stage.site(hub, 2))
            ack = late[0].subscribe(stage.lecture_id)
            assert ack["ok"] and ack["live"] is True and ack["mime"] == 'video/webm; codecs="vp8,opus"'

    acks = pub.stream(stage.lecture_id, chunks_of(webm), on_chunk=join_late)
    assert all(a_["ok"] for a_ in acks), [a_ for a_ in acks if not a_["ok"]][:3]
    assert pub.call("media.end", {"lecture_id": stage.lecture_id, "track": "av"})["ok"]
    wait_until(lambda: len(a.data) >= len(webm) - 2000 and len(b.data) >= len(webm) - 2000)

    for s in (a, b):
        assert s.messages[0]["init"] and s.messages[0]["mime"] == 'video/webm; codecs="vp8,opus"'
        assert s.seq_gaps() == 0 and abs(len(s.data) - len(webm)) < 2000
        code, err, frames = decode(tmp_path, s.data)
        assert code == 0 and not err, err
        assert frames >= SECONDS * 25 - 2
    c = late[0]
    first = c.messages[0]
    assert first["init"] and first["key"] and first["data"][:4] == b"\x1a\x45\xdf\xa3"
    code, err, frames = decode(tmp_path, c.data)
    assert code == 0 and not err, err
    assert (SECONDS - 4.2 - 0.5) * 25 <= frames <= (SECONDS - 3) * 25  # from the keyframe before it joined

    # the recording: valid WebM with the fed duration, then seekable once the lecture ends.
    lecture = stage.lecture()
    path = hub.instance / "recordings" / lecture.recording_file
    assert path.is_file() and lecture.recording_file.endswith(".webm") and len(lecture.recording_file) >= 24
    assert abs(media_seconds(path) - SECONDS) < 0.5
    assert not has_cues(path)
    wait_until(lambda: stage.lecture().recording_bytes > len(webm) * 0.9)
    end_lecture(stage)
    wait_until(lambda: has_cues(path) and stage.lecture().recording_bytes == path.stat().st_size, timeout=30)
    assert abs(stage.lecture().duration_ms / 1000 - SECONDS) < 0.6 and abs(ffprobe_duration(path) - SECONDS) < 0.6
    for s in (a, b, c):
        assert s.ended.wait(5)

    # the replay page and the file, with Range for seeking; login required; 404 unknown.
    staff = staff_session(hub.url, "btc", PASSWORD)
    page = staff.get(f"{hub.url}/lectures/{stage.lecture_id}/replay", timeout=10)
    assert page.status_code == 200 and f"/lectures/{stage.lecture_id}/recording.webm" in page.text
    part = staff.get(f"{hub.url}/lectures/{stage.lecture_id}/recording.webm", headers={"Range": "bytes=100-1099"}, timeout=10)
    assert part.status_code == 206 and len(part.content) == 1000 and part.content == path.read_bytes()[100:1100]
    assert staff.get(f"{hub.url}/lectures/999/replay", timeout=10).status_code == 404
    anon = requests.get(f"{hub.url}/lectures/{stage.lecture_id}/recording.webm", allow_redirects=False, timeout=10)
    assert anon.status_code in (302, 401)
    # publishing after the end is refused
    again = stage.publisher(hub)
    assert again.send(stage.lecture_id, webm[:4000])["error"]["code"] == "lecture.not_live"


def test_a_stalled_site_does_not_slow_the_others_and_is_disconnected(stage, webm, tmp_path):
    hub = stage.hub(DIEMCAU_MEDIA_DEAD_AFTER_S=3)
    fast = stage.site(hub, 0)
    stalled = stage.site(hub, 1, stall_after=3)
    for s in (fast, stalled):
        assert s.subscribe(stage.lecture_id)["ok"]
    pub = stage.publisher(hub)
    acks = pub.stream(stage.lecture_id, chunks_of(webm))
    assert all(a["ok"] for a in acks)
    wait_until(lambda: len(fast.data) >= len(webm) - 2000)
    stalled.release.set()
    assert stalled.gone.wait(10), "the hub did not drop the stalled site"
    assert fast.seq_gaps() == 0
    code, err, frames = decode(tmp_path, fast.data)
    assert code == 0 and not err and frames >= SECONDS * 25 - 30
    # the fast site got each piece soon after the chunk that completed it was sent
    lag = [t - max(s for s in pub.sent_at if s <= t) for t in fast.times[1:]]
    assert sorted(lag)[int(len(lag) * 0.95)] < 0.3, sorted(lag)[-5:]
    assert len(stalled.messages) < len(fast.messages) / 2


def test_refusals_have_their_code_and_disturb_nothing(stage, webm, tmp_path):
    hub = stage.hub()
    world = stage.world
    site = stage.site(hub, 0)
    assert site.subscribe(stage.lecture_id)["ok"]
    db.session.rollback()
    planned = Lecture(title="Chưa phát", rapporteur_id=stage.rapporteur_id)
    db.session.add(planned)
    other = make_staff("rapporteur", "bcv-khac")
    db.session.commit()
    pub = stage.publisher(hub)
    learner = stage.publisher(hub, world.learners[0].id)
    proctor = stage.publisher(hub, world.staff["proctor"].id)
    stranger = stage.publisher(hub, other.id)
    chunks = chunks_of(webm)

    def code(ack):
        assert ack["ok"] is False, ack
        return ack["error"]["code"]

    assert code(pub.send(stage.lecture_id, b"not a webm stream at all" * 10)) == "webm.not_webm"
    assert code(pub.send(stage.lecture_id, chunks[1])) == "webm.not_webm"  # a middle chunk cannot start a stream
    assert code(pub.send(stage.lecture_id, b"\x1a\x45\xdf\xa3" + b"\x00" * (600 * 1024))) == "media.too_large"
    assert code(pub.send(999, chunks[0])) == "lecture.unknown"
    assert code(pub.send(planned.id, chunks[0])) == "lecture.not_live"
    assert code(pub.send(stage.lecture_id, chunks[0], track="hd")) == "media.bad_track"
    assert code(pub.call("media.publish", "xin chào")) == "payload.malformed"
    assert code(pub.call("media.publish", {"lecture_id": stage.lecture_id, "track": "av", "seq": 1, "data": "text"})) == "payload.malformed"
    assert code(learner.call("media.subscribe", {"lecture_id": stage.lecture_id})) == "media.not_viewer"
    assert not site.messages
    assert stage.lecture().recording_file is None or not (hub.instance / "recordings" / stage.lecture().recording_file).exists() \
        or (hub.instance / "recordings" / stage.lecture().recording_file).stat().st_size == 0

    audio_seq = iter(range(1, 1000))
    intruders = {learner: "media.not_rapporteur", proctor: "media.not_rapporteur", stranger: "media.not_rapporteur"}

    def interleave(i):
        if i % 4 == 2:  # others try to publish into the lecture while it streams
            for who, expected in intruders.items():
                assert code(who.send(stage.lecture_id, chunks[0] if i == 2 else chunks[i])) == expected
            assert code(pub.call("media.publish", {"lecture_id": stage.lecture_id, "track": "audio",
                                                   "seq": next(audio_seq), "data": chunks[i]})) == "webm.not_webm"

    pub.seq = 100  # a fresh stream may start at any sequence number
    acks = pub.stream(stage.lecture_id, chunks, on_chunk=interleave)
    assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]][:2]
    pub.call("media.end", {"lecture_id": stage.lecture_id, "track": "av"})
    wait_until(lambda: len(site.data) >= len(webm) - 2000)
    assert site.seq_gaps() == 0 and abs(len(site.data) - len(webm)) < 2000
    rc, err, frames = decode(tmp_path, site.data)
    assert rc == 0 and not err and frames >= SECONDS * 25 - 2
    path = hub.instance / "recordings" / stage.lecture().recording_file
    assert abs(media_seconds(path) - SECONDS) < 0.5


def test_the_publisher_reconnects_and_sites_and_recording_carry_on(stage, webm, webm_b, tmp_path):
    hub = stage.hub()
    site = stage.site(hub, 0)
    assert site.subscribe(stage.lecture_id)["ok"]
    first = stage.publisher(hub)
    half = chunks_of(webm)[: int(4 / CHUNK_S)]
    assert all(a["ok"] for a in first.stream(stage.lecture_id, half))
    # the link drops without a goodbye; the page reconnects and restarts its recorder
    second = stage.publisher(hub)
    acks = second.stream(stage.lecture_id, chunks_of(webm_b, 4))
    assert all(a["ok"] for a in acks), acks[:2]
    first.close()
    assert second.call("media.end", {"lecture_id": stage.lecture_id, "track": "av"})["ok"]
    wait_until(lambda: len(site.streams()) == 2 and len(site.streams()[1]) >= len(webm_b) - 2000)
    for i, data in enumerate(site.streams()):
        rc, err, _ = decode(tmp_path, data, f"part{i}.webm")
        assert rc == 0 and not err, err
    path = hub.instance / "recordings" / stage.lecture().recording_file
    end_lecture(stage)
    wait_until(lambda: has_cues(path), timeout=30)
    assert abs(ffprobe_duration(path) - 8.0) < 0.8  # 4 s + 4 s on one timeline
    rc, err, frames = decode(tmp_path, path.read_bytes(), "rec.webm")
    assert rc == 0 and frames >= 8 * 25 - 30


def test_two_hub_processes_with_redis_serve_sites_on_either(stage, webm, tmp_path, redis_url):
    hub_a = stage.hub(REDIS_URL=redis_url)
    hub_b = stage.hub(REDIS_URL=redis_url)
    near, far = stage.site(hub_a, 0), stage.site(hub_b, 1)
    for s in (near, far):
        assert s.subscribe(stage.lecture_id)["ok"]
    pub = stage.publisher(hub_a)
    late: list[Site] = []

    def join_late(i):
        if i == int(4 / CHUNK_S):
            late.append(stage.site(hub_b, 2))
            assert late[0].subscribe(stage.lecture_id)["live"] is True

    assert all(a["ok"] for a in pub.stream(stage.lecture_id, chunks_of(webm), on_chunk=join_late))
    pub.call("media.end", {"lecture_id": stage.lecture_id, "track": "av"})
    wait_until(lambda: len(far.data) >= len(webm) - 2000 and len(near.data) >= len(webm) - 2000)
    for s in (near, far, late[0]):
        rc, err, frames = decode(tmp_path, s.data)
        assert rc == 0 and not err, err
    assert far.seq_gaps() == 0 and abs(len(far.data) - len(webm)) < 2000
    end_lecture(stage)
    for s in (near, far):
        assert s.ended.wait(10)


def test_hls_playlist_with_segments_appears_from_the_live_stream(stage, webm, tmp_path):
    from server.webcast.hls import has_libx264

    need_ffmpeg()
    need(has_libx264(FFMPEG), "ffmpeg has no libx264 encoder")
    hub = stage.hub(DIEMCAU_HLS_ENABLED=1)
    pub = stage.publisher(hub)
    assert all(a["ok"] for a in pub.stream(stage.lecture_id, chunks_of(webm)))
    staff = staff_session(hub.url, "btc", PASSWORD)
    url = f"{hub.url}/hls/{stage.lecture_id}/index.m3u8"

    def segments():
        r = staff.get(url, timeout=10)
        return r.status_code == 200 and [line for line in r.text.splitlines() if line.endswith(".ts")]

    names = wait_until(segments, timeout=30)
    assert len(names) >= 2
    playlist = staff.get(url, timeout=10)
    assert "#EXT-X-TARGETDURATION:2" in playlist.text or "#EXT-X-TARGETDURATION:3" in playlist.text
    assert playlist.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    seg = staff.get(f"{hub.url}/hls/{stage.lecture_id}/{names[0]}", timeout=10)
    assert seg.status_code == 200 and seg.headers["Content-Type"] == "video/mp2t" and seg.content[:1] == b"\x47"
    probe = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
                           input=seg.content, capture_output=True, timeout=60)
    assert set(probe.stdout.decode().split()) == {"h264", "aac"}
    assert requests.get(url, allow_redirects=False, timeout=10).status_code in (302, 401)
    assert staff.get(f"{hub.url}/hls/{stage.lecture_id}/../secret", timeout=10).status_code == 404
