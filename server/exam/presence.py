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
    """Refresh last_seen_at for this process's sockets.

    Rows are touched in id order, and on PostgreSQL rows another transaction holds (the
    answer writer, a close) are skipped: a presence refresh must never deadlock with, or
    wait on, the path that saves answers. A skipped row is refreshed at the next flush.
    """
    ids = sorted(local_attempts())
    postgres = db.session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        target = Attempt.id.in_(chunk)
        if postgres:
            lockable = (
                sa.select(Attempt.id).where(Attempt.id.in_(chunk)).order_by(Attempt.id)
                .with_for_update(key_share=True, skip_locked=True)
            )
            target = Attempt.id.in_(lockable.scalar_subquery())
        db.session.execute(
            sa.update(Attempt).where(target).values(last_seen_at=now).execution_options(synchronize_session=False)
        )
    return len(ids)
