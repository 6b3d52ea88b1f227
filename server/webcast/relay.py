"""Per-bridge-point send queues for the live lecture: a slow site never slows the others.

The hub publishes each piece of the rapporteur's stream to all 164 bridge points. Their
links differ: one room on a good fibre line, another on a mountain 3G link that stalls
for ten seconds. A shared queue would make everyone as late as the worst room, and an
unbounded per-site queue would make the worst room ever later and eat the hub's memory.

So each site gets a `SiteQueue` with a byte budget, an age limit and an in-flight limit.
When a site falls too far behind live it skips ahead ("jumps to the live edge"): it drops
what is queued and resumes at the next join point - a Cluster that opens with a video
keyframe, or a new init segment - because a decoder given the middle of a cluster after a
gap shows garbage or stops. Chunks come from `webm.LiveStream` pieces, which end on
element boundaries, so cutting between any two chunks leaves the receiver's parser whole.

Everything here is plain state with no clock, thread or socket of its own: the hub calls
`publish` when a piece arrives, `pop_ready(now)` when a site can take more, and `ack` when
the client's socket has taken what was sent. Not thread-safe: call from one greenlet or
under one lock.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Hashable, Iterator, Protocol


@dataclass(frozen=True)
class Chunk:
    """One forwardable piece of the stream (see webm.Piece), numbered by the hub."""

    seq: int
    data: bytes
    cluster_start: bool = False
    keyframe: bool = False
    created_at: float = 0.0
    init: bool = False

    @property
    def join_point(self) -> bool:
        """A receiver with nothing usable buffered can start here."""
        return self.init or (self.cluster_start and self.keyframe)


@dataclass
class SiteStats:
    delivered_chunks: int = 0
    delivered_bytes: int = 0  # handed to the sender by pop_ready
    acked_bytes: int = 0
    dropped_chunks: int = 0
    dropped_bytes: int = 0
    jumps: int = 0  # times the site was cut and sent ahead to the live edge

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class SiteQueue:
    """The send queue of one receiving site.

    State: the queued chunks, the sent-but-unacknowledged ones, and `synced` - whether the
    next chunk continues what the site has already appended (False after a drop, or for a
    site that joined without a join payload: then everything up to the next join point is
    dropped on arrival).
    """

    def __init__(self, site_id: Hashable = None, *, budget_bytes: int = 2 << 20,
                 max_latency: float = 3.0, max_in_flight: int = 8, synced: bool = False):
        self.site_id = site_id
        self.budget_bytes = budget_bytes
        self.max_latency = max_latency
        self.max_in_flight = max_in_flight
        self.synced = synced
        self.stats = SiteStats()
        self._queue: deque[Chunk] = deque()
        self._queued_bytes = 0
        self._in_flight: deque[Chunk] = deque()

    # -- what the hub calls -------------------------------------------------------------

    def push(self, chunk: Chunk) -> None:
        """Queue a published chunk (O(1) amortised; never blocks)."""
        if not self.synced:
            if not chunk.join_point:
                self._count_drop(chunk)
                return
            self.synced = True
        self._queue.append(chunk)
        self._queued_bytes += len(chunk.data)
        self._enforce(chunk.created_at)  # a stalled site is trimmed even if nobody pops it

    def pop_ready(self, now: float) -> list[Chunk]:
        """The chunks to send now, oldest first; they count as in flight until acked."""
        self._enforce(now)
        out: list[Chunk] = []
        while self._queue and len(self._in_flight) < self.max_in_flight:
            chunk = self._queue.popleft()
            self._queued_bytes -= len(chunk.data)
            self._in_flight.append(chunk)
            self.stats.delivered_chunks += 1
            self.stats.delivered_bytes += len(chunk.data)
            out.append(chunk)
        return out

    def ack(self, seq: int) -> None:
        """The client's socket has taken every sent chunk up to `seq` (cumulative)."""
        while self._in_flight and self._in_flight[0].seq <= seq:
            self.stats.acked_bytes += len(self._in_flight.popleft().data)

    # -- what the hub reads -------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def queued_chunks(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def stalled(self) -> bool:
        """Too many sends not yet taken by the client: nothing more goes out until acks."""
        return len(self._in_flight) >= self.max_in_flight

    def lag(self, now: float) -> float:
        """Seconds between now and the oldest chunk the site has not yet taken."""
        oldest = self._in_flight[0] if self._in_flight else (self._queue[0] if self._queue else None)
        return max(0.0, now - oldest.created_at) if oldest else 0.0

    def snapshot(self, now: float) -> dict[str, Any]:
        return {**self.stats.as_dict(), "queued_bytes": self._queued_bytes,
                "in_flight": len(self._in_flight), "synced": self.synced,
                "stalled": self.stalled, "lag": round(self.lag(now), 3)}

    # -- the drop policy ----------------------------------------------------------------

    def _enforce(self, now: float) -> None:
        if self._queue and (self._queued_bytes > self.budget_bytes
                            or now - self._queue[0].created_at > self.max_latency):
            self._jump(now)

    def _jump(self, now: float) -> None:
        """Drop stale chunks and resume at the latest join point still within limits;
        if there is none, drop everything and wait for the next one."""
        keep_from = None
        tail_bytes = 0
        for i in range(len(self._queue) - 1, 0, -1):  # index 0 would drop nothing
            chunk = self._queue[i]
            tail_bytes += len(chunk.data)
            if chunk.join_point:
                if tail_bytes <= self.budget_bytes and now - chunk.created_at <= self.max_latency:
                    keep_from = i
                break
        drop = len(self._queue) if keep_from is None else keep_from
        for _ in range(drop):
            chunk = self._queue.popleft()
            self._queued_bytes -= len(chunk.data)
            self._count_drop(chunk)
        if keep_from is None:
            self.synced = False
        self.stats.jumps += 1

    def _count_drop(self, chunk: Chunk) -> None:
        self.stats.dropped_chunks += 1
        self.stats.dropped_bytes += len(chunk.data)


class _Live(Protocol):
    init_segment: bytes | None

    def join_payload(self) -> bytes | None: ...


class Fanout:
    """The SiteQueues of one live lecture, keyed by site (bridge point) id."""

    def __init__(self, **queue_options: Any):
        self.queue_options = queue_options
        self._sites: dict[Hashable, SiteQueue] = {}

    def add(self, site_id: Hashable, *, synced: bool = False, **options: Any) -> SiteQueue:
        """Register a site. synced=True only if it was just sent a join payload."""
        queue = SiteQueue(site_id, **{**self.queue_options, **options, "synced": synced})
        self._sites[site_id] = queue
        return queue

    def join(self, site_id: Hashable, live: _Live) -> bytes | None:
        """Register a (late) joiner and return the bytes to send it first.

        With a join payload (init + the current keyframe cluster up to now) the site is
        synced and continues with the next published chunk. Without one it gets only the
        init segment (if any) and waits for the next join point. Call it with no publish
        in between the call and sending the bytes, or the site misses a chunk.
        """
        payload = live.join_payload()
        self.add(site_id, synced=payload is not None)
        return payload if payload is not None else live.init_segment

    def remove(self, site_id: Hashable) -> SiteQueue | None:
        return self._sites.pop(site_id, None)

    def site(self, site_id: Hashable) -> SiteQueue:
        return self._sites[site_id]

    def publish(self, chunk: Chunk) -> None:
        """Queue a chunk for every site; O(sites), never waits on any of them."""
        for queue in self._sites.values():
            queue.push(chunk)

    def pop_ready(self, now: float) -> dict[Hashable, list[Chunk]]:
        """What to send to each site now (sites with nothing to send are left out)."""
        out = {}
        for site_id, queue in self._sites.items():
            ready = queue.pop_ready(now)
            if ready:
                out[site_id] = ready
        return out

    def __contains__(self, site_id: object) -> bool:
        return site_id in self._sites

    def __len__(self) -> int:
        return len(self._sites)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._sites))

    def stats(self, now: float) -> dict[Hashable, dict[str, Any]]:
        return {site_id: q.snapshot(now) for site_id, q in self._sites.items()}
