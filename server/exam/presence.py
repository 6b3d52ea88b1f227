"""Who is connected, written to the database in batches.

Each hub process knows only its own sockets; it refreshes `attempt.last_seen_at` for
them every few seconds in one UPDATE. The board counts an attempt as connected if it
was seen within the TTL, which is the same answer whichever process asks.
"""
from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import sqlalchemy as sa

from ..extensions import db
from .models import Attempt

_local = Counter()  # attempt id → sockets this process holds for it
_lock = threading.Lock()


def connected(attempt_id: int) -> None:
    with _lock:
        _local[attempt_id] += 1


def disconnected(attempt_id: int) -> None:
    with _lock:
        _local[attempt_id] -= 1
        if _local[attempt_id] <= 0:
            del _local[attempt_id]


def local_attempts() -> list[int]:
    with _lock:
        return list(_local)


def flush(now: datetime) -> int:
    ids = local_attempts()
    for start in range(0, len(ids), 2000):
        db.session.execute(
            sa.update(Attempt)
            .where(Attempt.id.in_(ids[start : start + 2000]))
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(ids)
