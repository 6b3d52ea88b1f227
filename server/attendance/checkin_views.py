"""Check-in pages: the learner's phone (QR link or code), the kiosk's QR image, the roster.

HTTP: parse → check who → operation → commit → redirect. A refusal is shown on the
learner's page in plain Vietnamese and nothing is stored.
"""
from __future__ import annotations

import io
import time
from typing import Optional

import segno
from flask import (Blueprint, abort, flash, jsonify, make_response, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user

from ..accounts.models import Role, User
from ..core.errors import BadInput, DomainError, Forbidden, NotFound
from ..core.permissions import require_cover, require_roles
from ..core.timeutil import now_utc
from ..extensions import db
from ..places.models import BridgePoint, District
from ..review import queries as review_queries
from ..webcast.models import Lecture
from ..webcast.queries import current_lecture
from ..webcast.views import KIOSK_SESSION
from . import checkin, queries

bp = Blueprint("checkin", __name__)
ROSTER_VIEWERS = (Role.operator, Role.organizer, Role.proctor)
#: wrong codes a login may type within WRONG_CODE_WINDOW seconds before it must wait.
MAX_WRONG_CODES = 10
WRONG_CODE_WINDOW = 600


# the learner's phone ------------------------------------------------------------------

def _learner_or_login():
    """The logged-in learner, or a redirect to the login page that comes back here."""
    if not current_user.is_authenticated:
        return None, redirect(url_for("accounts.login", next=request.path))
    if current_user.role != Role.learner:
        raise Forbidden("checkin.learners_only",
                        _("Chỉ học viên mới tự điểm danh được. Bạn đang đăng nhập bằng tài khoản cán bộ."))
    return current_user._get_current_object(), None


def _refused(err: DomainError, **extra):
    db.session.rollback()
    return render_template("attendance/checkin.html", error=err, **extra), err.http_status


def _site_label(bp_id: int) -> Optional[BridgePoint]:
    return db.session.get(BridgePoint, bp_id)


@bp.get("/checkin/<token>")
def by_qr(token: str):
    learner, login = _learner_or_login()
    if login:
        return login
    now = now_utc()
    try:
        lecture_id, bp_id = checkin.read_checkin_token(token, now)
        lecture = db.session.get(Lecture, lecture_id)
        if lecture is None:
            raise NotFound("checkin.unknown_lecture", _("Buổi giảng trong mã QR không còn tồn tại."))
        existing = checkin.find_check_in(lecture.id, learner.id)
        if existing is not None:
            return redirect(url_for("checkin.done", lecture=lecture.id))
        checkin.require_may_check_in(learner, lecture, bp_id)
    except DomainError as err:
        return _refused(err)
    return render_template("attendance/checkin.html", lecture=lecture, site=_site_label(bp_id), token=token)


@bp.post("/checkin/<token>")
def confirm_qr(token: str):
    learner, login = _learner_or_login()
    if login:
        return login
    now = now_utc()
    try:
        lecture_id, bp_id = checkin.read_checkin_token(token, now)
        lecture = db.session.get(Lecture, lecture_id)
        if lecture is None:
            raise NotFound("checkin.unknown_lecture", _("Buổi giảng trong mã QR không còn tồn tại."))
        checkin.check_in(learner, lecture, bp_id, "qr", now)
    except DomainError as err:
        if err.code == "checkin.already":
            return redirect(url_for("checkin.done", lecture=lecture_id))
        return _refused(err)
    db.session.commit()
    return redirect(url_for("checkin.done", lecture=lecture.id, new=1))


def _wrong_codes_left(now: float) -> int:
    count, since = session.get("checkin_wrong", (0, now))
    if now - since > WRONG_CODE_WINDOW:
        count = 0
    return MAX_WRONG_CODES - count


def _count_wrong_code(now: float) -> None:
    count, since = session.get("checkin_wrong", (0, now))
    if now - since > WRONG_CODE_WINDOW:
        count, since = 0, now
    session["checkin_wrong"] = (count + 1, since)


@bp.route("/checkin", methods=["GET", "POST"])
def by_code():
    learner, login = _learner_or_login()
    if login:
        return login
    if request.method == "GET":
        return render_template("attendance/checkin_code.html")
    now = now_utc()
    if _wrong_codes_left(time.time()) <= 0:
        err = BadInput("checkin.too_many_codes",
                       _("Bạn đã nhập sai mã quá nhiều lần. Hãy chờ ít phút, hoặc quét mã QR trên màn hình."))
        db.session.rollback()
        return render_template("attendance/checkin_code.html", error=err), 429
    try:
        code = checkin.normalize_code(request.form.get("code"))
        try:
            lecture, bp_id = checkin.lecture_for_code(learner, code, now)
        except BadInput:
            _count_wrong_code(time.time())
            raise
        checkin.check_in(learner, lecture, bp_id, "code", now)
    except DomainError as err:
        db.session.rollback()
        if err.code == "checkin.already":
            return redirect(url_for("checkin.done", lecture=lecture.id))
        return render_template("attendance/checkin_code.html", error=err), err.http_status
    db.session.commit()
    session.pop("checkin_wrong", None)
    return redirect(url_for("checkin.done", lecture=lecture.id, new=1))


@bp.get("/checkin/done")
def done():
    learner, login = _learner_or_login()
    if login:
        return login
    lecture = db.session.get(Lecture, request.args.get("lecture", type=int) or 0)
    record = checkin.find_check_in(lecture.id, learner.id) if lecture else None
    if record is None:
        return redirect(url_for("checkin.by_code"))
    return render_template("attendance/checkin.html", lecture=lecture, site=_site_label(record.bridge_point_id),
                           record=record, fresh=request.args.get("new") == "1",
                           method_labels=review_queries.METHOD_LABELS)


# the kiosk ---------------------------------------------------------------------------

def _kiosk_site() -> Optional[BridgePoint]:
    site_id = session.get(KIOSK_SESSION)
    return db.session.get(BridgePoint, site_id) if isinstance(site_id, int) else None


@bp.get("/kiosk/checkin.json")
def kiosk_state():
    """What the kiosk shows for check-in: the current code and where to fetch the QR image."""
    site = _kiosk_site()
    if site is None:
        return jsonify({"ok": False, "error": {"code": "kiosk.signed_out", "message": _("Điểm cầu chưa đăng nhập.")}}), 401
    lecture = current_lecture()
    if lecture is None:
        return jsonify({"ok": True, "live": False, "refresh_s": 30})
    now = now_utc()
    code, changes_at = checkin.checkin_code(lecture.id, site.id, now)
    until_change = max(int((changes_at - now).total_seconds()), 1)
    return jsonify({
        "ok": True, "live": True, "lecture_id": lecture.id, "code": code,
        "qr_url": url_for("checkin.kiosk_qr", v=int(now.timestamp())),
        "address": url_for("checkin.by_code", _external=True),
        # a new QR token every few minutes, and the new code as soon as it changes.
        "refresh_s": min(until_change + 1, 180),
    })


@bp.get("/kiosk/checkin-qr.svg")
def kiosk_qr():
    """The QR code of this bridge point's check-in link for the live lecture (rotates)."""
    site = _kiosk_site()
    if site is None:
        abort(403)
    lecture = current_lecture()
    if lecture is None:
        abort(404)
    token = checkin.checkin_token(lecture.id, site.id, now_utc())
    out = io.BytesIO()
    segno.make(url_for("checkin.by_qr", token=token, _external=True), error="m").save(
        out, kind="svg", scale=8, border=2, xmldecl=False, title=_("Mã QR điểm danh"))
    response = make_response(out.getvalue())
    response.mimetype = "image/svg+xml"
    response.cache_control.no_store = True
    return response


# the roster --------------------------------------------------------------------------

def _roster_site() -> Optional[BridgePoint]:
    """The operator's own bridge point; for reviewers the one in ?bp= (within scope)."""
    bp_id = request.values.get("bp", type=int)
    if current_user.role == Role.operator:
        if bp_id is not None and bp_id != current_user.bridge_point_id:
            raise Forbidden("scope.outside", _("Điểm cầu này nằm ngoài phạm vi quản lý của bạn."))
        bp_id = current_user.bridge_point_id
    if bp_id is None:
        return None
    site = db.session.get(BridgePoint, bp_id)
    if site is None:
        abort(404)
    require_cover(current_user, site.district_id, site.id)
    return site


@bp.get("/attendance/roster")
@require_roles(*ROSTER_VIEWERS)
def roster():
    lecture_id = request.args.get("lecture", type=int)
    lecture = db.session.get(Lecture, lecture_id) if lecture_id else review_queries.default_lecture()
    if lecture_id and lecture is None:
        abort(404)
    site = _roster_site()
    if site is None or lecture is None:
        return render_template("attendance/roster.html", lecture=lecture, site=site,
                               lectures=review_queries.lectures_for_review(),
                               sites=review_queries.sites_in_scope(current_user))
    return render_template(
        "attendance/roster.html", lecture=lecture, site=site, district=db.session.get(District, site.district_id),
        lectures=review_queries.lectures_for_review(), rows=queries.roster(lecture.id, site.id),
        figures=queries.site_attendance(lecture.id, [site.id])[site.id],
        may_tick=current_user.role == Role.operator,
        may_invalidate=current_user.role in (Role.organizer, Role.proctor),
        method_labels=review_queries.METHOD_LABELS,
    )


@bp.post("/attendance/roster/tick")
@require_roles(Role.operator)
def tick():
    lecture = db.session.get(Lecture, request.form.get("lecture", type=int) or 0)
    learner = db.session.get(User, request.form.get("user", type=int) or 0)
    if lecture is None or learner is None:
        abort(404)
    action = request.form.get("action", "tick")
    back = url_for("checkin.roster", lecture=lecture.id)
    try:
        if action == "untick":
            checkin.untick(current_user, lecture, learner)
        else:
            checkin.tick(current_user, lecture, learner, now_utc())
    except DomainError as err:
        db.session.rollback()
        if err.http_status == 403:
            raise
        flash(err.message, "error")
        return redirect(back)
    db.session.commit()
    if action == "untick":
        flash(_("Đã bỏ điểm danh của %(name)s.", name=learner.full_name), "success")
    else:
        flash(_("Đã điểm danh cho %(name)s.", name=learner.full_name), "success")
    return redirect(back)

