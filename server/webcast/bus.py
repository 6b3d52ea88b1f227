"""How the pieces of a live stream reach every hub process, and every site from there.

The rapporteur's socket lives in one hub process; the 164 bridge points are spread over
all of them. So the publisher's process does not send to sites itself: it puts each
accepted piece on the bus, and every process (its own included) takes the pieces from
the bus, keeps what a late joiner needs (`JoinState`) and queues them for its own sites
(`relay.Fanout`). With `REDIS_URL` the bus is Redis pub/sub, one binary channel per
lecture and track; without it the bus is a function call inside the one process.

Messages are numbered per publisher session, so a process that missed some (a Redis
reconnect) sees the gap and makes its sites wait for the next keyframe cluster instead
of feeding their decoders a hole. A keyframe piece carries the init segment with it, so
a process that starts in the middle of a lecture picks the stream up at the next one.
"""
from __future__ import annotations

import logging
import struct
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional

from .relay import Chunk, Fanout

log = logging.getLogger(__name__)

TRACKS = ("av", "audio")
KINDS = ("piece", "start", "end", "finish")
_HEAD = struct.Struct("!BBBQQdBBHI")  # version, kind, flags, lecture, seq, sent_at, len(track), len(publisher), len(mime), len(init)
_INIT, _CLUSTER, _KEY = 1, 2, 4


@dataclass(frozen=True)
class Message:
    """One thing said on the bus about a lecture's track.

    kind: "piece" (bytes to forward), "start" (a new publisher took the track over),
    "end" (the publisher stopped), "finish" (the lecture ended: stop recording it).
    `seq` numbers the pieces of one publisher session; `sent_at` is the publisher
    process's wall clock; keyframe pieces carry the stream's init segment in `init_data`.
    """

    kind: str
    lecture_id: int
    track: str = "av"
    publisher: str = ""
    seq: int = 0
    sent_at: float = 0.0
    data: bytes = b""
    init: bool = False
    cluster_start: bool = False
    keyframe: bool = False
    mime: str = ""
    init_data: bytes = b""

    @property
    def key(self) -> tuple[int, str]:
        return self.lecture_id, self.track

    def encode(self) -> bytes:
        flags = (_INIT if self.init else 0) | (_CLUSTER if self.cluster_start else 0) | (_KEY if self.keyframe else 0)
        track, pub, mime = self.track.encode(), self.publisher.encode(), self.mime.encode()
        head = _HEAD.pack(1, KINDS.index(self.kind), flags, self.lecture_id, self.seq, self.sent_at,
                          len(track), len(pub), len(mime), len(self.init_data))
        return b"".join((head, track, pub, mime, self.init_data, self.data))

    @classmethod
    def decode(cls, raw: bytes) -> "Message":
        version, kind, flags, lecture, seq, sent_at, lt, lp, lm, li = _HEAD.unpack_from(raw)
        if version != 1:
            raise ValueError(f"bus message version {version}")
        i = _HEAD.size
        track, pub, mime = raw[i:i + lt], raw[i + lt:i + lt + lp], raw[i + lt + lp:i + lt + lp + lm]
        i += lt + lp + lm
        return cls(KINDS[kind], lecture, track.decode(), pub.decode(), seq, sent_at, raw[i + li:],
                   bool(flags & _INIT), bool(flags & _CLUSTER), bool(flags & _KEY), mime.decode(), raw[i:i + li])


# transports ---------------------------------------------------------------------------

class LocalBus:
    """One hub process: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Optional[Callable[[Message], None]] = None

    def start(self, deliver: Callable[[Message], None], spawn: Callable[..., Any]) -> None:
        self._deliver = deliver

    def publish(self, msg: Message) -> None:
        if self._deliver is not None:
            self._deliver(msg)


class RedisBus:
    """Several hub processes: Redis pub/sub, binary payloads, a channel per lecture and track.

    The listener runs as a background task of the hub (cooperative under gevent's
    monkey-patching) and reconnects forever with backoff; the sequence numbers turn
    whatever it missed meanwhile into a resync at the next keyframe.
    """

    def __init__(self, url: str, prefix: str = "diemcau:media") -> None:
        import redis

        self.url, self.prefix = url, prefix
        self._client = redis.Redis.from_url(url, socket_keepalive=True)

    def channel(self, msg: Message) -> str:
        return f"{self.prefix}:{msg.lecture_id}:{msg.track}"

    def start(self, deliver: Callable[[Message], None], spawn: Callable[..., Any]) -> None:
        spawn(self._listen, deliver)

    def publish(self, msg: Message) -> None:
        self._client.publish(self.channel(msg), msg.encode())

    def _listen(self, deliver: Callable[[Message], None]) -> None:
        import redis

        backoff = 0.5
        while True:
            pubsub = None
            try:
                pubsub = redis.Redis.from_url(self.url, socket_keepalive=True).pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(f"{self.prefix}:*")
                backoff = 0.5
                for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    try:
                        deliver(Message.decode(message["data"]))
                    except Exception:  # one bad message must not stop the listener
                        log.exception("media bus: message dropped")
            except Exception as err:  # Redis went away: keep trying, the relay resyncs
                log.warning("media bus: listener lost Redis (%s), retrying in %.1fs", err, backoff)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


def make_bus(redis_url: Optional[str], prefix: str) -> LocalBus | RedisBus:
    return RedisBus(redis_url, prefix) if redis_url else LocalBus()


# what one process keeps per live track --------------------------------------------

class JoinState:
    """The init segment and the bytes since the latest keyframe cluster, rebuilt from the
    pieces on the bus: what `Fanout.join` hands a late joiner (see webm.LiveStream)."""

    def __init__(self, max_gop: int) -> None:
        self.max_gop = max_gop
        self.init_segment: Optional[bytes] = None
        self.mime = ""
        self._gop: list[bytes] = []
        self._bytes = 0
        self._active = False

    def remember(self, data: bytes, *, init: bool = False, join_point: bool = False, mime: str = "") -> None:
        if init:
            self.init_segment, self.mime = data, mime or self.mime
            self.lose()
            return
        if join_point:
            self._gop, self._bytes, self._active = [], 0, True
        if not self._active:
            return
        self._gop.append(data)
        self._bytes += len(data)
        if self._bytes > self.max_gop:
            self.lose()

    def lose(self) -> None:
        """Something is missing since the latest keyframe: no join point until the next one."""
        self._gop, self._bytes, self._active = [], 0, False

    def join_payload(self) -> Optional[bytes]:
        if self.init_segment is None or not self._active:
            return None
        if len(self._gop) > 1:
            self._gop = [b"".join(self._gop)]
        return self.init_segment + self._gop[0]


class TrackRelay:
    """One lecture's track in one process: the join state, the sites' queues, the numbering.

    Chunks are numbered here (`seq`, per process): a site talks to one process only, so the
    numbers it acks and the gaps it sees (dropped chunks) are this process's.
    """

    def __init__(self, key: tuple[int, str], queue_options: dict[str, Any], max_gop: int) -> None:
        self.lecture_id, self.track = key
        self.join = JoinState(max_gop)
        self.fanout = Fanout(**queue_options)
        self.seq = 0
        self.publisher: Optional[str] = None
        self.pub_seq = 0
        self.pieces = 0
        self.gaps = 0

    def accept(self, msg: Message, now: float) -> None:
        if msg.init:
            self.publisher, self.pub_seq = msg.publisher, msg.seq
            self._publish(msg.data, now, init=True, mime=msg.mime)
            return
        if msg.publisher == self.publisher:
            if msg.seq <= self.pub_seq:
                return  # a repeat
            if msg.seq != self.pub_seq + 1:
                self._gap()  # sites drop what follows up to the next join point
        elif msg.cluster_start and msg.keyframe and msg.init_data:
            # a stream this process has not seen begin: pick it up here, init first.
            self._gap()
            self.publisher = msg.publisher
            self._publish(msg.init_data, now, init=True, mime=msg.mime)
        else:
            return  # wait for a point where this publisher's stream can be picked up
        self.pub_seq = msg.seq
        self._publish(msg.data, now, cluster_start=msg.cluster_start, keyframe=msg.keyframe)

    def _publish(self, data: bytes, now: float, *, init: bool = False, cluster_start: bool = False,
                 keyframe: bool = False, mime: str = "") -> None:
        self.seq += 1
        self.pieces += 1
        self.join.remember(data, init=init, join_point=cluster_start and keyframe, mime=mime)
        self.fanout.publish(Chunk(self.seq, data, cluster_start, keyframe, now, init))

    def _gap(self) -> None:
        self.gaps += 1
        self.join.lose()
        for site_id in self.fanout:
            self.fanout.site(site_id).synced = False


@dataclass
class Site:
    sid: str
    key: tuple[int, str]
    label: Any  # the bridge point id, or "user:<id>" for a staff viewer
    since: float


class Relay:
    """Every live track this process serves, and the pump that sends to its sites.

    Sends happen when a piece arrives (to every site of its track), when a site acks
    (to that site) and on a timer (`tick`), which also enforces the queues' limits and
    disconnects a site that has taken nothing for `dead_after` seconds. The queues are
    plain state behind one lock; emitting only queues a packet on the site's socket,
    so no site can hold the lock while its network is slow.
    """

    def __init__(self, emit: Callable[..., None], disconnect: Callable[[str], None], *,
                 queue_options: dict[str, Any], max_gop: int, tick: float = 0.05, dead_after: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.disconnect = emit, disconnect
        self.queue_options, self.max_gop = queue_options, max_gop
        self.tick, self.dead_after, self.clock = tick, dead_after, clock
        self.tracks: dict[tuple[int, str], TrackRelay] = {}
        self.sites: dict[str, Site] = {}
        self.on_control: list[Callable[[Message], None]] = []
        self.disconnected = 0
        self._lock = threading.RLock()
        self._wake: Any = None

    # the bus side -------------------------------------------------------------------
    def deliver(self, msg: Message) -> None:
        if msg.kind != "piece":
            if msg.kind == "finish":
                self.finish_lecture(msg.lecture_id)
            for hook in self.on_control:
                hook(msg)
            return
        now = self.clock()
        with self._lock:
            track = self.tracks.get(msg.key)
            if track is None:
                track = self.tracks[msg.key] = TrackRelay(msg.key, self.queue_options, self.max_gop)
            track.accept(msg, now)
            self._flush(track, now)

    def finish_lecture(self, lecture_id: int) -> None:
        """The lecture ended: tell its sites, forget its tracks."""
        with self._lock:
            keys = [k for k in self.tracks if k[0] == lecture_id]
            sids = [s.sid for s in self.sites.values() if s.key[0] == lecture_id]
            for sid in sids:
                self.emit("media.ended", {"lecture_id": lecture_id}, sid, None)
                self._leave(sid)
            for key in keys:
                del self.tracks[key]

    # the site side ------------------------------------------------------------------
    def subscribe(self, sid: str, lecture_id: int, track: str, label: Any) -> dict[str, Any]:
        """Register the site and send it the join payload, with no piece in between."""
        now = self.clock()
        key = (lecture_id, track)
        with self._lock:
            self._leave(sid)
            relay = self.tracks.get(key)
            if relay is None:
                relay = self.tracks[key] = TrackRelay(key, self.queue_options, self.max_gop)
            payload = relay.fanout.join(sid, relay.join)
            self.sites[sid] = Site(sid, key, label, now)
            if payload:
                self._send_bytes(sid, relay, relay.seq, payload, init=True, key=True)
            return {"live": relay.fanout.site(sid).synced, "mime": relay.join.mime or None, "seq": relay.seq}

    def unsubscribe(self, sid: str) -> None:
        with self._lock:
            self._leave(sid)

    def _leave(self, sid: str) -> None:
        site = self.sites.pop(sid, None)
        if site is not None and site.key in self.tracks:
            self.tracks[site.key].fanout.remove(sid)

    def _acked(self, sid: str, key: tuple[int, str], seq: int, *_: Any) -> None:
        with self._lock:
            site = self.sites.get(sid)
            relay = self.tracks.get(key)
            if site is None or site.key != key or relay is None or sid not in relay.fanout:
                return
            queue = relay.fanout.site(sid)
            queue.ack(seq)
            for chunk in queue.pop_ready(self.clock()):
                self._send(sid, relay, chunk)

    # sending ------------------------------------------------------------------------
    def _flush(self, relay: TrackRelay, now: float) -> None:
        for sid, chunks in relay.fanout.pop_ready(now).items():
            for chunk in chunks:
                self._send(sid, relay, chunk)

    def _send(self, sid: str, relay: TrackRelay, chunk: Chunk) -> None:
        self._send_bytes(sid, relay, chunk.seq, chunk.data, init=chunk.init, key=chunk.join_point)

    def _send_bytes(self, sid: str, relay: TrackRelay, seq: int, data: bytes, *, init: bool, key: bool) -> None:
        msg: dict[str, Any] = {"track": relay.track, "seq": seq, "data": data}
        if init:
            msg["init"] = True
            msg["mime"] = relay.join.mime
        if key:
            msg["key"] = True
        self.emit("media.data", msg, sid, partial(self._acked, sid, (relay.lecture_id, relay.track), seq))

    # the pump -----------------------------------------------------------------------
    def start(self, spawn: Callable[..., Any], make_event: Callable[[], Any]) -> None:
        self._wake = make_event()
        spawn(self.run)

    def run(self) -> None:
        while True:
            self._wake.wait(self.tick)
            try:
                self.pump()
            except Exception:  # the pump must outlive any bug
                log.exception("media relay pump failed")

    def pump(self) -> None:
        now = self.clock()
        dead: list[str] = []
        with self._lock:
            for relay in list(self.tracks.values()):
                self._flush(relay, now)
                for sid in relay.fanout:
                    queue = relay.fanout.site(sid)
                    if queue.stalled and queue.lag(now) > self.dead_after:
                        dead.append(sid)
            for sid in dead:
                self._leave(sid)
        for sid in dead:
            self.disconnected += 1
            log.info("media: site %s took nothing for %.0fs, disconnected", sid, self.dead_after)
            self.disconnect(sid)

    # what the hub reports ----------------------------------------------------------
    def watchers(self, lecture_id: int) -> list[dict[str, Any]]:
        """This process's sites of a lecture, with their queue state (for the control room)."""
        now = self.clock()
        with self._lock:
            out = []
            for site in self.sites.values():
                relay = self.tracks.get(site.key)
                if site.key[0] != lecture_id or relay is None or site.sid not in relay.fanout:
                    continue
                out.append({"site": site.label, "track": site.key[1], "since_s": round(now - site.since, 1),
                            **relay.fanout.site(site.sid).snapshot(now)})
            return out

    def track_stats(self, key: tuple[int, str]) -> Optional[dict[str, Any]]:
        with self._lock:
            relay = self.tracks.get(key)
            if relay is None:
                return None
            return {"pieces": relay.pieces, "gaps": relay.gaps, "sites": len(relay.fanout),
                    "joinable": relay.join.join_payload() is not None}
