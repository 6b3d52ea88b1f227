"""Results pages and the Excel export."""
from __future__ import annotations

import re
import unicodedata

from flask import Blueprint, Response, abort, render_template
from flask_login import current_user

from ..accounts.models import Role
from ..core.permissions import require_roles
from ..exam.models import Exam
from ..extensions import db
from .queries import exam_report
from .xlsx import results_workbook

bp = Blueprint("reports", __name__)


def _exam(exam_id: int) -> Exam:
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        abort(404)
    return exam


@bp.get("/exams/<int:exam_id>/results")
@require_roles(Role.organizer, Role.proctor)
def results(exam_id: int):
    report = exam_report(_exam(exam_id), current_user)
    return render_template("reports/results.html", report=report)


@bp.get("/exams/<int:exam_id>/results.xlsx")
@require_roles(Role.organizer, Role.proctor)
def results_xlsx(exam_id: int):
    exam = _exam(exam_id)
    data = results_workbook(exam_report(exam, current_user))
    ascii_name = unicodedata.normalize("NFKD", exam.title).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-") or "ket-qua"
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="ket-qua-{ascii_name}.xlsx"'},
    )
