"""Exam pages: the organizer's list, set-up, incidents, print view; the learner's page."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..accounts.auth import socket_token
from ..accounts.models import Role, User
from ..core.errors import BadInput, DomainError, Forbidden
from ..core.permissions import require_cover, require_roles
from ..core.timeutil import parse_local
from ..extensions import db
from ..places.models import BridgePoint
from ..questions.models import Question, Topic
from . import notify, operations
from .models import Attempt, Exam, ExamCode, ExamStatus, TimeAdjustment
from .papers import load_code

bp = Blueprint("exam", __name__)
STAFF = (Role.organizer, Role.proctor, Role.operator)


def _require_province() -> None:
    """Creating, scheduling and opening a province-wide exam is the province's call."""
    if current_user.district_id is not None:
        raise Forbidden("scope.province_only", _("Chỉ Ban Tổ chức cấp tỉnh mới thực hiện được thao tác này."))


def _exam(exam_id: int) -> Exam:
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        abort(404)
    return exam


@bp.get("/exams/")
@require_roles(*STAFF)
def index():
    exams = db.session.scalars(sa.select(Exam).order_by(Exam.created_at.desc())).all()
    return render_template("exam/index.html", exams=exams)


@bp.route("/exams/new", methods=["GET", "POST"])
@require_roles(Role.organizer)
def new():
    topics = db.session.execute(
        sa.select(Topic, sa.func.count(Question.id))
        .outerjoin(Question, (Question.topic_id == Topic.id) & Question.active)
        .group_by(Topic.id)
        .order_by(Topic.position, Topic.name)
    ).all()
    _require_province()
    form = request.form
    if request.method == "POST":
        try:
            exam = operations.create_exam(
                form.get("title", ""),
                {t.id: _int(form.get(f"quota_{t.id}", "0"), "quota") for t, _n in topics},
                duration_minutes=_int(form.get("duration_minutes", "120"), "duration"),
                n_codes=_int(form.get("n_codes", "2"), "codes"),
                opens_at=_when(form.get("opens_at", "")),
                show_score=form.get("show_score") == "1",
            )
        except DomainError as err:
            db.session.rollback()
            flash(err.message, "error")
            return render_template("exam/new.html", topics=topics, form=form), 400
        db.session.commit()
        flash(_("Đã tạo bài thi."), "success")
        return redirect(url_for("exam.detail", exam_id=exam.id))
    return render_template("exam/new.html", topics=topics, form=form)


def _int(text: str, what: str) -> int:
    try:
        return int(str(text).strip() or 0)
    except ValueError:
        raise BadInput(f"form.bad_{what}", _("Giá trị “%(v)s” không phải là số nguyên.", v=text)) from None


def _when(text: str):
    if not text.strip():
        return None
    try:
        return parse_local(text)
    except ValueError:
        raise BadInput("form.bad_time", _("Thời điểm phải theo dạng dd/mm/yyyy HH:MM.")) from None


@bp.get("/exams/<int:exam_id>")
@require_roles(*STAFF)
def detail(exam_id: int):
    exam = _exam(exam_id)
    counts = dict(
        db.session.execute(
            sa.select(Attempt.code_id, sa.func.count()).where(Attempt.exam_id == exam.id).group_by(Attempt.code_id)
        ).all()
    )
    adjustments = db.session.execute(
        sa.select(TimeAdjustment, User.full_name, BridgePoint.code)
        .join(User, User.id == TimeAdjustment.by_user_id)
        .outerjoin(BridgePoint, BridgePoint.id == TimeAdjustment.bridge_point_id)
        .where(TimeAdjustment.exam_id == exam.id)
        .order_by(TimeAdjustment.at.desc())
    ).all()
    bridge_points = db.session.scalars(sa.select(BridgePoint).order_by(BridgePoint.code)).all()
    return render_template(
        "exam/detail.html", exam=exam, counts=counts, adjustments=adjustments, bridge_points=bridge_points
    )


@bp.post("/exams/<int:exam_id>/schedule")
@require_roles(Role.organizer)
def schedule(exam_id: int):
    _require_province()
    exam = _exam(exam_id)
    n = operations.schedule_exam(exam)
    db.session.commit()
    flash(_("Đã tạo %(c)d mã đề và xếp %(n)d học viên vào phòng thi.", c=exam.n_codes, n=n), "success")
    return redirect(url_for("exam.detail", exam_id=exam.id))


@bp.post("/exams/<int:exam_id>/open")
@require_roles(Role.organizer)
def open_now(exam_id: int):
    _require_province()
    _exam(exam_id)
    exam = operations.open_exam(exam_id)
    db.session.commit()
    if exam is None:
        flash(_("Bài thi đã được mở hoặc chưa được lên lịch."), "error")
    else:
        notify.exam_started(exam)
        flash(_("Đã mở bài thi: mọi học viên bắt đầu cùng lúc."), "success")
    return redirect(url_for("exam.board", exam_id=exam_id))


@bp.post("/exams/<int:exam_id>/adjust")
@require_roles(Role.organizer)
def adjust(exam_id: int):
    exam = _exam(exam_id)
    form = request.form
    bp_id = _int(form.get("bridge_point_id", "") or "0", "bridge_point") or None
    attempt_id = None
    if form.get("personal_code", "").strip():
        target = db.session.scalar(
            sa.select(Attempt).join(User, User.id == Attempt.user_id).where(
                Attempt.exam_id == exam.id, User.personal_code == form["personal_code"].strip().upper()
            )
        )
        if target is None:
            raise BadInput("adjust.unknown_learner", _("Không có học viên với mã cá nhân này trong bài thi."))
        require_cover(current_user, target.district_id, target.bridge_point_id)
        attempt_id, bp_id = target.id, None
    if bp_id is not None:
        place = db.session.get(BridgePoint, bp_id)
        if place is None:
            raise BadInput("adjust.unknown_bridge_point", _("Điểm cầu không tồn tại."))
        require_cover(current_user, place.district_id, place.id)
    minutes = _int(form.get("minutes", "0") or "0", "minutes")
    record, changed = operations.adjust_time(
        exam, form.get("kind", ""), by=current_user, reason=form.get("reason", ""),
        bridge_point_id=bp_id, attempt_id=attempt_id, seconds=minutes * 60,
    )
    db.session.commit()
    notify.attempt_time(changed)
    flash(_("Đã điều chỉnh thời gian cho %(n)d học viên.", n=record.n_attempts), "success")
    return redirect(url_for("exam.detail", exam_id=exam.id))


@bp.get("/exams/<int:exam_id>/board")
@require_roles(*STAFF)
def board(exam_id: int):
    exam = _exam(exam_id)
    return render_template("exam/board.html", exam=exam, socket_token=socket_token(current_user))


@bp.get("/exams/<int:exam_id>/codes/<int:code_id>/print")
@require_roles(Role.organizer)
def print_code(exam_id: int, code_id: int):
    exam = _exam(exam_id)
    code = db.session.get(ExamCode, code_id)
    if code is None or code.exam_id != exam.id:
        abort(404)
    data = load_code(code.id)
    letters = "ABCDEF"
    key = [
        (item["n"], letters[[c["id"] for c in item["choices"]].index(data.key[item["id"]])])
        for item in data.paper
    ]
    return render_template("exam/print.html", exam=exam, code=data, key=key, letters=letters,
                           with_key=request.args.get("key") == "1")


# learner ----------------------------------------------------------------------

@bp.get("/learn/")
@require_roles(Role.learner)
def my_exams():
    rows = db.session.execute(
        sa.select(Attempt, Exam).join(Exam).where(Attempt.user_id == current_user.id, Exam.status != ExamStatus.draft)
        .order_by(Exam.opens_at.desc())
    ).all()
    return render_template("exam/my_exams.html", rows=rows)


@bp.get("/learn/exams/<int:exam_id>")
@require_roles(Role.learner)
def take(exam_id: int):
    attempt = operations.attempt_for(current_user.id, exam_id)
    return render_template("exam/take.html", exam=attempt.exam, attempt=attempt, socket_token=socket_token(current_user),
                           webcam_required=current_app.config.get("EXAM_WEBCAM_REQUIRED", False))
