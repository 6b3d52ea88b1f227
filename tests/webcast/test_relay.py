"""The per-site queue policy: fast sites get everything, slow ones jump to the live edge.

Most tests drive a Fanout with a synthetic stream (an init chunk, then clusters cut into
several chunks, some clusters not opening with a keyframe) and simulated sites that ack
promptly, stall for a while or never ack. The last tests run real ffmpeg WebM through
LiveStream and the relay and decode what a stalled site and a late joiner received.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from server.webcast.relay import Chunk, Fanout, SiteQueue
from server.webcast.webm import LiveStream

DT = 0.1  # seconds between published chunks


def make_stream(clusters: int = 40, per_cluster: int = 5, key_every: int = 1, size: int = 1000) -> list[Chunk]:
    """Chunks as the hub publishes them: init, then each cluster as a start chunk + continuations."""
    chunks = [Chunk(0, b"I" * 300, created_at=0.0, init=True)]
    for c in range(clusters):
        for j in range(per_cluster):
            seq = len(chunks)
            chunks.append(Chunk(seq, bytes([seq % 251]) * size, cluster_start=j == 0,
                                keyframe=j == 0 and c % key_every == 0, created_at=seq * DT))
    return chunks


def fast(now: float) -> bool:
    return True


def stalled(start: float, end: float):
    return lambda now: not (start <= now < end)


def dead(now: float) -> bool:
    return False


def run(chunks: list[Chunk], sites: dict, drain: bool = True, **options) -> tuple[Fanout, dict[str, list[Chunk]]]:
    """Publish every chunk at its time; each tick, sites that are up take and ack what is ready."""
    fan = Fanout(**options)
    for site_id in sites:
        fan.add(site_id)
    got: dict[str, list[Chunk]] = {site_id: [] for site_id in sites}

    def tick(now: float) -> None:
        for site_id, sent in fan.pop_ready(now).items():
            got[site_id] += sent
        for site_id, up in sites.items():
            queue = fan.site(site_id)
            if up(now) and queue.in_flight:
                queue.ack(got[site_id][-1].seq)

    for chunk in chunks:
        fan.publish(chunk)
        tick(chunk.created_at)
    if drain:
        now = chunks[-1].created_at
        for _ in range(200):
            now += DT
            tick(now)
    return fan, got


def assert_decodable(received: list[Chunk]) -> None:
    """In order, starting at a join point, and resuming after every gap at a join point."""
    assert received and received[0].join_point
    for before, after in zip(received, received[1:]):
        assert after.seq > before.seq
        if after.seq != before.seq + 1:
            assert after.join_point, f"mid-cluster chunk {after.seq} after a drop"


SHAPES = [  # 10 s streams
    dict(clusters=20, per_cluster=5, key_every=1, size=1000),
    dict(clusters=10, per_cluster=10, key_every=1, size=300),
    dict(clusters=33, per_cluster=3, key_every=3, size=2000),  # some clusters open without a keyframe
    dict(clusters=100, per_cluster=1, key_every=2, size=5000),
]
OPTIONS = [
    dict(budget_bytes=64_000, max_latency=1.0, max_in_flight=4),
    dict(budget_bytes=8_000, max_latency=3.0, max_in_flight=2),
    dict(budget_bytes=1 << 20, max_latency=0.5, max_in_flight=8),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("options", OPTIONS)
def test_a_fast_site_gets_every_chunk_in_order(shape, options):
    chunks = make_stream(**shape)
    fan, got = run(chunks, {"fast": fast, "also": fast}, **options)
    for site_id in ("fast", "also"):
        assert got[site_id] == chunks
        stats = fan.site(site_id).stats
        assert stats.dropped_chunks == 0 and stats.jumps == 0 and fan.site(site_id).lag(99) == 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("behaviour", [stalled(1.0, 6.0), stalled(0.35, 4.0), dead])  # > max_latency
def test_a_stalled_site_jumps_to_a_keyframe_cluster_and_does_not_disturb_the_others(shape, options, behaviour):
    chunks = make_stream(**shape)
    alone, got_alone = run(chunks, {"a": fast, "b": fast}, **options)
    fan, got = run(chunks, {"a": fast, "slow": behaviour, "b": fast}, **options)
    assert got["a"] == got["b"] == got_alone["a"] == chunks
    slow = fan.site("slow")
    assert slow.stats.jumps >= 1 and slow.stats.dropped_chunks > 0
    assert_decodable(got["slow"])
    if behaviour is not dead:  # it came back: it must be at the live edge again
        assert got["slow"][-1] == chunks[-1]
        assert slow.lag(chunks[-1].created_at + 10) == 0
    else:
        assert slow.stalled and len(got["slow"]) == options["max_in_flight"]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_short_hiccup_within_the_limits_loses_nothing(shape):
    chunks = make_stream(**shape)
    fan, got = run(chunks, {"s": stalled(4.0, 4.6)}, budget_bytes=1 << 20, max_latency=1.0, max_in_flight=8)
    assert got["s"] == chunks and fan.site("s").stats.jumps == 0


@pytest.mark.parametrize("max_latency", [0.5, 1.0, 2.5])
def test_age_limit_drops_stale_chunks(max_latency):
    chunks = make_stream(clusters=60, per_cluster=4)
    queue = SiteQueue("s", budget_bytes=1 << 30, max_latency=max_latency, max_in_flight=3)
    delivered: list[tuple[float, Chunk]] = []
    for chunk in chunks:
        now = chunk.created_at
        queue.push(chunk)
        delivered += [(now, c) for c in queue.pop_ready(now)]
        if not 2.0 <= now < 12.0 and queue.in_flight:  # stalls for 10 s
            queue.ack(delivered[-1][1].seq)
    assert queue.stats.jumps >= 1 and queue.stats.dropped_bytes > 0
    assert all(now - c.created_at <= max_latency for now, c in delivered)
    assert_decodable([c for _, c in delivered])
    assert delivered[-1][1] == chunks[-1]


@pytest.mark.parametrize("budget", [5_000, 10_000, 50_000])
def test_byte_budget_drops_when_the_queue_grows(budget):
    chunks = make_stream(clusters=60, per_cluster=4, size=1000)
    queue = SiteQueue("s", budget_bytes=budget, max_latency=1e9, max_in_flight=2)
    high = 0
    for chunk in chunks:
        queue.push(chunk)  # never popped: a site that is not reading at all
        high = max(high, queue.queued_bytes)
    assert high <= budget
    assert queue.stats.jumps >= 1
    assert queue.stats.dropped_bytes + queue.queued_bytes == sum(len(c.data) for c in chunks)
    got = queue.pop_ready(1e6)
    assert got and got[0].join_point


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("behaviour", [fast, stalled(0.5, 3.0), stalled(2.0, 2.6)])
def test_stats_add_up(shape, options, behaviour):
    chunks = make_stream(**shape)
    fan, got = run(chunks, {"s": behaviour}, **options)
    s = fan.site("s")
    published = sum(len(c.data) for c in chunks)
    assert s.queued_bytes == 0 and s.in_flight == 0
    assert s.stats.delivered_bytes + s.stats.dropped_bytes == published
    assert s.stats.delivered_chunks + s.stats.dropped_chunks == len(chunks)
    assert s.stats.delivered_bytes == s.stats.acked_bytes == sum(len(c.data) for c in got["s"])
    snap = fan.stats(chunks[-1].created_at)["s"]
    assert snap["delivered_bytes"] + snap["dropped_bytes"] == published


def test_a_site_that_joins_without_payload_waits_for_a_join_point():
    chunks = make_stream(clusters=4, per_cluster=3, key_every=2)
    queue = SiteQueue("late", synced=False)
    for chunk in chunks[2:]:  # joins in the middle of the first cluster
        queue.push(chunk)
    got = queue.pop_ready(chunks[-1].created_at)
    assert got[0].seq == 7 and got[0].keyframe  # cluster 1 (seq 4) has no keyframe
    assert queue.stats.dropped_chunks == 5


def test_in_flight_limit_and_cumulative_acks():
    chunks = make_stream(clusters=2, per_cluster=4)
    queue = SiteQueue("s", max_in_flight=3, synced=True)
    for chunk in chunks[:6]:
        queue.push(chunk)
    first = queue.pop_ready(0.5)
    assert [c.seq for c in first] == [0, 1, 2] and queue.stalled
    assert queue.pop_ready(0.5) == []
    queue.ack(1)
    assert queue.in_flight == 1 and not queue.stalled
    assert [c.seq for c in queue.pop_ready(0.6)] == [3, 4]
    queue.ack(99)
    assert queue.in_flight == 0 and queue.lag(1.0) == pytest.approx(1.0 - chunks[5].created_at)


class FakeLive:
    def __init__(self, init, payload):
        self.init_segment, self._payload = init, payload

    def join_payload(self):
        return self._payload


@pytest.mark.parametrize("init, payload, synced", [
    (b"INIT", b"INIT+GOP", True),
    (b"INIT", None, False),  # no keyframe cluster buffered: init now, wait for the next one
    (None, None, False),  # not started: the init chunk is itself a join point
])
def test_fanout_join_registers_the_site_in_the_right_state(init, payload, synced):
    fan = Fanout(max_latency=2.0)
    first = fan.join("late", FakeLive(init, payload))
    assert first == (payload if payload is not None else init)
    assert fan.site("late").synced is synced and "late" in fan and len(fan) == 1
    fan.publish(Chunk(1, b"x", created_at=0.0))  # continuation of what the payload ended with
    assert [c.seq for c in fan.site("late").pop_ready(0.0)] == ([1] if synced else [])
    assert fan.remove("late") is not None and "late" not in fan and fan.remove("late") is None


def test_publish_cost_does_not_depend_on_a_sites_backlog():
    """A site that never reads holds at most its budget; the others are untouched."""
    fan = Fanout(budget_bytes=20_000, max_latency=1e9)
    for i in range(164):
        fan.add(i, synced=True)
    chunks = make_stream(clusters=200, per_cluster=5)
    for chunk in chunks:
        fan.publish(chunk)
        for i in range(1, 164):
            sent = fan.site(i).pop_ready(chunk.created_at)
            if sent:
                fan.site(i).ack(sent[-1].seq)
    assert fan.site(0).queued_bytes <= 20_000
    assert all(fan.site(i).stats.delivered_chunks == len(chunks) for i in range(1, 164))


# With real WebM ------------------------------------------------------------------------

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"


@pytest.fixture(scope="module")
def webm(tmp_path_factory) -> bytes:
    """12 s of VP8+Opus, keyframe every second, in the MediaRecorder layout."""
    if not Path(FFMPEG).exists():
        if os.environ.get("CI"):
            pytest.fail("required in CI: ffmpeg")
        pytest.skip("ffmpeg is not installed")
    path = tmp_path_factory.mktemp("relay") / "live.webm"
    with path.open("wb") as out:
        subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "12", "-c:v", "libvpx",
                        "-deadline", "realtime", "-g", "25", "-c:a", "libopus", "-f", "webm", "-"],
                       check=True, stdout=out)
    return path.read_bytes()


def decode(tmp_path: Path, data: bytes) -> subprocess.CompletedProcess:
    path = tmp_path / "site.webm"
    path.write_bytes(data)
    return subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("chunk_size", [3000, 11000])
def test_real_stream_through_the_relay_decodes_at_every_site(webm, tmp_path, chunk_size):
    """What a stalled site and a late joiner receive is still a stream ffmpeg decodes."""
    live = LiveStream()
    fan = Fanout(budget_bytes=60_000, max_latency=1.0, max_in_flight=4)
    sent_to: dict[str, list[Chunk]] = {"fast": [], "stalled": []}
    for site_id in sent_to:
        fan.add(site_id)
    up = {"fast": fast, "stalled": stalled(3.0, 7.5)}
    first_bytes = {"fast": b"", "stalled": b""}
    seq = 0
    for start in range(0, len(webm), chunk_size):
        now = 12.0 * start / len(webm)  # the recorder's wall clock, roughly
        if "late" not in sent_to and now >= 5.2:
            first_bytes["late"] = fan.join("late", live)
            sent_to["late"], up["late"] = [], fast
        for piece in live.feed(webm[start:start + chunk_size]).pieces:
            seq += 1
            fan.publish(Chunk(seq, piece.data, piece.cluster_start, piece.keyframe, now, piece.init))
        for site_id, sent in fan.pop_ready(now).items():
            sent_to[site_id] += sent
        for site_id, queue in ((s, fan.site(s)) for s in sent_to):
            if up[site_id](now) and queue.in_flight:
                queue.ack(sent_to[site_id][-1].seq)
    assert fan.site("stalled").stats.jumps >= 1 and fan.site("fast").stats.jumps == 0
    assert fan.site("late").stats.dropped_chunks == 0
    assert_decodable(sent_to["stalled"])
    assert first_bytes["late"].startswith(live.init_segment) and len(first_bytes["late"]) > len(live.init_segment)
    for site_id, sent in sent_to.items():
        result = decode(tmp_path, first_bytes[site_id] + b"".join(c.data for c in sent))
        assert result.returncode == 0, (site_id, result.stderr)
    assert sum(len(c.data) for c in sent_to["fast"]) == len(webm) - len(live.parser._buf)
