"""Learner roster checks: every bad row named by row and column, nothing half-valid."""
from __future__ import annotations

import io
import unicodedata

import openpyxl
import pytest

from server.accounts.roster import RosterRow, parse_roster
from server.questions.formats import TableError, read_table

BRIDGE_POINTS = {
    "LC-TU-01": "Huyện Tam Đường",
    "LC-TP-01": "Thành phố Lai Châu",
    "TH-QH-01": "Huyện Quan Hóa",
}
EXISTING = {"GV-0001"}
HEADER = ["STT", "Họ và tên", "Mã cá nhân", "Trường/Đơn vị", "Huyện", "Điểm cầu"]
GOOD = [
    (2, ["1", "Nguyễn Văn An", "GV-1001", "Trường THCS Bình Lư", "Tam Đường", "LC-TU-01"]),
    (3, ["2", "Lò Thị Bình", "GV_1002", "Trường TH Quyết Thắng", "TP. Lai Châu", "lc-tp-01"]),
]


def make_xlsx(rows: list[list[str]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def codes(issues) -> list[tuple]:
    return [(i.row, i.column, i.code) for i in issues]


def test_good_roster_from_xlsx():
    data = make_xlsx([HEADER, *(cells for _, cells in GOOD), [], ["3"]])
    header, rows = read_table(data, "danh-sach.xlsx")

    learners, issues = parse_roster(header, rows, BRIDGE_POINTS, EXISTING)

    assert issues == []
    assert learners == [
        RosterRow(2, "Nguyễn Văn An", "GV-1001", "Trường THCS Bình Lư", "Tam Đường", "LC-TU-01"),
        RosterRow(3, "Lò Thị Bình", "GV_1002", "Trường TH Quyết Thắng", "TP. Lai Châu", "LC-TP-01"),
    ]


def test_aliases_nfd_and_district_from_bridge_point():
    header = ["full name", "mã", "School", "district", "Bridge point"]
    rows = [
        (2, [unicodedata.normalize("NFD", "Hà  Thị Cúc"), "abc", "", "", "TH-QH-01"]),
        (3, ["Vàng A Dình", "xyz", "", "quan hoa", "TH-QH-01"]),
    ]
    learners, issues = parse_roster(header, rows, BRIDGE_POINTS, set())

    assert issues == []
    assert [(r.full_name, r.unit, r.district) for r in learners] == [
        ("Hà Thị Cúc", "", "Huyện Quan Hóa"),
        ("Vàng A Dình", "", "quan hoa"),
    ]


@pytest.mark.parametrize("change, column, code", [
    ({1: ""}, "Họ và tên", "empty_value"),
    ({1: "A" * 201}, "Họ và tên", "too_long"),
    ({3: "T" * 201}, "Trường/Đơn vị", "too_long"),
    ({2: ""}, "Mã cá nhân", "empty_value"),
    ({2: "GV"}, "Mã cá nhân", "bad_code_format"),
    ({2: "G" * 41}, "Mã cá nhân", "bad_code_format"),
    ({2: "GV 1003"}, "Mã cá nhân", "bad_code_format"),
    ({2: "GV.1003"}, "Mã cá nhân", "bad_code_format"),
    ({2: "Đ-1003"}, "Mã cá nhân", "bad_code_format"),
    ({2: "gv-0001"}, "Mã cá nhân", "code_exists"),
    ({5: ""}, "Điểm cầu", "empty_value"),
    ({5: "LC-XX-99"}, "Điểm cầu", "unknown_bridge_point"),
    ({4: "Sìn Hồ"}, "Huyện", "district_mismatch"),
    ({4: "Thành phố Lai Châu"}, "Huyện", "district_mismatch"),
])
def test_each_bad_row_kind_names_row_and_column(change, column, code):
    bad = ["3", "Giàng Seo Chư", "GV-1003", "Trường PTDTBT Tả Lèng", "Huyện Tam Đường", "LC-TU-01"]
    for index, value in change.items():
        bad[index] = value
    rows = [*GOOD, (5, bad)]

    learners, issues = parse_roster(HEADER, rows, BRIDGE_POINTS, EXISTING)

    assert codes(issues) == [(5, column, code)]
    assert issues[0].reason
    assert [r.row for r in learners] == [2, 3]


def test_several_problems_on_one_row_are_all_reported():
    rows = [(4, ["1", "", "x", "", "Sìn Hồ", "NOPE"])]

    learners, issues = parse_roster(HEADER, rows, BRIDGE_POINTS, EXISTING)

    assert learners == []
    assert codes(issues) == [
        (4, "Họ và tên", "empty_value"),
        (4, "Mã cá nhân", "bad_code_format"),
        (4, "Điểm cầu", "unknown_bridge_point"),
    ]


def test_duplicate_codes_report_every_row_case_insensitively():
    rows = [
        *GOOD,
        (4, ["3", "Trần Văn Công", "gv-1001", "", "", "LC-TU-01"]),
        (9, ["4", "Phạm Thị Dung", "GV-1001", "", "", "LC-TU-01"]),
    ]
    learners, issues = parse_roster(HEADER, rows, BRIDGE_POINTS, EXISTING)

    assert codes(issues) == [(2, "Mã cá nhân", "duplicate_in_file"),
                             (4, "Mã cá nhân", "duplicate_in_file"),
                             (9, "Mã cá nhân", "duplicate_in_file")]
    assert "4, 9" in issues[0].reason
    assert [r.row for r in learners] == [3]


@pytest.mark.parametrize("header, missing", [
    (["Họ và tên", "Mã cá nhân", "Huyện"], ["Điểm cầu"]),
    (["Tên", "Mã số", "Điểm cầu"], ["Họ và tên", "Mã cá nhân"]),
])
def test_missing_required_column_is_a_bad_header(header, missing):
    learners, issues = parse_roster(header, GOOD, BRIDGE_POINTS, EXISTING)

    assert learners == []
    assert codes(issues) == [(1, column, "bad_header") for column in missing]


def test_csv_roster_with_semicolons():
    data = ("Họ tên;Mã cá nhân;Đơn vị;Huyện/Thành phố;Điểm cầu\n"
            "Nguyễn Văn An;GV-1001;Trường THCS Bình Lư;Tam Đường;LC-TU-01\n").encode("utf-8-sig")
    header, rows = read_table(data, "roster.csv")

    learners, issues = parse_roster(header, rows, BRIDGE_POINTS, EXISTING)

    assert issues == []
    assert [(r.row, r.personal_code, r.bridge_point_code) for r in learners] == [(2, "GV-1001", "LC-TU-01")]


@pytest.mark.parametrize("data, filename", [
    (b"\x00\x01 not a workbook", "roster.xlsx"),
    (b"\xc3\x28\xa0\xa1", "roster.csv"),
])
def test_broken_roster_file(data, filename):
    with pytest.raises(TableError) as caught:
        read_table(data, filename)
    assert caught.value.code == "not_a_spreadsheet"
