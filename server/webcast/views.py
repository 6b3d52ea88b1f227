"""Webcast pages: lectures, the stage, slides, the bridge points' kiosk and the control room.

HTTP: parse → check who → operation → commit → push → render. The live parts of the
stage, kiosk and control pages talk to the hub over `/live` (see events.py).
"""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from typing import Optional

import sqlalchemy as sa
from flask import (Blueprint, abort, flash, jsonify, make_response, redirect, render_template, request,
                   send_from_directory, session, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from ..accounts.auth import kiosk_by_code, kiosk_token, socket_token
from ..accounts.models import Role, User
from ..core.errors import BadInput, DomainError, Forbidden
from ..core.i18n import fmt_datetime
from ..core.permissions import require_roles
from ..core.timeutil import parse_local
from ..extensions import db
from ..places.models import BridgePoint, District
from . import operations, queries
from .models import Lecture, LectureStatus, SlideDeck

bp = Blueprint("webcast", __name__)
STAFF = (Role.organizer, Role.rapporteur, Role.proctor, Role.operator)
KIOSK_SESSION = "kiosk_bp"
FOLDER = re.compile(r"^[A-Za-z0-9_-]{16,100}$")


class KioskLoginForm(FlaskForm):
    code = StringField(_l("Mã đăng nhập của điểm cầu"), validators=[DataRequired(), Length(max=20)])
    submit = SubmitField(_l("Vào điểm cầu"))


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _lecture(lecture_id: int) -> Lecture:
    lecture = db.session.get(Lecture, lecture_id)
    if lecture is None:
        abort(404)
    return lecture


def _run(lecture_id: int) -> Lecture:
    lecture = _lecture(lecture_id)
    operations.require_runner(current_user, lecture)
    return lecture


def _may_see(lecture: Lecture) -> None:
    if current_user.role == Role.rapporteur and lecture.rapporteur_id != current_user.id:
        raise Forbidden("lecture.forbidden", _("Buổi giảng này do báo cáo viên khác trình bày."))


# lectures -----------------------------------------------------------------------------------

@bp.get("/lectures/")
@require_roles(*STAFF)
def lectures():
    q = sa.select(Lecture, User.full_name).join(User, User.id == Lecture.rapporteur_id)
    if current_user.role == Role.rapporteur:
        q = q.where(Lecture.rapporteur_id == current_user.id)
    rows = db.session.execute(
        q.order_by(sa.case((Lecture.status == LectureStatus.live, 0), (Lecture.status == LectureStatus.planned, 1), else_=2),
                   Lecture.scheduled_at.desc())
    ).all()
    return render_template("webcast/lectures.html", rows=rows,
                           may_create=current_user.role == Role.organizer and current_user.district_id is None)


@bp.route("/lectures/new", methods=["GET", "POST"])
@require_roles(Role.organizer)
def new_lecture():
    from ..questions.models import Topic

    if current_user.district_id is not None:
        raise Forbidden("scope.province_only", _("Chỉ Ban Tổ chức cấp tỉnh mới tạo được buổi giảng."))
    topics = db.session.scalars(sa.select(Topic).order_by(Topic.position, Topic.name)).all()
    rapporteurs = db.session.scalars(
        sa.select(User).where(User.role == Role.rapporteur, User.active).order_by(User.full_name)
    ).all()
    form = request.form
    if request.method == "POST":
        try:
            lecture = operations.create_lecture(
                form.get("title", ""),
                _optional_int(form.get("rapporteur_id")),
                _when(form.get("scheduled_at", "")),
                topic_id=_optional_int(form.get("topic_id")),
            )
        except DomainError as err:
            db.session.rollback()
            flash(err.message, "error")
            return render_template("webcast/new.html", topics=topics, rapporteurs=rapporteurs, form=form), 400
        db.session.commit()
        flash(_("Đã tạo buổi giảng."), "success")
        return redirect(url_for("webcast.lecture", lecture_id=lecture.id))
    return render_template("webcast/new.html", topics=topics, rapporteurs=rapporteurs, form=form)


def _optional_int(text: Optional[str]) -> Optional[int]:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadInput("form.bad_number", _("Giá trị “%(v)s” không phải là số nguyên.", v=text)) from None


def _when(text: str):
    if not text.strip():
        return None
    try:
        return parse_local(text)
    except ValueError:
        raise BadInput("form.bad_time", _("Thời gian phải theo dạng dd/mm/yyyy HH:MM.")) from None


@bp.get("/lectures/<int:lecture_id>")
@require_roles(*STAFF)
def lecture(lecture_id: int):
    item = _lecture(lecture_id)
    _may_see(item)
    rapporteur = db.session.get(User, item.rapporteur_id)
    questions = queries.transcript(item.id, current_user)
    for q in questions:
        q["created_text"] = fmt_datetime(datetime.fromtimestamp(q["created_ms"] / 1000, timezone.utc), with_seconds=True)
    return render_template(
        "webcast/lecture.html", lecture=item, rapporteur=rapporteur,
        decks=queries.decks_of(item.id), questions=questions,
        may_run=operations.runs_lecture(current_user, item),
    )


@bp.post("/lectures/<int:lecture_id>/start")
@require_roles(Role.organizer, Role.rapporteur)
def start(lecture_id: int):
    item = _run(lecture_id)
    operations.start_lecture(item)
    db.session.commit()
    operations.push_lecture_state(item)
    flash(_("Buổi giảng đã bắt đầu: mọi điểm cầu chuyển sang buổi giảng này."), "success")
    return redirect(url_for("webcast.stage", lecture_id=item.id))


@bp.post("/lectures/<int:lecture_id>/stop")
@require_roles(Role.organizer, Role.rapporteur)
def stop(lecture_id: int):
    item = _run(lecture_id)
    operations.end_lecture(item)
    db.session.commit()
    operations.push_lecture_state(item)
    flash(_("Buổi giảng đã kết thúc."), "success")
    return redirect(url_for("webcast.lecture", lecture_id=item.id))


# the stage and its slides ---------------------------------------------------------------------

@bp.get("/lectures/<int:lecture_id>/stage")
@require_roles(Role.organizer, Role.rapporteur)
def stage(lecture_id: int):
    item = _run(lecture_id)
    return render_template(
        "webcast/stage.html", lecture=item, rapporteur=db.session.get(User, item.rapporteur_id),
        decks=queries.decks_of(item.id), slide=queries.slide_payload(item),
        socket_token=socket_token(current_user),
        max_mb=int(operations.setting("WEBCAST_SLIDES_MAX_BYTES")) // (1024 * 1024),
        max_pages=int(operations.setting("WEBCAST_SLIDES_MAX_PAGES")),
    )


@bp.post("/lectures/<int:lecture_id>/slides")
@require_roles(Role.organizer, Role.rapporteur)
def upload_slides(lecture_id: int):
    try:
        item = _run(lecture_id)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise BadInput("slides.no_file", _("Hãy chọn tệp PDF của bài giảng."))
        data, filename = upload.read(), upload.filename
        # hold no database transaction while PDFium draws a few hundred pages.
        lecture_id = item.id
        db.session.rollback()
        deck = operations.add_slides(lecture_id, filename, data)
        db.session.commit()
    except DomainError as err:
        db.session.rollback()
        if _wants_json():
            return jsonify(err.to_ack()), err.http_status
        flash(err.message, "error")
        return redirect(url_for("webcast.stage", lecture_id=lecture_id))
    item = db.session.get(Lecture, lecture_id)
    slide = operations.push_slide(item)
    message = _("Đã tải lên “%(name)s”: %(n)d trang.", name=deck.filename, n=deck.n_pages)
    if _wants_json():
        return jsonify({"ok": True, "message": message, "deck_id": deck.id,
                        "decks": queries.decks_of(lecture_id), "slide": slide})
    flash(message, "success")
    return redirect(url_for("webcast.stage", lecture_id=lecture_id))


@bp.get("/slides/<folder>/<int:page>.png")
def slide_image(folder: str, page: int):
    """A rendered page: for logged-in people and signed-in kiosks only."""
    if not current_user.is_authenticated and _kiosk_site() is None:
        abort(403)
    if not FOLDER.match(folder) or page < 1:
        abort(404)
    deck = db.session.scalar(sa.select(SlideDeck).where(SlideDeck.folder == folder))
    if deck is None or page > deck.n_pages:
        abort(404)
    response = send_from_directory(operations.slides_root() / folder, f"{page}.png", mimetype="image/png", max_age=86400)
    response.cache_control.private = True
    response.cache_control.public = False
    return response


# the bridge point's kiosk ------------------------------------------------------------------------

def _kiosk_site() -> Optional[BridgePoint]:
    site_id = session.get(KIOSK_SESSION)
    return db.session.get(BridgePoint, site_id) if isinstance(site_id, int) else None


@bp.route("/kiosk/login", methods=["GET", "POST"])
def kiosk_login():
    form = KioskLoginForm()
    if request.method == "POST":
        if form.validate_on_submit():
            site = kiosk_by_code(form.code.data)
            if site is not None:
                session[KIOSK_SESSION] = site.id
                session.permanent = True  # the room's PC keeps its sign-in across restarts
                return redirect(url_for("webcast.kiosk"))
            flash(_("Mã đăng nhập không đúng. Hãy kiểm tra lại mã do Ban Tổ chức cấp cho điểm cầu."), "error")
        else:
            flash(_("Hãy nhập mã đăng nhập của điểm cầu."), "error")
        return render_template("webcast/kiosk_login.html", form=form), 400
    return render_template("webcast/kiosk_login.html", form=form)


@bp.post("/kiosk/logout")
def kiosk_logout():
    session.pop(KIOSK_SESSION, None)
    return redirect(url_for("webcast.kiosk_login"))


@bp.get("/kiosk")
def kiosk():
    site = _kiosk_site()
    if site is None:
        return redirect(url_for("webcast.kiosk_login"))
    district = db.session.get(District, site.district_id)
    return render_template("webcast/kiosk.html", site=site, district=district, kiosk_token=kiosk_token(site.id))


@bp.get("/kiosk/token")
def kiosk_token_refresh():
    site = _kiosk_site()
    if site is None:
        return jsonify({"ok": False, "error": {"code": "kiosk.signed_out", "message": _("Điểm cầu chưa đăng nhập.")}}), 401
    return jsonify({"ok": True, "token": kiosk_token(site.id)})


@bp.get("/kiosk/exams/<int:exam_id>/qr.svg")
def exam_qr(exam_id: int):
    """The exam page's address as a QR code, for the learners' phones in the room."""
    import segno

    from ..exam.models import Exam

    if not current_user.is_authenticated and _kiosk_site() is None:
        abort(403)
    if db.session.get(Exam, exam_id) is None:
        abort(404)
    out = io.BytesIO()
    segno.make(url_for("exam.take", exam_id=exam_id, _external=True), error="m").save(
        out, kind="svg", scale=8, border=2, xmldecl=False, title=_("Mã QR vào bài thi"))
    response = make_response(out.getvalue())
    response.mimetype = "image/svg+xml"
    response.cache_control.private = True
    response.cache_control.max_age = 300
    return response


# the control room -------------------------------------------------------------------------------

@bp.get("/control")
@require_roles(Role.organizer)
def control():
    q = sa.select(District).order_by(District.name)
    if current_user.district_id is not None:
        q = q.where(District.id == current_user.district_id)
    return render_template(
        "webcast/control.html", districts=db.session.scalars(q).all(), socket_token=socket_token(current_user),
        province_wide=current_user.district_id is None,
        alert_after=int(operations.setting("WEBCAST_OFFLINE_ALERT_SECONDS")),
    )
