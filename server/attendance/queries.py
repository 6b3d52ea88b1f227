"""Attendance reads: registered, checked in, camera headcount and flags per bridge point.

A check-in that a proctor has confirmed invalid (a `checkin_invalid` flag whose latest
decision is "confirmed") does not count as attended; it is still listed, marked.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import sqlalchemy as sa

from ..accounts.models import Role, User
from ..extensions import db
from ..review.models import Flag
from .models import CheckIn, Snapshot

#: the kind of flag that takes a check-in out of the attended count.
CHECKIN_INVALID = "checkin_invalid"
#: confirmed anomalies of a room that the attendance report shows per site.
ROOM_ANOMALIES = ("headcount_low", "empty_room")
#: snapshots of the room camera (not a learner's webcam).
ROOM_KINDS = ("room", "requested")


@dataclass
class SiteAttendance:
    """One bridge point in one lecture."""

    bridge_point_id: int
    registered: int = 0
    checked_in: int = 0
    #: check-ins confirmed invalid by a proctor (not in `attended`).
    invalid: int = 0
    headcount_median: Optional[float] = None
    n_snapshots: int = 0
    #: kind → count, per status.
    open_flags: dict[str, int] = field(default_factory=dict)
    confirmed_flags: dict[str, int] = field(default_factory=dict)

    @property
    def attended(self) -> int:
        return self.checked_in - self.invalid

    @property
    def rate(self) -> Optional[float]:
        return round(100.0 * self.attended / self.registered, 2) if self.registered else None

    @property
    def confirmed_anomalies(self) -> dict[str, int]:
        return {k: n for k, n in self.confirmed_flags.items() if k in ROOM_ANOMALIES}


def registered_counts(bp_ids: Iterable[int]) -> dict[int, int]:
    ids = list(bp_ids)
    rows = db.session.execute(
        sa.select(User.bridge_point_id, sa.func.count())
        .where(User.role == Role.learner, User.active, User.bridge_point_id.in_(ids))
        .group_by(User.bridge_point_id)
    ).all()
    return {bp: n for bp, n in rows}


def invalid_user_ids(lecture_id: int) -> set[int]:
    """Learners whose check-in at this lecture a proctor confirmed invalid."""
    rows = db.session.scalars(
        sa.select(Flag.detail["user_id"].as_integer())
        .where(Flag.lecture_id == lecture_id, Flag.kind == CHECKIN_INVALID, Flag.status == "confirmed")
    ).all()
    return {r for r in rows if r is not None}


def checkin_counts(lecture_id: int, bp_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """bridge point → (checked in, of which confirmed invalid)."""
    invalid = invalid_user_ids(lecture_id)
    out: dict[int, list[int]] = {}
    rows = db.session.execute(
        sa.select(CheckIn.bridge_point_id, CheckIn.user_id)
        .where(CheckIn.lecture_id == lecture_id, CheckIn.bridge_point_id.in_(list(bp_ids)))
    ).all()
    for bp_id, user_id in rows:
        counts = out.setdefault(bp_id, [0, 0])
        counts[0] += 1
        counts[1] += user_id in invalid
    return {bp: (n, bad) for bp, (n, bad) in out.items()}


def median_headcounts(lecture_id: int, bp_ids: Iterable[int]) -> dict[int, tuple[float, int]]:
    """bridge point → (median headcount, number of analysed room snapshots) for the lecture.

    The median, not the mean: a frame with people walking past the camera, or one where
    the detector missed half the room, moves it little.
    """
    per_bp: dict[int, list[int]] = {}
    rows = db.session.execute(
        sa.select(Snapshot.bridge_point_id, Snapshot.headcount).where(
            Snapshot.lecture_id == lecture_id, Snapshot.bridge_point_id.in_(list(bp_ids)),
            Snapshot.kind.in_(ROOM_KINDS), Snapshot.status == "analysed", Snapshot.headcount.is_not(None),
        )
    ).all()
    for bp_id, headcount in rows:
        per_bp.setdefault(bp_id, []).append(headcount)
    return {bp: (float(statistics.median(values)), len(values)) for bp, values in per_bp.items()}


def flag_counts(lecture_id: int, bp_ids: Iterable[int]) -> dict[tuple[int, str], dict[str, int]]:
    """(bridge point, status) → kind → count, for the lecture's open and confirmed flags."""
    rows = db.session.execute(
        sa.select(Flag.bridge_point_id, Flag.status, Flag.kind, sa.func.count())
        .where(Flag.lecture_id == lecture_id, Flag.bridge_point_id.in_(list(bp_ids)),
               Flag.status.in_(("open", "confirmed")))
        .group_by(Flag.bridge_point_id, Flag.status, Flag.kind)
    ).all()
    out: dict[tuple[int, str], dict[str, int]] = {}
    for bp_id, status, kind, n in rows:
        out.setdefault((bp_id, status), {})[kind] = n
    return out


def site_attendance(lecture_id: int, bp_ids: Iterable[int]) -> dict[int, SiteAttendance]:
    """The attendance figures of each given bridge point for one lecture (four queries)."""
    ids = list(bp_ids)
    registered = registered_counts(ids)
    checked = checkin_counts(lecture_id, ids)
    medians = median_headcounts(lecture_id, ids)
    flags = flag_counts(lecture_id, ids)
    out = {}
    for bp_id in ids:
        n, bad = checked.get(bp_id, (0, 0))
        median, n_snap = medians.get(bp_id, (None, 0))
        out[bp_id] = SiteAttendance(
            bp_id, registered=registered.get(bp_id, 0), checked_in=n, invalid=bad,
            headcount_median=median, n_snapshots=n_snap,
            open_flags=flags.get((bp_id, "open"), {}), confirmed_flags=flags.get((bp_id, "confirmed"), {}),
        )
    return out


def roster(lecture_id: int, bridge_point_id: int) -> list[dict[str, Any]]:
    """The learners of a bridge point in seat order, each with their check-in for the lecture."""
    invalid = invalid_user_ids(lecture_id)
    rows = db.session.execute(
        sa.select(User, CheckIn)
        .outerjoin(CheckIn, (CheckIn.user_id == User.id) & (CheckIn.lecture_id == lecture_id))
        .where(User.role == Role.learner, User.active, User.bridge_point_id == bridge_point_id)
        .order_by(User.seat, User.full_name)
    ).all()
    return [{"learner": u, "check_in": c, "invalid": u.id in invalid} for u, c in rows]
