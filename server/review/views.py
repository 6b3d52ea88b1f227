"""Proctor review: the mosaic, a site's timeline, a learner's camera log, the flag queue.

Proctors and organizers only, each within their scope (a district's reviewers see that
district). HTTP: parse → check who → operation → commit → redirect.
"""
from __future__ import annotations

from typing import Optional

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..accounts.models import Role, User
from ..attendance import queries as attendance
from ..attendance.models import CheckIn
from ..core.errors import BadInput, DomainError
from ..core.permissions import require_cover, require_roles
from ..core.timeutil import now_utc
from ..extensions import db
from ..places.models import BridgePoint, District
from ..webcast.models import Lecture
from . import operations, queries
from .models import Flag

bp = Blueprint("review", __name__, url_prefix="/review")
REVIEWERS = operations.REVIEWERS


def _int_arg(name: str) -> Optional[int]:
    text = (request.values.get(name) or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadInput("form.bad_number", _("Giá trị “%(v)s” không phải là số nguyên.", v=text)) from None


def _lecture_arg() -> Optional[Lecture]:
    """The lecture named in ?lecture=, else the live or latest one."""
    lecture_id = _int_arg("lecture")
    if lecture_id is None:
        return queries.default_lecture()
    lecture = db.session.get(Lecture, lecture_id)
    if lecture is None:
        abort(404)
    return lecture


def _safe_next(default: str) -> str:
    """A local path from the form or query (`next`), else `default`: never another site."""
    target = request.values.get("next") or ""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else default


def _context() -> dict:
    return {"kind_label": queries.kind_label, "status_labels": queries.STATUS_LABELS,
            "method_labels": queries.METHOD_LABELS}


@bp.get("/")
@require_roles(*REVIEWERS)
def index():
    return redirect(url_for("review.flags"))


# the mosaic -------------------------------------------------------------------------

@bp.get("/mosaic")
@require_roles(*REVIEWERS)
def mosaic():
    lecture = _lecture_arg()
    lecture_id = lecture.id if lecture else None
    return render_template("review/mosaic.html", lecture=lecture, lectures=queries.lectures_for_review(),
                           tiles=queries.mosaic(current_user, lecture_id), **_context())


@bp.get("/mosaic.json")
@require_roles(*REVIEWERS)
def mosaic_data():
    lecture = _lecture_arg()
    return jsonify({"ok": True, "lecture_id": lecture.id if lecture else None,
                    "tiles": queries.mosaic(current_user, lecture.id if lecture else None)})


# a bridge point's timeline ------------------------------------------------------------

@bp.get("/bridge-points/<int:bp_id>")
@require_roles(*REVIEWERS)
def timeline(bp_id: int):
    site = db.session.get(BridgePoint, bp_id)
    if site is None:
        abort(404)
    require_cover(current_user, site.district_id, site.id)
    lecture = _lecture_arg()
    lecture_id = lecture.id if lecture else None
    figures = attendance.site_attendance(lecture_id, [site.id])[site.id] if lecture_id else None
    return render_template(
        "review/timeline.html", site=site, district=db.session.get(District, site.district_id),
        lecture=lecture, lectures=queries.lectures_for_review(), figures=figures,
        entries=queries.timeline(site.id, lecture_id), flags=queries.site_flags(site.id, lecture_id), **_context(),
    )


# a learner's camera log ----------------------------------------------------------------

@bp.get("/learners/<int:user_id>")
@require_roles(*REVIEWERS)
def learner(user_id: int):
    person = db.session.get(User, user_id)
    if person is None or person.role != Role.learner:
        abort(404)
    require_cover(current_user, person.district_id, person.bridge_point_id)
    return render_template("review/learner.html", learner=person, log=queries.learner_log(person), **_context())


@bp.post("/check-ins/<int:check_in_id>/invalid")
@require_roles(*REVIEWERS)
def mark_invalid(check_in_id: int):
    check_in = db.session.get(CheckIn, check_in_id)
    if check_in is None:
        abort(404)
    back = _safe_next(url_for("review.learner", user_id=check_in.user_id))
    try:
        operations.mark_check_in_invalid(check_in, request.form.get("note"), current_user, now_utc())
    except DomainError as err:
        db.session.rollback()
        if err.http_status == 403:
            raise
        flash(err.message, "error")
        return redirect(back)
    db.session.commit()
    flash(_("Đã đánh dấu lượt điểm danh là không hợp lệ; số liệu điểm danh đã cập nhật."), "success")
    return redirect(back)


# the flag queue ---------------------------------------------------------------------

@bp.get("/flags")
@require_roles(*REVIEWERS)
def flags():
    status = request.args.get("status", "open")
    if status not in queries.STATUS_LABELS and status != "all":
        status = "open"
    kind = request.args.get("kind", "")
    if kind not in queries.KIND_LABELS:
        kind = ""
    district_id = _int_arg("district")
    if district_id is not None:
        require_cover(current_user, district_id, None)
    page = max(_int_arg("page") or 1, 1)
    queue = queries.flag_queue(current_user, status, kind, district_id, page)
    return render_template(
        "review/flags.html", queue=queue, status=status, kind=kind, district_id=district_id,
        districts=queries.districts_in_scope(current_user), kinds=queries.KIND_LABELS, **_context(),
    )


@bp.get("/flags/<int:flag_id>")
@require_roles(*REVIEWERS)
def flag(flag_id: int):
    item = db.session.get(Flag, flag_id)
    if item is None:
        abort(404)
    operations.require_reviewer(current_user, item)
    district_id, bp_id = queries.flag_place(item)
    snapshot = None
    if item.snapshot_id:
        from ..attendance.models import Snapshot

        snap = db.session.get(Snapshot, item.snapshot_id)
        snapshot = queries.snapshot_payload(snap) if snap else None
    return render_template(
        "review/flag.html", flag=item, snapshot=snapshot, decisions=queries.decisions_of(item.id),
        site=db.session.get(BridgePoint, bp_id) if bp_id else None,
        district=db.session.get(District, district_id) if district_id else None,
        learner=queries.flag_learner(item), context_title=queries.contexts([item]).get(item.id, ""),
        back=_safe_next(url_for("review.flags")), **_context(),
    )


@bp.post("/flags/<int:flag_id>/decide")
@require_roles(*REVIEWERS)
def decide(flag_id: int):
    item = db.session.get(Flag, flag_id)
    if item is None:
        abort(404)
    back = _safe_next(url_for("review.flags"))
    decision = request.form.get("decision", "")
    try:
        operations.decide(item, decision, request.form.get("note"), current_user, now_utc())
    except DomainError as err:
        db.session.rollback()
        if err.http_status == 403:
            raise
        flash(err.message, "error")
        return redirect(url_for("review.flag", flag_id=flag_id, next=back))
    db.session.commit()
    if decision == "confirmed":
        flash(_("Đã xác nhận cảnh báo #%(id)d.", id=flag_id), "success")
    else:
        flash(_("Đã bỏ qua cảnh báo #%(id)d.", id=flag_id), "success")
    return redirect(back)

