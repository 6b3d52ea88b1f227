"""The question bank in the browser: browse, import, export, edit."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..accounts.models import Role
from ..core.permissions import require_roles
from ..extensions import db
from .models import Question, Topic

bp = Blueprint("questions", __name__, url_prefix="/questions")


@bp.get("/")
@require_roles(Role.organizer)
def index():
    topics = db.session.execute(
        sa.select(Topic, sa.func.count(Question.id))
        .outerjoin(Question, (Question.topic_id == Topic.id) & Question.active)
        .group_by(Topic.id)
        .order_by(Topic.position, Topic.name)
    ).all()
    topic_id = request.args.get("topic", type=int)
    questions = []
    if topic_id:
        questions = db.session.scalars(
            sa.select(Question).where(Question.topic_id == topic_id, Question.active).order_by(Question.id)
        ).all()
    return render_template("questions/index.html", topics=topics, questions=questions, topic_id=topic_id)


@bp.route("/import", methods=["GET", "POST"])
@require_roles(Role.organizer)
def import_():
    from . import operations

    report = None
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Hãy chọn một tệp câu hỏi."), "error")
            return render_template("questions/import.html", report=None), 400
        report = operations.import_questions(upload.read(), upload.filename, request.form.get("topic", ""),
                                             skip_unsupported=request.form.get("skip_unsupported") == "1")
        if report.ok:
            db.session.commit()
            flash(_("Đã nhập %(n)d câu hỏi.", n=report.created), "success")
            for issue in report.skipped:
                flash(_("Bỏ qua (dòng %(row)s): %(reason)s", row=issue.row or "—", reason=issue.reason), "warning")
            return redirect(url_for("questions.index"))
        db.session.rollback()
        return render_template("questions/import.html", report=report), 400
    return render_template("questions/import.html", report=report)


@bp.get("/export.<fmt>")
@require_roles(Role.organizer)
def export(fmt: str):
    from . import operations

    if fmt not in ("xlsx", "csv"):
        abort(404)
    data = operations.export_questions(fmt, request.args.get("topic", type=int))
    mime = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, mimetype=mime, headers={"Content-Disposition": f'attachment; filename="ngan-hang-cau-hoi.{fmt}"'})


@bp.route("/<int:question_id>/edit", methods=["GET", "POST"])
@require_roles(Role.organizer)
def edit(question_id: int):
    from . import operations

    question = db.session.get(Question, question_id)
    if question is None:
        abort(404)
    topics = db.session.scalars(sa.select(Topic).order_by(Topic.position, Topic.name)).all()
    if request.method == "POST":
        errors = operations.update_question(
            question,
            topic_id=request.form.get("topic_id", type=int),
            text=request.form.get("text", ""),
            choices=[request.form.get(f"choice_{i}", "") for i in range(6)],
            correct=request.form.get("correct", type=int),
        )
        if not errors:
            db.session.commit()
            flash(_("Đã lưu câu hỏi."), "success")
            return redirect(url_for("questions.index", topic=question.topic_id))
        db.session.rollback()
        for e in errors:
            flash(e, "error")
        return render_template("questions/edit.html", question=question, topics=topics, form=request.form), 400
    return render_template("questions/edit.html", question=question, topics=topics, form=None)
