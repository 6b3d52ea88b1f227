"""The incremental WebM reader against real ffmpeg output, cut at arbitrary points.

Files are made by ffmpeg in a temporary directory: VP8 and VP9 with Opus, seekable
(known-size Segment and Clusters, Cues at the end) and piped (unknown-size Segment, as a
live muxer writes it). ffmpeg always writes known-size Clusters, so the MediaRecorder
form (unknown-size Clusters) is made here by rewriting each Cluster's size field to all
ones, keeping every offset. Ground truth comes from an independent size-walker and from
ffprobe's packet flags; the join payload must decode with ffmpeg.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from server.webcast.webm import (
    CLUSTER,
    ClusterStart,
    Frame,
    InitSegment,
    LiveStream,
    WebMError,
    WebMStreamParser,
    read_id,
    read_size,
    validate_first_chunk,
)

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
CLUSTER_ID = CLUSTER.to_bytes(4, "big")


def need_ffmpeg() -> None:
    ok = Path(FFMPEG).exists() and Path(FFPROBE).exists()
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail("required in CI: ffmpeg and ffprobe")
    pytest.skip("ffmpeg/ffprobe are not installed")


# Independent helpers (a plain size-walker, not the code under test) ------------------

def _vint(data: bytes, i: int, keep_marker: bool) -> tuple[int, int]:
    n = 1
    while not data[i] & (0x80 >> (n - 1)):
        n += 1
    value = int.from_bytes(data[i:i + n], "big")
    if not keep_marker:
        value &= (1 << (7 * n)) - 1
    return value, n


def level1(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(segment offset, [(id, offset, header length)]) of the Segment's children, by sizes."""
    _, n = _vint(data, 0, True)
    size, m = _vint(data, n, False)
    seg = n + m + size
    _, n = _vint(data, seg, True)
    _, m = _vint(data, seg + n, False)
    i, out = seg + n + m, []
    while i < len(data):
        eid, n = _vint(data, i, True)
        size, m = _vint(data, i + n, False)
        out.append((eid, i, n + m))
        i += n + m + size
    return seg, out


def cluster_offsets(data: bytes) -> list[int]:
    return [off for eid, off, _ in level1(data)[1] if eid == CLUSTER]


def unknown_sizes(data: bytes) -> bytes:
    """The MediaRecorder layout: Segment and every Cluster with an unknown size."""
    buf = bytearray(data)
    seg, children = level1(data)
    for off in [seg] + [o for eid, o, _ in children if eid == CLUSTER]:
        _, n = _vint(buf, off, True)
        _, m = _vint(buf, off + n, False)
        buf[off + n] = 0xFF >> (m - 1)
        buf[off + n + 1:off + n + m] = b"\xff" * (m - 1)
    return bytes(buf)


def video_keyframes(path: Path) -> list[tuple[int, bool]]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,flags",
         "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.split():
        pos, flags = line.split(",")[:2]
        rows.append((int(pos), "K" in flags))
    return sorted(rows)


def decodes(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)


def chunked(data: bytes, mode, seed: int = 7):
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        n = rng.randint(1, 9000) if mode == "random" else mode
        yield data[i:i + n]
        i += n


def parse(data: bytes, mode=None) -> list:
    parser = WebMStreamParser()
    if mode is None:
        return parser.feed(data) + parser.end()
    events = []
    for piece in chunked(data, mode):
        events += parser.feed(piece)
    return events + parser.end()


# The media ---------------------------------------------------------------------------

SOURCES = {
    "vp8_file": (["-c:v", "libvpx", "-deadline", "realtime"], False),
    "vp9_file": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], False),
    "vp8_pipe": (["-c:v", "libvpx", "-deadline", "realtime"], True),
}
VARIANTS = [f"{name}{suffix}" for name in SOURCES for suffix in ("", "+unknown")]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Lazily made WebM files, by variant name."""
    need_ffmpeg()
    folder = tmp_path_factory.mktemp("webm")
    made: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant in made:
            return made[variant]
        name, _, unknown = variant.partition("+")
        if unknown:
            path = folder / f"{name}.unknown.webm"
            path.write_bytes(unknown_sizes(get(name).read_bytes()))
        else:
            codec, piped = SOURCES[name]
            path = folder / f"{name}.webm"
            cmd = [FFMPEG, "-v", "error", "-y",
                   "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                   "-f", "lavfi", "-i", "sine=frequency=440",
                   "-t", "6", *codec, "-g", "25", "-c:a", "libopus", "-f", "webm"]
            if piped:
                with path.open("wb") as out:
                    subprocess.run(cmd + ["-"], check=True, stdout=out)
            else:
                subprocess.run(cmd + [str(path)], check=True)
        made[variant] = path
        return path

    return get


# Variable-length integers --------------------------------------------------------------

@pytest.mark.parametrize("length", range(1, 9))
def test_unknown_size_is_all_ones_at_every_length(length):
    raw = bytes([0xFF >> (length - 1)]) + b"\xff" * (length - 1)
    assert read_size(raw, 0) == (None, length)
    almost = raw[:-1] + bytes([raw[-1] - 1]) if length > 1 else b"\xfe"
    assert read_size(almost, 0) == ((1 << (7 * length)) - 2, length)


def test_vints_need_all_their_bytes_and_reject_bad_lengths():
    assert read_id(b"\x1a\x45\xdf", 0) is None
    assert read_id(b"\x1a\x45\xdf\xa3", 0) == (0x1A45DFA3, 4)
    assert read_size(b"\x01\xff", 0) is None
    with pytest.raises(WebMError) as err:
        read_size(b"\x00\x00", 0)
    assert err.value.code == "webm.malformed"
    with pytest.raises(WebMError):
        read_id(b"\x08\x00\x00\x00\x00", 0)  # 5-byte IDs are not allowed in WebM


# Real files ----------------------------------------------------------------------------

CUTS = [(v, m) for v in VARIANTS for m in (None, 1, 7, 4096, "random")
        if m != 1 or "unknown" in v]  # byte by byte on the MediaRecorder layout only (slow)


@pytest.mark.parametrize("variant, mode", CUTS)
def test_events_do_not_depend_on_how_the_stream_is_cut(media, variant, mode):
    data = media(variant).read_bytes()
    events = parse(data, mode)
    assert events == parse(data)  # the one-shot parse
    inits = [e for e in events if isinstance(e, InitSegment)]
    clusters = [e for e in events if isinstance(e, ClusterStart)]
    offsets = cluster_offsets(media(variant.partition("+")[0]).read_bytes())
    assert len(inits) == 1 and inits[0].data == data[:offsets[0]]
    assert [c.offset for c in clusters] == offsets
    assert all(data[o:o + 4] == CLUSTER_ID for o in offsets)
    assert clusters[0].keyframe is True and clusters[0].timecode == 0
    assert sum(isinstance(e, Frame) for e in events) > 6 * 25


@pytest.mark.parametrize("variant", VARIANTS)
def test_cluster_keyframe_flags_match_ffprobe(media, variant):
    path = media(variant)
    data = path.read_bytes()
    packets = video_keyframes(path)
    clusters = [e for e in parse(data, "random") if isinstance(e, ClusterStart)]
    bounds = [c.offset for c in clusters] + [len(data)]
    for cluster, end in zip(clusters, bounds[1:]):
        first = next((key for pos, key in packets if cluster.offset <= pos < end), None)
        assert cluster.keyframe is (first if first is not None else False), cluster
    assert sum(c.keyframe for c in clusters) == sum(key for _, key in packets) == 6


@pytest.mark.parametrize("variant", ["vp8_pipe+unknown", "vp9_file+unknown", "vp8_file"])
def test_every_split_point_of_the_stream_head(media, variant):
    """The init segment, the first Cluster header and the first blocks, cut at every byte."""
    head = media(variant).read_bytes()[:1600]
    expected = parse(head)
    assert any(isinstance(e, InitSegment) for e in expected)
    for cut in range(1, len(head)):
        parser = WebMStreamParser()
        assert parser.feed(head[:cut]) + parser.feed(head[cut:]) + parser.end() == expected, cut


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("stop", [0.3, 0.55, 0.9, 1.0])
def test_join_payload_is_init_then_keyframe_cluster_and_decodes(media, variant, stop, tmp_path):
    data = media(variant).read_bytes()
    live = LiveStream()
    pieces = []
    for chunk in chunked(data[:int(len(data) * stop)], "random", seed=11):
        pieces += live.feed(chunk).pieces
    payload = live.join_payload()
    assert payload is not None and payload.startswith(live.init_segment)
    assert len(live.init_segment) == cluster_offsets(media(variant.partition("+")[0]).read_bytes())[0]
    rest = payload[len(live.init_segment):]
    assert rest[:4] == CLUSTER_ID
    assert pieces[0].init and pieces[0].data == live.init_segment
    # The payload is exactly the latest keyframe cluster start .. the last forwarded byte.
    starts = [p for p in pieces if p.cluster_start and p.keyframe]
    assert rest == b"".join(p.data for p in pieces[pieces.index(starts[-1]):])
    events = WebMStreamParser().feed(payload)
    first = next(e for e in events if isinstance(e, ClusterStart))
    assert first.offset == len(live.init_segment) and first.keyframe is True
    out = tmp_path / "join.webm"
    out.write_bytes(payload)
    result = decodes(out)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variant", ["vp8_file", "vp9_file+unknown", "vp8_pipe"])
def test_pieces_rebuild_the_stream_with_unknown_cluster_sizes(media, variant, tmp_path):
    data = media(variant).read_bytes()
    live = LiveStream()
    pieces = []
    for chunk in chunked(data, 4096):
        pieces += live.feed(chunk).pieces
    pieces += live.end().pieces
    offsets = [p.offset for p in pieces]
    assert offsets == sorted(offsets) and pieces[0].init
    for a, b in zip(pieces, pieces[1:]):
        assert a.offset + len(a.data) == b.offset  # contiguous, nothing lost or repeated
    known = media(variant.partition("+")[0]).read_bytes()
    body = b"".join(p.data for p in pieces[1:])
    assert body == unknown_sizes(known)[len(pieces[0].data):]
    assert [p.offset for p in pieces if p.cluster_start] == cluster_offsets(known)
    assert 5900 <= live.duration_ms <= 6100
    out = tmp_path / "rebuilt.webm"
    out.write_bytes(b"".join(p.data for p in pieces))
    result = decodes(out)
    assert result.returncode == 0, result.stderr


def test_gop_buffer_overflow_waits_for_the_next_keyframe_cluster(media):
    data = media("vp8_pipe+unknown").read_bytes()
    offsets = cluster_offsets(media("vp8_pipe").read_bytes())
    live = LiveStream(max_gop=8000)  # smaller than one 1-second cluster here
    live.feed(data[:offsets[1] - 100])
    assert live.join_payload() is None and live.gop_overflows == 1
    at = offsets[1] - 100
    while live.join_payload() is None and at < offsets[1] + 8000:
        live.feed(data[at:at + 500])
        at += 500
    payload = live.join_payload()
    assert payload is not None and payload[len(live.init_segment):][:4] == CLUSTER_ID
    events = WebMStreamParser().feed(payload)
    assert next(e for e in events if isinstance(e, ClusterStart)).keyframe is True


def test_a_restarted_recorder_brings_a_new_init_segment(media):
    first = media("vp8_pipe+unknown").read_bytes()
    second = media("vp9_file+unknown").read_bytes()
    live = LiveStream()
    pieces = []
    for chunk in chunked(first + second, "random", seed=3):
        pieces += live.feed(chunk).pieces
    inits = [p for p in pieces if p.init]
    assert [p.offset for p in inits] == [0, len(first)]
    assert live.parser.tracks[1].codec == "V_VP9"
    assert live.join_payload().startswith(inits[1].data)


def test_validate_first_chunk_accepts_the_recorders_first_chunk(media):
    data = media("vp8_pipe+unknown").read_bytes()
    validate_first_chunk(data[:300])


# Refusals ------------------------------------------------------------------------------

def ebml(doc_type: bytes = b"webm") -> bytes:
    body = b"\x42\x86\x81\x01" + b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body


SEGMENT_UNKNOWN = b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff"
TRACKS = bytes.fromhex("1654ae6b") + b"\x8b" + b"\xae\x89" + b"\xd7\x81\x01" + b"\x83\x81\x01" + b"\x86\x81V"


@pytest.mark.parametrize("data, code", [
    (random.Random(1).randbytes(4096), "webm.not_webm"),
    (bytes.fromhex("ffd8ffe000104a46494600010101"), "webm.not_webm"),  # JPEG
    (bytes.fromhex("0000002066747970697336") + b"\0" * 64, "webm.not_webm"),  # MP4
    (ebml(b"matroska") + SEGMENT_UNKNOWN, "webm.not_webm"),
    (b"\x1a\x45\xdf\xa3\x00\x00", "webm.malformed"),  # size vint longer than 8 bytes
    (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x10\x00\x00\x00", "webm.too_large"),
    (b"\x1a\x45", "webm.incomplete"),
    (ebml()[:-2], "webm.incomplete"),
    (b"", "webm.incomplete"),
])
def test_validate_first_chunk_refuses(data, code):
    with pytest.raises(WebMError) as err:
        validate_first_chunk(data)
    assert err.value.code == code
    assert err.value.to_ack()["error"]["code"] == code
    assert err.value.message  # for people, in Vietnamese


@pytest.mark.parametrize("tail, code", [
    (b"\x1f\x43\xb6\x75\xff", "webm.malformed"),  # a Cluster before Tracks
    (TRACKS + b"\xa3\x81\x00", "webm.malformed"),  # a block outside any Cluster
    (TRACKS + b"\x1f\x43\xb6\x75\xff\xa0\x83\xa1\x83\x81\x00\x00\x80", "webm.malformed"),  # overruns group
    (TRACKS + b"\x12\x54\xc3\x67\x01\x00\x00\x00\x10\x00\x00\x00", "webm.too_large"),  # 256 MB Tags
    (TRACKS + b"\x1f\x43\xb6\x75\xff\xa3\x01\x00\x00\x00\x10\x00\x00\x00", "webm.too_large"),
    (TRACKS + b"\x1f\x43\xb6\x75\x09\x00\x00\x00\x00", "webm.too_large"),  # 512 MB Cluster
    (TRACKS + b"\x43\x21\x81\x00", "webm.malformed"),  # an unknown element in the Segment
    (TRACKS + b"\x1f\x43\xb6\x75\xff\xe7\x81\x00\xa3\x82\x81\x00", "webm.malformed"),  # block too short
    (TRACKS + b"\x1f\x43\xb6\x75\xff\x00", "webm.malformed"),  # bad ID vint
    (TRACKS + b"\x15\x49\xa9\x66\xff", "webm.malformed"),  # unknown size on Info
])
def test_parser_refuses_malformed_streams_at_any_cut(tail, code):
    data = ebml() + SEGMENT_UNKNOWN + tail
    for cut in range(1, len(data)):
        parser = WebMStreamParser(max_element=1 << 24)
        with pytest.raises(WebMError) as err:
            parser.feed(data[:cut])
            parser.feed(data[cut:])
        assert err.value.code == code, cut
        with pytest.raises(WebMError):  # a refused stream stays refused
            parser.feed(b"\x00")


@pytest.mark.parametrize("data", [
    random.Random(2).randbytes(10000),
    bytes.fromhex("ffd8ffe000104a46494600010101") + random.Random(3).randbytes(2000),
    bytes.fromhex("0000001c667479706d703432") + random.Random(4).randbytes(2000),
])
def test_parser_refuses_non_webm_from_the_first_bytes(data):
    parser = WebMStreamParser()
    with pytest.raises(WebMError) as err:
        for byte in range(len(data)):
            parser.feed(data[byte:byte + 1])
    assert err.value.code == "webm.not_webm"


@pytest.mark.parametrize("where", ["segment", "cluster"])
def test_random_garbage_after_a_valid_start_is_refused_not_relayed(media, where):
    data = media("vp8_pipe+unknown").read_bytes()
    offsets = cluster_offsets(media("vp8_pipe").read_bytes())
    head = data[:offsets[0]] if where == "segment" else data[:offsets[1]]
    rng = random.Random(5)
    for _ in range(50):
        parser = WebMStreamParser()
        with pytest.raises(WebMError) as err:
            for chunk in chunked(head + rng.randbytes(1 << 16), "random", seed=rng.randint(0, 999)):
                parser.feed(chunk)
        assert err.value.code in {"webm.malformed", "webm.too_large"}
        assert parser.ready <= len(head) + 4096  # little garbage was declared forwardable


# Synthetic streams: BlockGroups, audio-only clusters ---------------------------------

def el(eid: int, payload: bytes, unknown: bool = False) -> bytes:
    head = eid.to_bytes((eid.bit_length() + 7) // 8, "big")
    if unknown:
        return head + b"\x01" + b"\xff" * 7 + payload
    return head + (0x10000000 | len(payload)).to_bytes(4, "big") + payload


def block(eid: int, track: int, rel: int, key: bool, size: int = 20) -> bytes:
    return el(eid, bytes([0x80 | track]) + rel.to_bytes(2, "big", signed=True)
              + bytes([0x80 if key else 0]) + b"\x55" * size)


def synthetic() -> bytes:
    tracks = el(0x1654AE6B, el(0xAE, el(0xD7, b"\x01") + el(0x83, b"\x01") + el(0x86, b"V_VP8"))
                + el(0xAE, el(0xD7, b"\x02") + el(0x83, b"\x02") + el(0x86, b"A_OPUS")))
    info = el(0x1549A966, el(0x2AD7B1, (1_000_000).to_bytes(3, "big")))
    c1 = el(CLUSTER, el(0xE7, b"\x00") + block(0xA3, 2, 0, True) + block(0xA3, 1, 5, True)
            + el(0xA0, block(0xA1, 1, 45, False) + el(0xFB, b"\xd8")), unknown=True)
    c2 = el(CLUSTER, el(0xE7, b"\x03\xe8") + block(0xA3, 2, 0, True)
            + el(0xA0, block(0xA1, 1, 5, False, 300) + el(0xFB, b"\xd8")), unknown=True)
    c3 = el(CLUSTER, el(0xE7, b"\x07\xd0") + el(0xA0, block(0xA1, 1, 0, True)) + el(0xEC, b"\0" * 3))
    audio_only = el(CLUSTER, el(0xE7, b"\x0b\xb8") + b"".join(block(0xA3, 2, t, True) for t in range(0, 1400, 40)),
                    unknown=True)
    c5 = el(CLUSTER, el(0xE7, b"\x13\x88") + block(0xA3, 1, 0, True), unknown=True)
    return ebml() + SEGMENT_UNKNOWN + info + tracks + c1 + c2 + c3 + audio_only + c5


def test_synthetic_stream_at_every_split_point():
    data = synthetic()
    expected = parse(data)
    clusters = [e for e in expected if isinstance(e, ClusterStart)]
    assert [(c.timecode, c.keyframe) for c in clusters] == [
        (0, True), (1000, False), (2000, True), (3000, False), (5000, True)]
    frames = [e for e in expected if isinstance(e, Frame)]
    assert (frames[2].track, frames[2].timecode_ms, frames[2].keyframe) == (1, 45, False)
    # Events of a cluster come after its ClusterStart, even when audio came first.
    assert isinstance(expected[1], ClusterStart) and expected[2] == Frame(2, 0, True, 24)
    for a in range(1, len(data)):
        for b in (a + 1, a + 5, a + 97):
            parser = WebMStreamParser()
            got = parser.feed(data[:a]) + parser.feed(data[a:b]) + parser.feed(data[b:]) + parser.end()
            assert got == expected, (a, b)


def test_audio_without_video_is_not_held_back_for_long():
    """A cluster with no video for max_unresolved_ms is forwarded as a non-join point."""
    data = synthetic()
    live = LiveStream()
    audio_only_at = [e.offset for e in parse(data) if isinstance(e, ClusterStart)][3]
    header = len(el(CLUSTER, b"", unknown=True)) + len(el(0xE7, b"\x0b\xb8"))
    feed = live.feed(data[:audio_only_at + header + 30 * len(block(0xA3, 2, 0, True))])  # 1.2 s of audio
    assert feed.pieces[-1].offset == audio_only_at and not feed.pieces[-1].keyframe
    assert live.join_payload()[len(live.init_segment):][:4] == CLUSTER_ID
