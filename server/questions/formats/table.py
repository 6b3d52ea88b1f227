"""Spreadsheets organizers send (.xlsx from Excel, or .csv): rows as a person sees them.

Shared by the question import and the learner roster. Row numbers are Excel's (the header
is row 1) so an issue list can be checked against the open file.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _

from .common import ImportIssue, fold, normalize_text

#: a province roster is ~10,000 learners; far beyond that the file is a mistake (or a bomb).
MAX_ROWS = 100_000


class TableError(Exception):
    """The file cannot be read as a table at all (as opposed to bad rows in it)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _cell_text(value: object) -> str:
    """Excel stores 12 as 12.0 and dates as datetimes; show them as a person typed them."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() != datetime.min.time():
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return normalize_text(str(value))


def _xlsx_rows(data: bytes) -> list[tuple[int, list[str]]]:
    import openpyxl  # only the spreadsheet paths pay for the import

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - openpyxl raises anything on foreign bytes
        raise TableError("not_a_spreadsheet", _(
            "Tệp không phải là bảng tính Excel (.xlsx) hợp lệ.")) from error
    try:
        return _sheet_rows(workbook.worksheets[0] if workbook.worksheets else None)
    except TableError:
        raise
    except Exception as error:  # noqa: BLE001 - a broken part shows up only while streaming
        raise TableError("not_a_spreadsheet", _(
            "Tệp không phải là bảng tính Excel (.xlsx) hợp lệ.")) from error
    finally:
        workbook.close()


def _sheet_rows(sheet) -> list[tuple[int, list[str]]]:
    """The first worksheet: that is the one the organizer filled from our template."""
    if sheet is None:
        raise TableError("empty_file", _("Tệp không có dữ liệu."))
    # Some generators write a wrong <dimension>; read to the real end instead.
    sheet.reset_dimensions()
    rows = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > MAX_ROWS:
            raise TableError("too_many_rows", _("Bảng tính có hơn %(limit)s dòng.", limit=MAX_ROWS))
        rows.append((number, [_cell_text(v) for v in values]))
    return rows


def _csv_rows(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError("not_a_spreadsheet", _(
            "Tệp CSV không đọc được: hãy lưu lại với kiểu «CSV UTF-8».")) from error
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if "," not in first_line and ";" in first_line else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise TableError("not_a_spreadsheet", _("Tệp CSV bị lỗi: %(error)s.", error=str(error))) from error
    if len(records) > MAX_ROWS:
        raise TableError("too_many_rows", _("Bảng tính có hơn %(limit)s dòng.", limit=MAX_ROWS))
    # In Excel each CSV record is one row, even with line breaks inside quotes.
    return [(number, [normalize_text(c) for c in cells]) for number, cells in enumerate(records, start=1)]


def read_table(data: bytes, filename: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows of the first sheet of an .xlsx or a .csv file.

    The header is the first non-empty row (row 1 in a normal file); cells are strings,
    normalised. Raises TableError for a file that is not a readable table.
    """
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension == "xlsx":
        rows = _xlsx_rows(data)
    elif extension == "csv":
        rows = _csv_rows(data)
    else:
        raise TableError("bad_extension", _(
            "Chỉ nhận tệp .xlsx hoặc .csv (tệp .xls cũ hãy mở bằng Excel và lưu lại thành .xlsx)."))
    rows = [(number, _trim(cells)) for number, cells in rows]
    rows = [(number, cells) for number, cells in rows if cells]
    if not rows:
        raise TableError("empty_file", _("Tệp không có dữ liệu."))
    return rows[0][1], rows[1:]


def _trim(cells: list[str]) -> list[str]:
    """Drop trailing empty cells, so a row of formatting only counts as empty."""
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


@dataclass(frozen=True)
class Column:
    """A column an import understands: its key, the name in our template, accepted aliases."""

    key: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = True

    def matches(self, header_cell: str) -> bool:
        wanted = {header_key(self.label), *(header_key(a) for a in self.aliases)}
        return header_key(header_cell) in wanted


def header_key(text: str) -> str:
    """Headers match case-, accent- and space-insensitively: "Chuyen de" is "Chuyên đề"."""
    return "".join(fold(text).split())


def locate_columns(header: list[str], columns: list[Column]) -> tuple[dict[str, int], list[ImportIssue]]:
    """Where each known column is; a missing required or repeated column is a "bad_header".

    Unknown columns (STT, notes) are ignored: organizers' sheets usually carry them.
    """
    found: dict[str, int] = {}
    issues: list[ImportIssue] = []
    for index, cell in enumerate(header):
        for column in columns:
            if column.matches(cell):
                if column.key in found:
                    issues.append(ImportIssue(1, column.label, "bad_header", _(
                        "Cột «%(column)s» xuất hiện hơn một lần ở dòng tiêu đề.", column=column.label)))
                found.setdefault(column.key, index)
    for column in columns:
        if column.required and column.key not in found:
            issues.append(ImportIssue(1, column.label, "bad_header", _(
                "Thiếu cột «%(column)s» ở dòng tiêu đề.", column=column.label)))
    return found, issues


def cell(cells: list[str], index: int | None) -> str:
    """The cell of a row in a located column ("" when absent or past the row's end)."""
    if index is None or index >= len(cells):
        return ""
    return cells[index]
