"""An incremental WebM (Matroska/EBML) reader for the live lecture relay.

The rapporteur's browser records with MediaRecorder and sends chunks every few hundred
milliseconds. Those chunks are cut by time, not by structure: one may hold the EBML
header, the Segment start, Info and Tracks and the first bytes of a Cluster; the next may
end in the middle of a SimpleBlock. The Segment and every Cluster usually have an
*unknown* size (all size bits set), so a Cluster ends only where the next one starts.

The hub never decodes media. It needs three facts, cheaply and with bounded memory:

* the initialization segment (everything before the first Cluster), which every bridge
  point must append first;
* where each Cluster starts and whether it opens with a video keyframe, because a late
  joiner (or a bridge point that fell behind and was cut) can only start there;
* clean cut points (element boundaries at cluster level), because a bridge point whose
  bytes stop in the middle of a SimpleBlock and resume at a new Cluster would feed its
  decoder garbage.

`WebMStreamParser` gives those facts as events; `LiveStream` uses them to keep the init
segment and the bytes since the latest keyframe cluster (the "GOP buffer") and to cut
the incoming bytes into pieces that are safe to forward one by one. Pure Python and no
I/O, so it runs inside any worker and is tested against real ffmpeg output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

# Element IDs (with their marker bits, as written in the stream) ---------------------
EBML = 0x1A45DFA3
DOC_TYPE = 0x4282
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
CODEC_ID = 0x86
CUES = 0x1C53BB6B
TAGS = 0x1254C367
CHAPTERS = 0x1043A770
ATTACHMENTS = 0x1941A469
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
REFERENCE_BLOCK = 0xFB
VOID = 0xEC
CRC32 = 0xBF

# Children of Segment: an unknown-size Cluster ends where one of these (or a new EBML
# header) begins.
LEVEL1 = frozenset({SEEK_HEAD, INFO, TRACKS, CUES, TAGS, CHAPTERS, ATTACHMENTS, CLUSTER})
TOP = frozenset({EBML, SEGMENT})
# The only IDs accepted in a Segment, a Cluster and a BlockGroup. Matroska readers may
# skip unknown elements, but a live WebM from a recorder uses none, and refusing them is
# what stops random bytes after a valid header from being relayed as "skipped elements".
ALLOWED = {
    SEGMENT: LEVEL1 | {VOID, CRC32},
    CLUSTER: frozenset({TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, VOID, CRC32,
                        0x5854, 0xA7, 0xAB, 0xAF}),  # SilentTracks, Position, PrevSize, EncryptedBlock
    BLOCK_GROUP: frozenset({BLOCK, REFERENCE_BLOCK, VOID, CRC32, 0xA2, 0x75A1, 0x9B, 0xFA, 0xFD,
                            0xA4, 0x75A2, 0x8E}),  # BlockVirtual .. DiscardPadding, Slices
}

TRACK_TYPE_VIDEO = 1
KEYFRAME_FLAG = 0x80
EBML_MAGIC = EBML.to_bytes(4, "big")
MAX_EBML_HEADER = 4096

MB = 1 << 20


class WebMError(ValueError):
    """A refusal with a stable code (for socket acks and logs) and a Vietnamese message.

    Codes: ``webm.not_webm`` (not an EBML stream, or DocType other than "webm"),
    ``webm.malformed`` (bad variable-length integer, element overrunning its parent,
    missing Tracks...), ``webm.too_large`` (an element claims more than the configured
    limit), ``webm.incomplete`` (validate_first_chunk got less than the EBML header).
    Kept free of Flask so the parser stays pure; `to_ack` has the same shape as
    DomainError's.
    """

    def __init__(self, code: str, message: str, **details: Any):
        self.code = code
        self.message = message
        self.details = details
        super().__init__(f"{code}: {message}")

    def to_ack(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"ok": False, "error": error}


def _malformed(why: str, **details: Any) -> WebMError:
    return WebMError("webm.malformed", f"Dữ liệu WebM bị hỏng: {why}.", **details)


def _not_webm(why: str = "luồng không bắt đầu bằng phần đầu EBML") -> WebMError:
    return WebMError("webm.not_webm", f"Luồng gửi lên không phải video WebM ({why}).")


def _too_large(element: int, size: int, limit: int) -> WebMError:
    return WebMError(
        "webm.too_large",
        f"Phần tử WebM 0x{element:X} khai báo {size} byte, vượt giới hạn {limit} byte.",
        element=f"0x{element:X}", size=size, limit=limit,
    )


# Variable-length integers -----------------------------------------------------------

def vint_length(first: int) -> int:
    """Length in bytes of a vint from its first byte (the position of the marker bit); 0 if invalid."""
    return 0 if first == 0 else 9 - first.bit_length()


def read_id(buf: Any, i: int, end: int | None = None) -> tuple[int, int] | None:
    """(element ID with marker bits, length) at buf[i], or None if more bytes are needed."""
    end = len(buf) if end is None else end
    if i >= end:
        return None
    n = vint_length(buf[i])
    if n == 0 or n > 4:
        raise _malformed("mã phần tử không hợp lệ", at=i)
    if i + n > end:
        return None
    return int.from_bytes(buf[i:i + n], "big"), n


def read_size(buf: Any, i: int, end: int | None = None) -> tuple[int | None, int] | None:
    """(size or None when unknown, length) at buf[i], or None if more bytes are needed.

    "Unknown" is every value bit set, whatever the length: 0xFF for one byte, 0x01 FF..FF
    for eight. MediaRecorder writes the 8-byte form for the Segment and each Cluster.
    """
    end = len(buf) if end is None else end
    if i >= end:
        return None
    n = vint_length(buf[i])
    if n == 0:
        raise _malformed("độ dài phần tử không hợp lệ", at=i)
    if i + n > end:
        return None
    value = int.from_bytes(buf[i:i + n], "big") & ((1 << (7 * n)) - 1)
    return (None if value == (1 << (7 * n)) - 1 else value), n


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _children(data: bytes, start: int, end: int):
    """Yield (id, payload_start, payload_end) of the known-size children in data[start:end]."""
    i = start
    while i < end:
        head = read_id(data, i, end)
        if head is None:
            raise _malformed("phần tử con bị cắt cụt")
        eid, n = head
        sz = read_size(data, i + n, end)
        if sz is None or sz[0] is None:
            raise _malformed("phần tử con bị cắt cụt hoặc không rõ kích thước")
        size, m = sz
        body = i + n + m
        if body + size > end:
            raise _malformed("phần tử con vượt quá phần tử cha")
        yield eid, body, body + size
        i = body + size


def _check_ebml_header(data: bytes, body: int, end: int) -> None:
    doc_type = None
    for eid, s, e in _children(data, body, end):
        if eid == DOC_TYPE:
            doc_type = bytes(data[s:e]).rstrip(b"\0").decode("ascii", "replace")
    if doc_type != "webm":
        raise _not_webm(f"DocType là {doc_type!r}, cần 'webm'")


def validate_first_chunk(data: bytes) -> None:
    """Refuse, before relaying anything, a stream that does not start as WebM.

    MediaRecorder's first chunk always holds the whole EBML header (~40 bytes), so a
    first chunk shorter than that is refused as ``webm.incomplete``.
    """
    data = bytes(data)
    if not data:
        raise WebMError("webm.incomplete", "Đoạn dữ liệu đầu tiên rỗng.")
    if data[:4] != EBML_MAGIC[:len(data[:4])]:
        raise _not_webm()
    head = read_id(data, 0)
    sz = read_size(data, 4) if head else None
    if head is None or sz is None:
        raise WebMError("webm.incomplete", "Đoạn dữ liệu đầu tiên chưa chứa đủ phần đầu EBML.")
    size, n = sz
    if size is None:
        raise _malformed("phần đầu EBML không rõ kích thước")
    if size > MAX_EBML_HEADER:
        raise _too_large(EBML, size, MAX_EBML_HEADER)
    if 4 + n + size > len(data):
        raise WebMError("webm.incomplete", "Đoạn dữ liệu đầu tiên chưa chứa đủ phần đầu EBML.")
    _check_ebml_header(data, 4 + n, 4 + n + size)


# Events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class InitSegment:
    """Everything from the EBML header up to (not including) the first Cluster."""

    data: bytes
    offset: int = 0  # stream offset of the EBML header (non-zero after a restart)


@dataclass(frozen=True)
class ClusterStart:
    """A Cluster begins at stream `offset`.

    Emitted once the keyframe question is settled: at the cluster's first video block
    (or first block of any track when there is no video track), or when the cluster ends
    or has run `max_unresolved_ms` of media without video (then keyframe is False; None
    for an empty cluster of an audio-only stream). `timecode` is in milliseconds.
    """

    offset: int
    timecode: int | None
    keyframe: bool | None


@dataclass(frozen=True)
class Frame:
    """One SimpleBlock (or Block in a BlockGroup); size is the block element's payload size."""

    track: int
    timecode_ms: int
    keyframe: bool
    size: int


Event = Union[InitSegment, ClusterStart, Frame]


@dataclass(frozen=True)
class Track:
    number: int
    type: int | None
    codec: str | None


@dataclass
class _Open:
    id: int
    start: int
    end: int | None  # None: unknown size


@dataclass
class _Cluster:
    offset: int
    timecode: int | None = None
    resolved: bool = False
    pending: list[Frame] = field(default_factory=list)


@dataclass
class _Group:
    block: tuple[int, int, int] | None = None  # track, relative timecode, size
    referenced: bool = False


class WebMStreamParser:
    """Feed bytes as they come; get events. Memory is bounded: only an unfinished
    element header, a small element we must read whole (EBML header, Info, Tracks,
    Timecode) and, until the first Cluster, the init segment are kept; block payloads
    are skipped without buffering.

    `ready` is the stream offset up to which bytes may be forwarded: it sits on an
    element boundary at cluster level or above, and never past the start of a Cluster
    whose keyframe flag is not yet known.
    """

    def __init__(self, *, max_element: int = 16 * MB, max_cluster: int = 64 * MB,
                 max_init: int = 1 * MB, max_unresolved_ms: int = 1000):
        self.max_element = max_element
        self.max_cluster = max_cluster
        self.max_init = max_init
        self.max_unresolved_ms = max_unresolved_ms
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._pos = 0  # stream offset of the next unparsed byte
        self._skip = 0  # payload bytes still to skip
        self._stack: list[_Open] = []
        self._cluster: _Cluster | None = None
        self._group: _Group | None = None
        self._stream_start: int | None = None  # EBML header offset while the init is pending
        self._header_seen = False
        self._init_done = False
        self._error: WebMError | None = None
        self._events: list[Event] = []
        self.tracks: dict[int, Track] = {}
        self.timecode_scale = 1_000_000
        self.ready = 0
        self._clean = 0  # the latest element boundary at cluster level, resolved or not

    @property
    def offset(self) -> int:
        """Bytes fed so far."""
        return self._base + len(self._buf)

    @property
    def video_track(self) -> int | None:
        for t in self.tracks.values():
            if t.type == TRACK_TYPE_VIDEO:
                return t.number
        return None

    def feed(self, chunk: bytes) -> list[Event]:
        if self._error:
            raise self._error
        self._buf += chunk
        self._events = events = []
        try:
            while self._step():
                pass
            self._trim()
        except WebMError as err:
            self._error = err
            raise
        return events

    def end(self) -> list[Event]:
        """The sender stopped: settle the open cluster (an unknown-size cluster has no other
        end) and let `ready` reach the last complete element. A partial element stays out."""
        if self._error:
            raise self._error
        self._events = events = []
        if self._cluster is not None and not self._cluster.resolved:
            self._resolve(False if self._cluster.pending and self.video_track else None)
            self.ready = self._clean
        return events

    # -- the state machine ------------------------------------------------------------

    def _avail(self) -> int:
        return self._base + len(self._buf) - self._pos

    def _step(self) -> bool:
        if self._skip:
            n = min(self._skip, self._avail())
            if n == 0:
                return False
            self._pos += n
            self._skip -= n
            if self._skip:
                return False
            self._boundary()
            return True
        top = self._stack[-1] if self._stack else None
        if top is not None and top.end is not None and self._pos >= top.end:
            if self._pos > top.end:
                raise _malformed("phần tử con vượt quá phần tử cha", at=self._pos)
            self._close()
            return True
        head = self._header()
        if head is None:
            return False
        eid, size, hlen = head
        if top is not None and top.end is None and not _is_child(top.id, eid):
            self._close()  # an unknown-size element ends where a non-child begins
            return True
        if top is not None and top.end is not None and size is not None and self._pos + hlen + size > top.end:
            raise _malformed(f"phần tử 0x{eid:X} vượt quá phần tử cha", at=self._pos)
        return self._dispatch(top.id if top else None, eid, size, hlen)

    def _header(self) -> tuple[int, int | None, int] | None:
        i = self._pos - self._base
        if not self._header_seen and not self._stack:
            got = bytes(self._buf[i:i + 4])
            if got != EBML_MAGIC[:len(got)]:
                raise _not_webm()
        head = read_id(self._buf, i)
        if head is None:
            return None
        eid, n = head
        sz = read_size(self._buf, i + n)
        if sz is None:
            return None
        return eid, sz[0], n + sz[1]

    def _have(self, n: int) -> bool:
        return self._avail() >= n

    def _bytes(self, start: int, n: int) -> bytes:
        i = start - self._base
        return bytes(self._buf[i:i + n])

    def _limit(self, eid: int, size: int | None, limit: int) -> int:
        if size is None:
            raise _malformed(f"phần tử 0x{eid:X} không được phép có kích thước không xác định")
        if size > limit:
            raise _too_large(eid, size, limit)
        return size

    def _skip_element(self, hlen: int, size: int) -> bool:
        self._pos += hlen
        self._skip = size
        if size == 0:
            self._boundary()
        return True

    def _dispatch(self, parent: int | None, eid: int, size: int | None, hlen: int) -> bool:
        start = self._pos
        if parent is None:
            if eid == EBML:
                size = self._limit(eid, size, MAX_EBML_HEADER)
                if not self._have(hlen + size):
                    return False
                data = self._bytes(start, hlen + size)
                _check_ebml_header(data, hlen, hlen + size)
                self._new_stream(start)
                self._pos += hlen + size
                return True
            if eid == SEGMENT:
                self._stack.append(_Open(SEGMENT, start, None if size is None else start + hlen + size))
                self._pos += hlen
                return True
            if eid in (VOID, CRC32):
                return self._skip_element(hlen, self._limit(eid, size, self.max_element))
            raise _malformed(f"phần tử 0x{eid:X} không được nằm ở cấp ngoài cùng")
        if eid not in ALLOWED[parent]:
            raise _malformed(f"phần tử 0x{eid:X} không hợp lệ trong 0x{parent:X}", at=start)
        if parent == SEGMENT:
            if eid == CLUSTER:
                return self._open_cluster(start, hlen, size)
            size = self._limit(eid, size, self.max_element)
            if eid in (INFO, TRACKS):
                if not self._have(hlen + size):
                    return False
                data = self._bytes(start + hlen, size)
                if eid == INFO:
                    self._read_info(data)
                else:
                    self._read_tracks(data)
                self._pos += hlen + size
                self._boundary()
                return True
            return self._skip_element(hlen, size)
        if parent == CLUSTER:
            size = self._limit(eid, size, self.max_element)
            if eid == TIMECODE:
                if size > 8:
                    raise _malformed("mốc thời gian của Cluster quá dài")
                if not self._have(hlen + size):
                    return False
                self._cluster.timecode = _uint(self._bytes(start + hlen, size))
                self._pos += hlen + size
                self._boundary()
                return True
            if eid == SIMPLE_BLOCK:
                head = self._block_header(start + hlen, size)
                if head is None:
                    return False
                track, rel, flags, blen = head
                self._on_block(track, rel, bool(flags & KEYFRAME_FLAG), size)
                return self._skip_element(hlen + blen, size - blen)
            if eid == BLOCK_GROUP:
                self._stack.append(_Open(BLOCK_GROUP, start, start + hlen + size))
                self._group = _Group()
                self._pos += hlen
                return True
            return self._skip_element(hlen, size)
        if parent == BLOCK_GROUP:
            size = self._limit(eid, size, self.max_element)
            if eid == BLOCK:
                head = self._block_header(start + hlen, size)
                if head is None:
                    return False
                track, rel, _flags, blen = head
                self._group.block = (track, rel, size)
                return self._skip_element(hlen + blen, size - blen)
            if eid == REFERENCE_BLOCK:
                self._group.referenced = True
            return self._skip_element(hlen, size)
        raise AssertionError(f"unexpected parent 0x{parent:X}")  # pragma: no cover

    def _block_header(self, at: int, size: int) -> tuple[int, int, int, int] | None:
        """(track, relative timecode, flags, header length) of a (Simple)Block, or None."""
        if not self._have(at - self._pos + 1):
            return None
        i = at - self._base
        tn = read_size(self._buf, i)
        if tn is None:
            return None
        track, n = tn
        if track is None or n + 3 > size:
            raise _malformed("khối dữ liệu (SimpleBlock) không hợp lệ")
        if not self._have(at - self._pos + n + 3):
            return None
        rel = int.from_bytes(self._buf[i + n:i + n + 2], "big", signed=True)
        return track, rel, self._buf[i + n + 2], n + 3

    # -- structure --------------------------------------------------------------------

    def _new_stream(self, start: int) -> None:
        """An EBML header: the first one, or a recorder restarted on the same connection."""
        self._header_seen = True
        self._init_done = False
        self._stream_start = start
        self.tracks = {}
        self.timecode_scale = 1_000_000

    def _open_cluster(self, start: int, hlen: int, size: int | None) -> bool:
        if size is not None and size > self.max_cluster:
            raise _too_large(CLUSTER, size, self.max_cluster)
        if not self._init_done:
            if not self.tracks:
                raise _malformed("thiếu phần Tracks trước Cluster đầu tiên")
            self._events.append(InitSegment(self._bytes(self._stream_start, start - self._stream_start),
                                            self._stream_start))
            self._init_done = True
            self._stream_start = None
        self._boundary()
        self._stack.append(_Open(CLUSTER, start, None if size is None else start + hlen + size))
        self._cluster = _Cluster(start)
        self._pos += hlen
        return True

    def _close(self) -> None:
        closed = self._stack.pop()
        if closed.id == BLOCK_GROUP:
            group, self._group = self._group, None
            if group.block is not None:
                track, rel, size = group.block
                self._on_block(track, rel, not group.referenced, size)
        elif closed.id == CLUSTER:
            cluster = self._cluster
            if not cluster.resolved:
                self._resolve(False if cluster.pending and self.video_track else None)
            self._cluster = None
        self._boundary()

    def _boundary(self) -> None:
        """The parser stands between two complete elements at cluster level or above."""
        if not self._init_done or self._group is not None:
            return
        self._clean = self._pos
        if self._cluster is not None and not self._cluster.resolved:
            return
        self.ready = self._pos

    def _ms(self, timecode: int) -> int:
        return timecode * self.timecode_scale // 1_000_000

    def _on_block(self, track: int, rel: int, key: bool, size: int) -> None:
        cluster = self._cluster
        frame = Frame(track, self._ms((cluster.timecode or 0) + rel), key, size)
        if cluster.resolved:
            self._events.append(frame)
            return
        video = self.video_track
        if video is None or track == video:
            self._resolve(key)
            self._events.append(frame)
            return
        cluster.pending.append(frame)
        since = self._ms(cluster.timecode) if cluster.timecode is not None else cluster.pending[0].timecode_ms
        if frame.timecode_ms - since >= self.max_unresolved_ms or len(cluster.pending) >= 512:
            self._resolve(False)  # no video for a while: forward the audio, not a join point

    def _resolve(self, keyframe: bool | None) -> None:
        cluster = self._cluster
        cluster.resolved = True
        tc = None if cluster.timecode is None else self._ms(cluster.timecode)
        self._events.append(ClusterStart(cluster.offset, tc, keyframe))
        self._events.extend(cluster.pending)
        cluster.pending = []

    def _read_info(self, data: bytes) -> None:
        for eid, s, e in _children(data, 0, len(data)):
            if eid == TIMECODE_SCALE and e > s:
                self.timecode_scale = _uint(data[s:e]) or 1_000_000

    def _read_tracks(self, data: bytes) -> None:
        for eid, s, e in _children(data, 0, len(data)):
            if eid != TRACK_ENTRY:
                continue
            number = kind = codec = None
            for cid, cs, ce in _children(data, s, e):
                if cid == TRACK_NUMBER:
                    number = _uint(data[cs:ce])
                elif cid == TRACK_TYPE:
                    kind = _uint(data[cs:ce])
                elif cid == CODEC_ID:
                    codec = data[cs:ce].rstrip(b"\0").decode("ascii", "replace")
            if not number:
                raise _malformed("TrackEntry thiếu TrackNumber")
            self.tracks[number] = Track(number, kind, codec)

    def _trim(self) -> None:
        keep = self._pos
        if self._stream_start is not None:
            if self._pos - self._stream_start > self.max_init:
                raise _too_large(SEGMENT, self._pos - self._stream_start, self.max_init)
            keep = min(keep, self._stream_start)
        drop = keep - self._base
        if drop > 0:
            del self._buf[:drop]
            self._base = keep


def _is_child(parent: int, eid: int) -> bool:
    if eid in TOP:
        return False
    if parent == CLUSTER:
        return eid not in LEVEL1
    return True


# The live stream ----------------------------------------------------------------------

@dataclass(frozen=True)
class Piece:
    """Bytes safe to forward as one unit: [offset, offset + len(data)) of the stream.

    A piece ends on an element boundary at cluster level, so a receiver cut off after any
    piece can resume at a Cluster start without its parser choking. `init` pieces carry
    an initialization segment; `cluster_start` pieces begin with a Cluster header and
    `keyframe` says whether that cluster opens with a video keyframe (a join point).
    """

    offset: int
    data: bytes
    cluster_start: bool = False
    keyframe: bool = False
    init: bool = False


@dataclass(frozen=True)
class Feed:
    events: list[Event]
    pieces: list[Piece]


def set_unknown_size(buf: bytearray, at: int) -> None:
    """Rewrite the size of the element at buf[at] as "unknown", keeping its length.

    Forwarded clusters are made unknown-size so that a receiver whose cluster was cut
    short (after a drop) ends it at the next Cluster instead of reading past it; the
    Segment likewise, since a late joiner never gets the bytes a known size counts.
    """
    n = vint_length(buf[at])
    m = vint_length(buf[at + n])
    buf[at + n] = 0xFF >> (m - 1)
    buf[at + n + 1:at + n + m] = b"\xff" * (m - 1)


def _void(buf: bytearray, at: int, total: int) -> None:
    """Turn the element at buf[at] (total bytes long) into a Void element of the same length."""
    buf[at] = VOID
    buf[at + 1:at + 9] = (0x01 << 56 | (total - 9)).to_bytes(8, "big")
    buf[at + 9:at + total] = bytes(total - 9)


def normalize_init(data: bytes) -> bytes:
    """The init segment as forwarded: unknown-size Segment; SeekHead and Cues voided,
    because their positions count bytes a late joiner never receives."""
    buf = bytearray(data)
    i = 0
    while i < len(buf):
        eid, n = read_id(buf, i)
        size, m = read_size(buf, i + n)
        if eid == SEGMENT:
            set_unknown_size(buf, i)
            j = i + n + m
            while j < len(buf):
                head = read_id(buf, j)
                sz = read_size(buf, j + head[1]) if head else None
                if head is None or sz is None or sz[0] is None:
                    break
                total = head[1] + sz[1] + sz[0]
                if head[0] in (SEEK_HEAD, CUES) and total >= 9 and j + total <= len(buf):
                    _void(buf, j, total)
                j += total
            break
        i += n + m + (size or 0)
    return bytes(buf)


class LiveStream:
    """One rapporteur's live stream as the hub keeps it.

    `feed(chunk)` parses and returns the events and the pieces to publish, in order.
    The GOP buffer holds the bytes since the latest cluster that opens with a keyframe
    (at most `max_gop` bytes; past that it is dropped until the next keyframe cluster),
    so `join_payload()` = init + that buffer is what a late joiner appends to start
    playing within one keyframe interval. Bytes not yet `ready` (a half-received block,
    a cluster whose keyframe flag is unknown) wait for the next chunk.

    Wiring (the hub)::

        feed = live.feed(chunk)          # WebMError: refuse the rapporteur's stream
        for p in feed.pieces:
            fanout.publish(Chunk(next_seq(), p.data, p.cluster_start, p.keyframe,
                                 time.monotonic(), p.init))
    """

    def __init__(self, *, max_gop: int = 8 * MB, normalize: bool = True, **parser_limits: int):
        self.parser = WebMStreamParser(**parser_limits)
        self.max_gop = max_gop
        self.normalize = normalize
        self.init_segment: bytes | None = None
        self._pending = bytearray()
        self._pending_start = 0
        self._cluster: ClusterStart | None = None  # the resolved cluster starting at _pending_start
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._gop_active = False
        self._first_ms: int | None = None
        self._last_ms: int | None = None
        self.gop_overflows = 0

    @property
    def duration_ms(self) -> int:
        """Media time seen so far (latest minus earliest block timecode)."""
        if self._first_ms is None:
            return 0
        return self._last_ms - self._first_ms

    def feed(self, chunk: bytes) -> Feed:
        events = self.parser.feed(chunk)
        self._pending += chunk
        pieces: list[Piece] = []
        for ev in events:
            if isinstance(ev, Frame):
                if self._first_ms is None:
                    self._first_ms = self._last_ms = ev.timecode_ms
                self._last_ms = max(self._last_ms, ev.timecode_ms)
            elif isinstance(ev, ClusterStart):
                self._flush(ev.offset, pieces)
                self._cluster = ev
            elif isinstance(ev, InitSegment):
                # A (re)start: whatever of the previous stream was not ready is dropped.
                end = ev.offset + len(ev.data)
                del self._pending[:end - self._pending_start]
                self._pending_start = end
                self._cluster = None
                self.init_segment = normalize_init(ev.data) if self.normalize else ev.data
                self._gop, self._gop_bytes, self._gop_active = [], 0, False
                pieces.append(Piece(ev.offset, self.init_segment, init=True))
        self._flush(self.parser.ready, pieces)
        return Feed(events, pieces)

    def end(self) -> Feed:
        """The recorder stopped: forward what is complete (see WebMStreamParser.end)."""
        events = self.parser.end()
        pieces: list[Piece] = []
        for ev in events:
            if isinstance(ev, ClusterStart):
                self._flush(ev.offset, pieces)
                self._cluster = ev
        self._flush(self.parser.ready, pieces)
        return Feed(events, pieces)

    def _flush(self, upto: int, pieces: list[Piece]) -> None:
        n = upto - self._pending_start
        if n <= 0 or self.init_segment is None:
            return
        data = self._pending[:n]
        del self._pending[:n]
        offset, self._pending_start = self._pending_start, upto
        cluster, self._cluster = self._cluster, None
        if cluster is not None and cluster.offset == offset:
            if self.normalize:
                set_unknown_size(data, 0)
            piece = Piece(offset, bytes(data), cluster_start=True, keyframe=bool(cluster.keyframe))
        else:
            piece = Piece(offset, bytes(data))
        self._remember(piece)
        pieces.append(piece)

    def _remember(self, piece: Piece) -> None:
        if piece.cluster_start and piece.keyframe:
            self._gop, self._gop_bytes, self._gop_active = [], 0, True
        if not self._gop_active:
            return
        self._gop.append(piece.data)
        self._gop_bytes += len(piece.data)
        if self._gop_bytes > self.max_gop:  # keyframes too rare or bitrate too high
            self._gop, self._gop_bytes, self._gop_active = [], 0, False
            self.gop_overflows += 1

    def join_payload(self) -> bytes | None:
        """Init segment + bytes from the latest keyframe cluster start up to now, or None."""
        if self.init_segment is None or not self._gop_active:
            return None
        if len(self._gop) > 1:
            self._gop = [b"".join(self._gop)]
        return self.init_segment + self._gop[0]
