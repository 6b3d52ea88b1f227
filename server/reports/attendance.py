"""Attendance of a lecture per bridge point and district, for the web page and for Excel.

Attended = checked in, minus the check-ins a proctor confirmed invalid. The camera
column is the median headcount of each site's analysed room snapshots; a district's
figure is the sum of its sites' medians. Confirmed room anomalies (headcount low,
empty room) are listed per site, so the numbers carry the proctors' decisions.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Optional

import sqlalchemy as sa
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from ..attendance.queries import site_attendance
from ..core.i18n import fmt_datetime
from ..core.permissions import scope_clause
from ..extensions import db
from ..places.models import BridgePoint, District
from ..review.queries import kind_label
from ..webcast.models import Lecture
from .xlsx import _sheet, _sheet_title


@dataclass
class Line:
    """One row of the report: a bridge point, a district or the total."""

    name: str
    registered: int = 0
    attended: int = 0
    invalid: int = 0
    #: None when no site below has an analysed snapshot.
    camera: Optional[float] = None
    anomalies: dict[str, int] = field(default_factory=dict)
    bridge_point_id: Optional[int] = None

    @property
    def rate(self) -> Optional[float]:
        return round(100.0 * self.attended / self.registered, 2) if self.registered else None

    @property
    def n_anomalies(self) -> int:
        return sum(self.anomalies.values())

    @property
    def anomaly_text(self) -> str:
        return "; ".join(f"{kind_label(k)} ({n})" for k, n in sorted(self.anomalies.items()))

    def add(self, other: "Line") -> None:
        self.registered += other.registered
        self.attended += other.attended
        self.invalid += other.invalid
        if other.camera is not None:
            self.camera = (self.camera or 0) + other.camera
        for k, n in other.anomalies.items():
            self.anomalies[k] = self.anomalies.get(k, 0) + n


@dataclass
class AttendanceReport:
    lecture: Lecture
    total: Line
    districts: list[tuple[Line, list[Line]]]


def attendance_report(lecture: Lecture, viewer) -> AttendanceReport:
    """The lecture's attendance over the bridge points in the viewer's scope."""
    sites = db.session.execute(
        sa.select(BridgePoint, District).join(District, District.id == BridgePoint.district_id)
        .where(scope_clause(viewer, BridgePoint.district_id, BridgePoint.id))
        .order_by(District.name, BridgePoint.code)
    ).all()
    figures = site_attendance(lecture.id, [bp.id for bp, _d in sites])
    districts: dict[int, tuple[Line, list[Line]]] = {}
    for bp, district in sites:
        f = figures[bp.id]
        line = Line(f"{bp.code} – {bp.name}", f.registered, f.attended, f.invalid, f.headcount_median,
                    dict(f.confirmed_anomalies), bridge_point_id=bp.id)
        group = districts.setdefault(district.id, (Line(district.name), []))
        group[0].add(line)
        group[1].append(line)
    total = Line(_("Toàn tỉnh") if viewer.district_id is None else _("Tổng trong phạm vi"))
    for d_line, _lines in districts.values():
        total.add(d_line)
    return AttendanceReport(lecture, total, list(districts.values()))


# Excel ---------------------------------------------------------------------------------

def _header(first: str) -> list[str]:
    return [first, _("Đăng ký"), _("Điểm danh"), _("Điểm danh bị loại"), _("Số người theo camera (trung vị)"),
            _("Tỉ lệ (%)"), _("Cảnh báo đã xác nhận"), _("Chi tiết cảnh báo")]


def _cells(line: Line) -> list:
    return [line.name, line.registered, line.attended, line.invalid, line.camera, line.rate,
            line.n_anomalies, line.anomaly_text]


def attendance_workbook(report: AttendanceReport) -> bytes:
    """A summary sheet by district, then one sheet per district by bridge point."""
    wb = Workbook()
    ws = wb.active
    ws.title = _("Tổng hợp")
    lecture = report.lecture
    titles = [
        _("Điểm danh: %(title)s", title=lecture.title),
        _("Bắt đầu: %(start)s · Kết thúc: %(end)s", start=fmt_datetime(lecture.started_at) or _("chưa bắt đầu"),
          end=fmt_datetime(lecture.ended_at) or _("chưa kết thúc")),
    ]
    rows = [_cells(d) for d, _lines in report.districts] + [_cells(report.total)]
    _sheet(ws, titles, _header(_("Huyện / thành phố")), rows)
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    ws.column_dimensions["H"].width = 48
    used = {ws.title}
    for d, lines in report.districts:
        sheet = wb.create_sheet(_sheet_title(d.name, used))
        _sheet(sheet, [f"{d.name}: {lecture.title}"], _header(_("Điểm cầu")), [_cells(x) for x in lines] + [_cells(d)])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
        sheet.column_dimensions["H"].width = 48
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
