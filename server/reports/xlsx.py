"""The results workbook: a summary sheet and one sheet per district, in Vietnamese."""
from __future__ import annotations

import io
import re

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ..core.i18n import fmt_datetime
from .queries import ExamReport, Stats

HEAD = Font(bold=True, color="FFFFFF")
FILL = PatternFill("solid", fgColor="9B1C1C")


def _row(s: Stats, labels: list[str]) -> list:
    return [s.name, s.registered, s.took_part, s.mean, *[s.bands.get(l, 0) for l in labels], s.good, s.good_share]


def _header(labels: list[str], first: str) -> list[str]:
    return [first, "Đăng ký", "Tham gia", "Điểm TB", *labels, "Giỏi + Xuất sắc", "Tỉ lệ Giỏi + Xuất sắc (%)"]


def _sheet(ws, title_lines: list[str], header: list[str], rows: list[list]) -> None:
    for line in title_lines:
        ws.append([line])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([])
    ws.append(header)
    head_row = ws.max_row
    for cell in ws[head_row]:
        cell.font, cell.fill = HEAD, FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r in rows:
        ws.append(r)
    ws.freeze_panes = ws.cell(row=head_row + 1, column=2)
    ws.column_dimensions["A"].width = 42
    for i in range(2, len(header) + 1):
        ws.column_dimensions[get_column_letter(i)].width = 14


def _sheet_title(name: str, used: set[str]) -> str:
    base = re.sub(r"[\\/*?:\[\]]", " ", name)[:28].strip() or "Huyện"
    title, n = base, 2
    while title in used:
        title, n = f"{base[:25]} {n}", n + 1
    used.add(title)
    return title


def results_workbook(report: ExamReport) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Tổng hợp"
    titles = [
        f"Kết quả: {report.exam.title}",
        f"Thời gian đóng bài: {fmt_datetime(report.exam.closed_at) or 'chưa đóng'}",
    ]
    rows = [_row(d, report.band_labels) for d, _ in report.districts] + [_row(report.total, report.band_labels)]
    _sheet(ws, titles, _header(report.band_labels, "Huyện / thành phố"), rows)
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    used = {ws.title}
    for d, bps in report.districts:
        sheet = wb.create_sheet(_sheet_title(d.name, used))
        _sheet(sheet, [f"{d.name}: {report.exam.title}"], _header(report.band_labels, "Điểm cầu"),
               [_row(s, report.band_labels) for s in bps] + [_row(d, report.band_labels)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
