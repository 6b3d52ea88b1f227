"""The learner roster an organizer uploads: one learner per row, placed at a bridge point.

Pure checks, no database: the caller passes the bridge points (code → district name) and
the personal codes already taken, and imports nothing while any issue remains, because a
half-imported roster leaves learners who cannot sign in on the day of the test.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _

from ..questions.formats import Column, ImportIssue, cell, fold, locate_columns, normalize_text

#: matches the User columns (full_name and unit are String(200), personal_code String(40)).
MAX_NAME = 200
_CODE = re.compile(r"[A-Za-z0-9_-]{3,40}", re.ASCII)
# "Huyện Tam Đường", "TP. Lai Châu" and "Tam Đường" name the same district.
_DISTRICT_PREFIX = re.compile(r"^(huyen|quan|thi xa|thanh pho|tp\.?)\s*")

ROSTER_COLUMNS = [
    Column("full_name", "Họ và tên", ("Họ tên", "full name")),
    Column("personal_code", "Mã cá nhân", ("personal code", "mã")),
    Column("unit", "Trường/Đơn vị", ("Đơn vị", "Trường", "unit", "school"), required=False),
    Column("district", "Huyện", ("Huyện/Thành phố", "district"), required=False),
    Column("bridge_point", "Điểm cầu", ("Mã điểm cầu", "bridge point")),
]


@dataclass(frozen=True)
class RosterRow:
    row: int
    full_name: str
    personal_code: str
    unit: str
    #: the district as the file writes it, or the bridge point's when the cell is empty.
    district: str
    #: the code as the bridge points mapping spells it.
    bridge_point_code: str


def _same_district(written: str, expected: str) -> bool:
    """Equal with or without "Huyện"/"Thành phố"; both forms are tried because some names
    start with what looks like a prefix ("Quan Hóa" is Huyện Quan Hóa, not Quận Hóa)."""

    def forms(name: str) -> set[str]:
        key = fold(name)
        return {key, _DISTRICT_PREFIX.sub("", key)}

    return bool(forms(written) & forms(expected))


class _RosterChecker:
    """Checks one row at a time; issue columns use the organizer's own header names."""

    def __init__(self, header: list[str], found: dict[str, int],
                 bridge_points: Mapping[str, str], existing_codes: set[str]) -> None:
        self.header, self.found = header, found
        self.bridge_points = {normalize_text(code).casefold(): code for code in bridge_points}
        self.districts = bridge_points
        self.existing = {normalize_text(code).casefold() for code in existing_codes}
        self.issues: list[ImportIssue] = []

    def report(self, number: int, key: str, code: str, reason: str) -> None:
        label = self.header[self.found[key]] if key in self.found else key
        self.issues.append(ImportIssue(number, label, code, reason))

    def check(self, number: int, cells: list[str]) -> RosterRow | None:
        before = len(self.issues)
        get = {key: normalize_text(cell(cells, index)) for key, index in self.found.items()}.get
        name, code = get("full_name") or "", get("personal_code") or ""
        self._check_name(number, name, get("unit") or "")
        self._check_code(number, code)
        bridge_point = self._check_bridge_point(number, get("bridge_point") or "", get("district") or "")
        if len(self.issues) > before or bridge_point is None:
            return None
        district = get("district") or self.districts[bridge_point]
        return RosterRow(number, name, code, get("unit") or "", district, bridge_point)

    def _check_name(self, number: int, name: str, unit: str) -> None:
        if not name:
            self.report(number, "full_name", "empty_value", _("Chưa ghi họ và tên."))
        elif len(name) > MAX_NAME:
            self.report(number, "full_name", "too_long", _(
                "Họ và tên dài quá %(limit)s ký tự.", limit=MAX_NAME))
        if len(unit) > MAX_NAME:
            self.report(number, "unit", "too_long", _(
                "Tên trường/đơn vị dài quá %(limit)s ký tự.", limit=MAX_NAME))

    def _check_code(self, number: int, code: str) -> None:
        if not code:
            self.report(number, "personal_code", "empty_value", _("Chưa ghi mã cá nhân."))
        elif not _CODE.fullmatch(code):
            self.report(number, "personal_code", "bad_code_format", _(
                "Mã cá nhân «%(code)s» chỉ được gồm chữ không dấu, chữ số, dấu - và _, dài 3–40 ký tự.",
                code=code))
        elif code.casefold() in self.existing:
            self.report(number, "personal_code", "code_exists", _(
                "Mã cá nhân «%(code)s» đã có trong hệ thống.", code=code))

    def _check_bridge_point(self, number: int, written: str, district: str) -> str | None:
        if not written:
            self.report(number, "bridge_point", "empty_value", _("Chưa ghi mã điểm cầu."))
            return None
        code = self.bridge_points.get(written.casefold())
        if code is None:
            self.report(number, "bridge_point", "unknown_bridge_point", _(
                "Không có điểm cầu mã «%(code)s».", code=written))
            return None
        expected = self.districts[code]
        if district and not _same_district(district, expected):
            self.report(number, "district", "district_mismatch", _(
                "Điểm cầu %(code)s thuộc %(expected)s, không phải «%(district)s».",
                code=code, expected=expected, district=district))
        return code

    def check_duplicates(self, codes: dict[str, list[int]], spelled: dict[str, str]) -> None:
        """A code twice in the file: both rows are reported, either could be the typo."""
        for key, numbers in codes.items():
            for number in numbers if len(numbers) > 1 else ():
                others = ", ".join(str(n) for n in numbers if n != number)
                self.report(number, "personal_code", "duplicate_in_file", _(
                    "Mã cá nhân «%(code)s» trùng với dòng %(rows)s.", code=spelled[key], rows=others))


def parse_roster(
    header: list[str],
    rows: list[tuple[int, list[str]]],
    bridge_points: Mapping[str, str],
    existing_codes: set[str],
) -> tuple[list[RosterRow], list[ImportIssue]]:
    """Learners from rows of `read_table`, and every problem by row and column.

    Personal codes are logins, so they are compared case-insensitively both within the
    file and against `existing_codes`. Rows come back only if they are clean; the caller
    should import nothing while the issue list is not empty.
    """
    found, issues = locate_columns(header, ROSTER_COLUMNS)
    if issues:
        return [], issues
    checker = _RosterChecker(header, found, bridge_points, existing_codes)
    codes: dict[str, list[int]] = defaultdict(list)
    spelled: dict[str, str] = {}
    good: list[RosterRow] = []
    for number, cells in rows:
        if not any(cell(cells, index) for index in found.values()):
            continue  # a template row with only its STT filled
        code = normalize_text(cell(cells, found["personal_code"]))
        if code:
            codes[code.casefold()].append(number)
            spelled.setdefault(code.casefold(), code)
        row = checker.check(number, cells)
        if row is not None:
            good.append(row)
    checker.check_duplicates(codes, spelled)
    duplicated = {n for numbers in codes.values() if len(numbers) > 1 for n in numbers}
    good = [row for row in good if row.row not in duplicated]
    checker.issues.sort(key=lambda issue: issue.row or 0)
    return good, checker.issues
