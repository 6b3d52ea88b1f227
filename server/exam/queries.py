"""Read helpers for exams: the live board."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ..core.permissions import scope_clause
from ..core.timeutil import now_utc, to_ms
from ..extensions import db
from ..places.models import District
from . import presence
from .models import Attempt, AttemptStatus, Exam


def live_board(exam: Exam, viewer, presence_ttl: float) -> dict:
    """Registered, connected, started and submitted per district, in the viewer's scope."""
    now = now_utc()
    seen_since = now - timedelta(seconds=presence_ttl)
    finished = Attempt.status.in_((AttemptStatus.submitted, AttemptStatus.closed))
    rows = db.session.execute(
        sa.select(
            Attempt.district_id,
            sa.func.count(),
            sa.func.count().filter(presence.connected_clause(Attempt.id, seen_since), ~finished),
            sa.func.count().filter(Attempt.started_at.is_not(None)),
            sa.func.count().filter(Attempt.status == AttemptStatus.submitted),
            sa.func.count().filter(finished, Attempt.started_at.is_not(None)),
            sa.func.count().filter(Attempt.paused_at.is_not(None)),
        )
        .where(Attempt.exam_id == exam.id, scope_clause(viewer, Attempt.district_id, Attempt.bridge_point_id))
        .group_by(Attempt.district_id)
    ).all()
    names = dict(db.session.execute(sa.select(District.id, District.name)).all())
    districts = []
    total = {"registered": 0, "connected": 0, "started": 0, "submitted_early": 0, "finished": 0, "paused": 0}
    for did, reg, conn, started, early, fin, paused in sorted(rows, key=lambda r: names.get(r[0], "")):
        item = {"registered": reg, "connected": conn, "started": started, "submitted_early": early, "finished": fin, "paused": paused}
        for k, v in item.items():
            total[k] += v
        districts.append({"district_id": did, "district": names.get(did, "—"), **item})
    return {
        "exam_id": exam.id,
        "status": exam.status.value,
        "server_ms": to_ms(now),
        "deadline_ms": to_ms(exam.ends_at),
        "districts": districts,
        "total": total,
    }
