"""The attendance report of a lecture: web page and Excel export."""
from __future__ import annotations

import re
import unicodedata

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user

from ..accounts.models import Role
from ..core.permissions import require_roles
from ..extensions import db
from ..review.queries import lectures_for_review
from ..webcast.models import Lecture
from .attendance import attendance_report, attendance_workbook

bp = Blueprint("attendance_reports", __name__)
VIEWERS = (Role.organizer, Role.proctor)


def _lecture_arg() -> Lecture | None:
    lecture_id = request.args.get("lecture", type=int)
    if lecture_id is None:
        return None
    lecture = db.session.get(Lecture, lecture_id)
    if lecture is None:
        abort(404)
    return lecture


@bp.get("/reports/attendance")
@require_roles(*VIEWERS)
def page():
    lecture = _lecture_arg()
    report = attendance_report(lecture, current_user) if lecture else None
    return render_template("attendance/report.html", lecture=lecture, report=report, lectures=lectures_for_review())


@bp.get("/reports/attendance.xlsx")
@require_roles(*VIEWERS)
def xlsx():
    lecture = _lecture_arg()
    if lecture is None:
        abort(404)
    data = attendance_workbook(attendance_report(lecture, current_user))
    ascii_name = unicodedata.normalize("NFKD", lecture.title).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-") or "buoi-giang"
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="diem-danh-{ascii_name}.xlsx"'},
    )
