"""Who is connected, written to the database as changes, in batches.

Each hub process knows only its own sockets. Every few seconds it writes what changed
since its last flush (learners who joined, learners who left) to `attempt_presence`
under its own random id, and beats its `hub_process` row. The board counts an attempt
as connected if some live process (a beat within the TTL) reports it, which is the
same answer whichever process asks; a process that dies stops counting one TTL later.

Nothing here touches the `attempt` rows the answer writer locks.
"""
from __future__ import annotations

import secrets
import threading
from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..extensions import db
from .models import AttemptPresence, HubProcess

#: this process, for as long as it lives.
HUB_ID = secrets.token_hex(8)

_local: Counter = Counter()  # attempt id → sockets this process holds for it
_written: set[int] = set()  # what the database says this process holds
_lock = threading.Lock()


def connected(attempt_id: int) -> None:
    with _lock:
        _local[attempt_id] += 1


def disconnected(attempt_id: int) -> None:
    with _lock:
        _local[attempt_id] -= 1
        if _local[attempt_id] <= 0:
            del _local[attempt_id]


def local_attempts() -> set[int]:
    with _lock:
        return set(_local)


def flush(now: datetime, forget_after: timedelta) -> set[int]:
    """Beat, and write the changes since the last flush; returns the set now written.

    The caller commits, then calls `written(...)` with the returned set.
    """
    current = local_attempts()
    beat = sa.update(HubProcess).where(HubProcess.id == HUB_ID).values(beat_at=now)
    if db.session.execute(beat).rowcount == 0:
        db.session.add(HubProcess(id=HUB_ID, beat_at=now))
        db.session.flush()
    new = sorted(current - _written)
    gone = sorted(_written - current)
    for start in range(0, len(new), 1000):
        db.session.execute(sa.insert(AttemptPresence),
                           [{"attempt_id": a, "hub_id": HUB_ID, "since": now} for a in new[start:start + 1000]])
    for start in range(0, len(gone), 1000):
        db.session.execute(sa.delete(AttemptPresence).where(
            AttemptPresence.hub_id == HUB_ID, AttemptPresence.attempt_id.in_(gone[start:start + 1000])))
    # processes that died long ago: their rows only cost space.
    dead = sa.select(HubProcess.id).where(HubProcess.beat_at < now - forget_after).scalar_subquery()
    db.session.execute(sa.delete(AttemptPresence).where(AttemptPresence.hub_id.in_(dead)))
    db.session.execute(sa.delete(HubProcess).where(HubProcess.beat_at < now - forget_after))
    return current


def written(ids: set[int]) -> None:
    """The flush that returned `ids` is committed."""
    global _written
    _written = ids


def connected_clause(attempt_id_col, seen_since: datetime):
    """SQL: this attempt is held by a process that beat since `seen_since`."""
    return sa.exists().where(
        AttemptPresence.attempt_id == attempt_id_col,
        AttemptPresence.hub_id == HubProcess.id,
        HubProcess.beat_at >= seen_since,
    )
