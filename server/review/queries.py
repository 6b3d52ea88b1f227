"""Reads for the proctors' pages: the flag queue, the mosaic, a site's timeline, a learner's log.

A flag's place is its bridge point (room flags) or its attempt's (a learner's webcam);
a flag with neither belongs to the province, seen only by province-wide reviewers.
"""
from __future__ import annotations

from typing import Any, Optional

import sqlalchemy as sa
from flask import request
from flask_babel import lazy_gettext as _l

from ..accounts.models import User
from ..attendance.models import CheckIn, Snapshot
from ..attendance.queries import CHECKIN_INVALID, ROOM_KINDS, site_attendance
from ..core.i18n import fmt_datetime
from ..core.permissions import scope_clause
from ..exam.models import Attempt, Exam
from ..extensions import db
from ..places.models import BridgePoint, District
from ..webcast.models import Lecture, LectureStatus
from .models import Flag, FlagDecision

KIND_LABELS = {
    "replayed": _l("Ảnh phát lại (ảnh chụp sẵn hoặc video lặp)"),
    "multiple_faces": _l("Nhiều khuôn mặt"),
    "headcount_low": _l("Số người ít hơn số điểm danh"),
    "empty_room": _l("Phòng trống"),
    "camera_refused": _l("Không cho phép dùng camera"),
    "camera_lost": _l("Mất camera"),
    "camera_offline": _l("Camera mất kết nối"),
    "no_face": _l("Không thấy khuôn mặt"),
    "selfie_failed": _l("Ảnh chân dung không đạt"),
    "covered": _l("Camera bị che"),
    "frozen": _l("Hình đứng yên"),
    "moved": _l("Camera bị xê dịch"),
    "page_hidden": _l("Rời khỏi trang làm bài"),
    "dark": _l("Ảnh quá tối"),
    "blurred": _l("Ảnh bị nhòe"),
    CHECKIN_INVALID: _l("Điểm danh không hợp lệ"),
}
STATUS_LABELS = {"open": _l("Chờ xem xét"), "confirmed": _l("Đã xác nhận"), "dismissed": _l("Đã bỏ qua")}
SNAPSHOT_KINDS = {"room": _l("Camera phòng"), "requested": _l("Chụp theo yêu cầu"),
                  "selfie": _l("Ảnh chân dung"), "random": _l("Ảnh ngẫu nhiên")}
METHOD_LABELS = {"qr": _l("Quét mã QR"), "code": _l("Nhập mã điểm danh"), "operator": _l("Cán bộ kỹ thuật đánh dấu")}
#: the image-health verdicts the analysis writes into Snapshot.health as booleans.
HEALTH_LABELS = {"dark": _l("tối"), "blurred": _l("nhòe"), "covered": _l("bị che"), "frozen": _l("đứng yên"),
                 "moved": _l("xê dịch"), "replayed": _l("phát lại")}
QUEUE_PAGE = 100


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def snapshot_url(token: str) -> str:
    """The image's address; the route that serves it checks the viewer's scope."""
    return f"{request.script_root}/snapshots/{token}.jpg"


def health_issues(health: Any) -> list[str]:
    if not isinstance(health, dict):
        return []
    return [str(label) for key, label in HEALTH_LABELS.items() if health.get(key) is True]


# places -----------------------------------------------------------------------------

def flag_place(flag: Flag) -> tuple[Optional[int], Optional[int]]:
    """(district id, bridge point id) the flag belongs to; (None, None) for the province."""
    if flag.bridge_point_id is not None:
        bp = db.session.get(BridgePoint, flag.bridge_point_id)
        return (bp.district_id if bp else None), flag.bridge_point_id
    if flag.attempt_id is not None:
        attempt = db.session.get(Attempt, flag.attempt_id)
        if attempt is not None:
            return attempt.district_id, attempt.bridge_point_id
    return None, None


def sites_in_scope(viewer: User) -> list[tuple[BridgePoint, str]]:
    return db.session.execute(
        sa.select(BridgePoint, District.name).join(District, District.id == BridgePoint.district_id)
        .where(scope_clause(viewer, BridgePoint.district_id, BridgePoint.id))
        .order_by(District.name, BridgePoint.code)
    ).all()


def districts_in_scope(viewer: User) -> list[District]:
    q = sa.select(District).order_by(District.name)
    if viewer.district_id is not None:
        q = q.where(District.id == viewer.district_id)
    return db.session.scalars(q).all()


def lectures_for_review() -> list[Lecture]:
    """Live first, then the most recent: what a reviewer picks from."""
    return db.session.scalars(
        sa.select(Lecture).where(Lecture.status != LectureStatus.planned)
        .order_by(sa.case((Lecture.status == LectureStatus.live, 0), else_=1), Lecture.started_at.desc())
        .limit(50)
    ).all()


def default_lecture() -> Optional[Lecture]:
    lectures = lectures_for_review()
    return lectures[0] if lectures else None


# the flag queue ---------------------------------------------------------------------

def _flag_select(viewer: User, *columns: Any):
    place_bp = sa.func.coalesce(Flag.bridge_point_id, Attempt.bridge_point_id)
    place_district = sa.func.coalesce(BridgePoint.district_id, Attempt.district_id)
    q = (
        sa.select(*columns)
        .select_from(Flag)
        .outerjoin(Attempt, Attempt.id == Flag.attempt_id)
        .outerjoin(BridgePoint, BridgePoint.id == place_bp)
        .outerjoin(District, District.id == place_district)
        .where(scope_clause(viewer, place_district, place_bp))
    )
    return q, place_district


def flag_queue(viewer: User, status: str = "open", kind: str = "", district_id: Optional[int] = None,
               page: int = 1) -> dict[str, Any]:
    """Flags in the viewer's scope, most severe first, oldest first within a severity."""
    learner_id = sa.func.coalesce(Attempt.user_id, Flag.detail["user_id"].as_integer())
    q, place_district = _flag_select(viewer, Flag, BridgePoint, District.name, learner_id)
    counts_q, _d = _flag_select(viewer, Flag.status, sa.func.count())
    if kind:
        q, counts_q = q.where(Flag.kind == kind), counts_q.where(Flag.kind == kind)
    if district_id:
        q, counts_q = q.where(place_district == district_id), counts_q.where(place_district == district_id)
    counts = dict(db.session.execute(counts_q.group_by(Flag.status)).all())
    if status in STATUS_LABELS:
        q = q.where(Flag.status == status)
    q = q.order_by(Flag.severity.desc(), Flag.created_at, Flag.id)
    rows = db.session.execute(q.limit(QUEUE_PAGE + 1).offset((page - 1) * QUEUE_PAGE)).all()
    more = len(rows) > QUEUE_PAGE
    rows = rows[:QUEUE_PAGE]
    learners = _users({r[3] for r in rows if r[3]})
    titles = contexts([r[0] for r in rows])
    latest = latest_decisions([r[0].id for r in rows])
    items = [
        {"flag": f, "bp": b, "district": d, "learner": learners.get(uid), "context": titles.get(f.id, ""),
         "latest": latest.get(f.id)}
        for f, b, d, uid in rows
    ]
    return {"items": items, "counts": counts, "more": more, "page": page}


def _users(ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}


def contexts(flags: list[Flag]) -> dict[int, str]:
    """The lecture or exam each flag was raised in, by title."""
    lecture_ids = {f.lecture_id for f in flags if f.lecture_id}
    exam_ids = {f.exam_id for f in flags if f.exam_id}
    lectures = dict(db.session.execute(sa.select(Lecture.id, Lecture.title).where(Lecture.id.in_(lecture_ids))).all()) if lecture_ids else {}
    exams = dict(db.session.execute(sa.select(Exam.id, Exam.title).where(Exam.id.in_(exam_ids))).all()) if exam_ids else {}
    return {f.id: lectures.get(f.lecture_id) or exams.get(f.exam_id) or "" for f in flags}


def latest_decisions(flag_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not flag_ids:
        return {}
    rows = db.session.execute(
        sa.select(FlagDecision, User.full_name).join(User, User.id == FlagDecision.by_user_id)
        .where(FlagDecision.flag_id.in_(flag_ids)).order_by(FlagDecision.at, FlagDecision.id)
    ).all()
    return {d.flag_id: {"decision": d, "by": name} for d, name in rows}  # later rows overwrite


def decisions_of(flag_id: int) -> list[tuple[FlagDecision, str]]:
    return db.session.execute(
        sa.select(FlagDecision, User.full_name).join(User, User.id == FlagDecision.by_user_id)
        .where(FlagDecision.flag_id == flag_id).order_by(FlagDecision.at.desc(), FlagDecision.id.desc())
    ).all()


def flag_learner(flag: Flag) -> Optional[User]:
    if flag.attempt_id is not None:
        attempt = db.session.get(Attempt, flag.attempt_id)
        return db.session.get(User, attempt.user_id) if attempt else None
    user_id = (flag.detail or {}).get("user_id") if isinstance(flag.detail, dict) else None
    return db.session.get(User, user_id) if isinstance(user_id, int) else None


# the mosaic and a site's timeline ------------------------------------------------------

def snapshot_payload(s: Snapshot) -> dict[str, Any]:
    return {
        "id": s.id, "url": snapshot_url(s.token), "kind": str(SNAPSHOT_KINDS.get(s.kind, s.kind)),
        "taken": fmt_datetime(s.taken_at, with_seconds=True), "status": s.status,
        "headcount": s.headcount, "issues": health_issues(s.health),
        "approximate": bool(isinstance(s.health, dict) and s.health.get("approximate")),
    }


def mosaic(viewer: User, lecture_id: Optional[int]) -> list[dict[str, Any]]:
    """Every bridge point in scope with its latest room snapshot and its attendance figures."""
    sites = sites_in_scope(viewer)
    ids = [bp.id for bp, _name in sites]
    latest_q = (sa.select(sa.func.max(Snapshot.id))
                .where(Snapshot.bridge_point_id.in_(ids), Snapshot.kind.in_(ROOM_KINDS))
                .group_by(Snapshot.bridge_point_id))
    if lecture_id is not None:
        latest_q = latest_q.where(Snapshot.lecture_id == lecture_id)
    latest = {s.bridge_point_id: s for s in db.session.scalars(sa.select(Snapshot).where(Snapshot.id.in_(latest_q)))}
    figures = site_attendance(lecture_id, ids) if lecture_id is not None else {}
    tiles = []
    for bp, district in sites:
        snap, fig = latest.get(bp.id), figures.get(bp.id)
        tiles.append({
            "bridge_point_id": bp.id, "code": bp.code, "name": bp.name, "district": district,
            "snapshot": snapshot_payload(snap) if snap else None,
            "registered": fig.registered if fig else None, "attended": fig.attended if fig else None,
            "median": fig.headcount_median if fig else None,
            "open_flags": sum(fig.open_flags.values()) if fig else 0,
        })
    return tiles


def timeline(bridge_point_id: int, lecture_id: Optional[int]) -> list[dict[str, Any]]:
    """The site's room snapshots in time order, each with the flags raised on it."""
    q = sa.select(Snapshot).where(Snapshot.bridge_point_id == bridge_point_id, Snapshot.kind.in_(ROOM_KINDS))
    if lecture_id is not None:
        q = q.where(Snapshot.lecture_id == lecture_id)
    snaps = db.session.scalars(q.order_by(Snapshot.taken_at, Snapshot.id).limit(2000)).all()
    by_snapshot: dict[int, list[Flag]] = {}
    if snaps:
        flags = db.session.scalars(sa.select(Flag).where(Flag.snapshot_id.in_([s.id for s in snaps]))).all()
        for f in flags:
            by_snapshot.setdefault(f.snapshot_id, []).append(f)
    return [{"snapshot": s, **snapshot_payload(s), "flags": by_snapshot.get(s.id, [])} for s in snaps]


def site_flags(bridge_point_id: int, lecture_id: Optional[int]) -> list[Flag]:
    q = sa.select(Flag).where(Flag.bridge_point_id == bridge_point_id)
    if lecture_id is not None:
        q = q.where(Flag.lecture_id == lecture_id)
    return db.session.scalars(q.order_by(Flag.created_at, Flag.id)).all()


# a learner's camera log ----------------------------------------------------------------

def learner_log(user: User) -> dict[str, Any]:
    """A learner's webcam snapshots per attempt, their check-ins, and every flag about them."""
    attempts = db.session.execute(
        sa.select(Attempt, Exam.title).join(Exam, Exam.id == Attempt.exam_id)
        .where(Attempt.user_id == user.id).order_by(Attempt.id)
    ).all()
    attempt_ids = [a.id for a, _t in attempts]
    snaps: dict[int, list[dict[str, Any]]] = {}
    if attempt_ids:
        for s in db.session.scalars(sa.select(Snapshot).where(Snapshot.attempt_id.in_(attempt_ids))
                                    .order_by(Snapshot.taken_at, Snapshot.id)):
            snaps.setdefault(s.attempt_id, []).append(snapshot_payload(s))
    check_ins = db.session.execute(
        sa.select(CheckIn, Lecture.title, BridgePoint, User.full_name)
        .join(Lecture, Lecture.id == CheckIn.lecture_id)
        .join(BridgePoint, BridgePoint.id == CheckIn.bridge_point_id)
        .join(User, User.id == CheckIn.by_user_id)
        .where(CheckIn.user_id == user.id).order_by(CheckIn.at.desc())
    ).all()
    about = Flag.attempt_id.in_(attempt_ids) if attempt_ids else sa.false()
    about = about | ((Flag.kind == CHECKIN_INVALID) & (Flag.detail["user_id"].as_integer() == user.id))
    flags = db.session.scalars(sa.select(Flag).where(about).order_by(Flag.created_at.desc(), Flag.id.desc())).all()
    invalid = {f.lecture_id: f for f in flags if f.kind == CHECKIN_INVALID}
    return {
        "attempts": [{"attempt": a, "exam": t, "snapshots": snaps.get(a.id, [])} for a, t in attempts],
        "check_ins": [{"check_in": c, "lecture": t, "bp": b, "by": by, "invalid_flag": invalid.get(c.lecture_id)}
                      for c, t, b, by in check_ins],
        "flags": flags,
        "latest": latest_decisions([f.id for f in flags]),
        "contexts": contexts(flags),
    }
