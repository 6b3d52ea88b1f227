"""Proctor review: decisions on flags (who, when, why; revisable), the scope of every page,
and the attendance report and its workbook carrying the decisions.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from factories import PASSWORD, make_staff
from server.accounts.models import User
from server.attendance.models import CheckIn, Snapshot
from server.core.timeutil import now_utc
from server.exam.models import Attempt
from server.extensions import db
from server.review.models import Flag, FlagDecision
from server.webcast.models import Lecture, LectureStatus


@dataclass
class Scene:
    lecture: int
    bps: list[int]
    learners: dict[str, int]
    check_ins: dict[str, int]
    flags: dict[str, int]


def login_staff(client, username: str):
    r = client.post("/login", data={"staff-username": username, "staff-password": PASSWORD, "staff-submit": "1"})
    assert r.status_code == 302, r.text
    return client


@pytest.fixture
def scene(world) -> Scene:
    """A live lecture; bps[0] (district 1) with three check-ins and room snapshots, a
    headcount flag there, a webcam flag on a district-2 learner's attempt."""
    now = now_utc()
    rapporteur = make_staff("rapporteur", "bcv")
    make_staff("proctor", "gt-huyen1", district=world.districts[0])
    lecture = Lecture(title="Học tập Nghị quyết", rapporteur_id=rapporteur.id, status=LectureStatus.live,
                      started_at=now - timedelta(hours=1))
    db.session.add(lecture)
    db.session.flush()
    bps = [bp.id for bp in world.bridge_points]
    learners = {u.personal_code: u.id for u in world.learners}
    check_ins = {}
    for code in ("HV0001", "HV0002", "HV0003", "HV0007"):
        u = db.session.get(User, learners[code])
        c = CheckIn(lecture_id=lecture.id, user_id=u.id, bridge_point_id=u.bridge_point_id, method="qr", by_user_id=u.id)
        db.session.add(c)
        db.session.flush()
        check_ins[code] = c.id
    snaps = []
    for i, h in enumerate((3, 1, 1)):
        s = Snapshot(token=f"room{i}", bridge_point_id=bps[0], lecture_id=lecture.id, kind="room", size_bytes=1,
                     status="analysed", headcount=h, taken_at=now - timedelta(minutes=30 - i))
        db.session.add(s)
        snaps.append(s)
    db.session.flush()
    attempt = db.session.scalar(sa.select(Attempt).where(Attempt.user_id == learners["HV0010"]))
    webcam = Snapshot(token="cam1", attempt_id=attempt.id, kind="random", size_bytes=1, status="analysed", headcount=0)
    db.session.add(webcam)
    db.session.flush()
    flags = {
        "low": Flag(kind="headcount_low", severity=70, lecture_id=lecture.id, bridge_point_id=bps[0],
                    snapshot_id=snaps[2].id, created_at=now - timedelta(minutes=20)),
        "dark": Flag(kind="dark", severity=30, lecture_id=lecture.id, bridge_point_id=bps[0],
                     snapshot_id=snaps[1].id, created_at=now - timedelta(minutes=40)),
        "empty": Flag(kind="empty_room", severity=70, lecture_id=lecture.id, bridge_point_id=bps[0],
                      created_at=now - timedelta(minutes=10)),
        "noface": Flag(kind="no_face", severity=55, exam_id=attempt.exam_id, attempt_id=attempt.id,
                       snapshot_id=webcam.id, created_at=now - timedelta(minutes=5)),
    }
    db.session.add_all(flags.values())
    db.session.commit()
    out = Scene(lecture.id, bps, learners, check_ins, {k: f.id for k, f in flags.items()})
    db.session.rollback()
    return out


def flag_state(flag_id: int) -> tuple[str, list[tuple[str, str, str]]]:
    db.session.rollback()
    flag = db.session.get(Flag, flag_id)
    rows = db.session.execute(
        sa.select(FlagDecision.decision, FlagDecision.note, User.username)
        .join(User, User.id == FlagDecision.by_user_id)
        .where(FlagDecision.flag_id == flag_id).order_by(FlagDecision.id)
    ).all()
    status = flag.status
    db.session.rollback()
    return status, [tuple(r) for r in rows]


# decisions ------------------------------------------------------------------------------

def test_decisions_need_a_note_are_recorded_and_can_be_revisited(client, scene):
    login_staff(client, "giamthi")
    low = scene.flags["low"]
    r = client.post(f"/review/flags/{low}/decide", data={"decision": "confirmed", "note": "  "}, follow_redirects=True)
    assert "Hãy ghi lý do" in r.text
    assert flag_state(low) == ("open", [])

    r = client.post(f"/review/flags/{low}/decide",
                    data={"decision": "confirmed", "note": "Chỉ 1 người trong ảnh", "next": "/review/flags?status=open"})
    assert r.status_code == 302 and r.location.endswith("/review/flags?status=open")
    r = client.post(f"/review/flags/{low}/decide",
                    data={"decision": "dismissed", "note": "Camera quay lệch, đã kiểm tra lại", "next": "//evil.example/"})
    assert r.location.endswith("/review/flags")  # never sent to another site
    assert flag_state(low) == ("dismissed", [("confirmed", "Chỉ 1 người trong ảnh", "giamthi"),
                                             ("dismissed", "Camera quay lệch, đã kiểm tra lại", "giamthi")])
    page = client.get(f"/review/flags/{low}")
    assert page.status_code == 200
    assert "Chỉ 1 người trong ảnh" in page.text and "Camera quay lệch" in page.text and "/snapshots/room2.jpg" in page.text

    r = client.post(f"/review/flags/{low}/decide", data={"decision": "maybe", "note": "x"}, follow_redirects=True)
    assert "xác nhận hoặc bỏ qua" in r.text and len(flag_state(low)[1]) == 2


def test_queue_is_ordered_by_severity_then_time_and_filters(client, scene):
    login_staff(client, "giamthi")
    text = client.get("/review/flags").text
    order = [text.index(f'data-flag="{scene.flags[k]}"') for k in ("low", "empty", "noface", "dark")]
    assert order == sorted(order)

    assert f'data-flag="{scene.flags["dark"]}"' not in client.get("/review/flags?kind=headcount_low").text
    d1 = db.session.scalar(sa.select(User.district_id).where(User.id == scene.learners["HV0001"]))
    db.session.rollback()
    text = client.get(f"/review/flags?district={d1}").text
    assert f'data-flag="{scene.flags["low"]}"' in text and f'data-flag="{scene.flags["noface"]}"' not in text
    client.post(f"/review/flags/{scene.flags['dark']}/decide", data={"decision": "dismissed", "note": "Đèn đã bật"})
    assert f'data-flag="{scene.flags["dark"]}"' not in client.get("/review/flags").text
    assert f'data-flag="{scene.flags["dark"]}"' in client.get("/review/flags?status=dismissed").text


# scope -----------------------------------------------------------------------------------

def test_district_reviewers_see_only_their_district(app, client, scene):
    login_staff(client, "btc-huyen2")  # district 2: bps[2], bps[3]; HV0010 is there
    queue = client.get("/review/flags").text
    assert f'data-flag="{scene.flags["noface"]}"' in queue and f'data-flag="{scene.flags["low"]}"' not in queue
    assert client.get(f"/review/flags/{scene.flags['low']}").status_code == 403
    r = client.post(f"/review/flags/{scene.flags['low']}/decide", data={"decision": "confirmed", "note": "x"})
    assert r.status_code == 403 and flag_state(scene.flags["low"]) == ("open", [])
    assert client.get(f"/review/bridge-points/{scene.bps[0]}?lecture={scene.lecture}").status_code == 403
    assert client.get(f"/review/learners/{scene.learners['HV0001']}").status_code == 403
    assert client.post(f"/review/check-ins/{scene.check_ins['HV0001']}/invalid", data={"note": "x"}).status_code == 403
    assert client.get(f"/review/bridge-points/{scene.bps[2]}?lecture={scene.lecture}").status_code == 200
    assert client.get(f"/review/learners/{scene.learners['HV0010']}").status_code == 200
    tiles = client.get(f"/review/mosaic.json?lecture={scene.lecture}").get_json()["tiles"]
    assert {t["bridge_point_id"] for t in tiles} == set(scene.bps[2:])
    page = client.get(f"/review/mosaic?lecture={scene.lecture}").text
    assert f'data-bp="{scene.bps[2]}"' in page and f'data-bp="{scene.bps[0]}"' not in page

    district1 = login_staff(app.test_client(), "gt-huyen1")
    assert district1.get(f"/review/flags/{scene.flags['low']}").status_code == 200
    assert district1.get(f"/review/flags/{scene.flags['noface']}").status_code == 403

    for username in ("kt-1",):  # an operator does not review
        other = login_staff(app.test_client(), username)
        for url in ("/review/flags", "/review/mosaic", f"/review/bridge-points/{scene.bps[0]}",
                    f"/review/learners/{scene.learners['HV0001']}", f"/reports/attendance?lecture={scene.lecture}"):
            assert other.get(url).status_code == 403, url
    learner = app.test_client()
    learner.post("/login", data={"learner-personal_code": "HV0001", "learner-submit": "1"})
    assert learner.get("/review/flags").status_code == 403
    assert app.test_client().get("/review/flags").status_code == 302  # to the login page


def test_mosaic_timeline_and_learner_log(client, scene):
    login_staff(client, "giamthi")
    tiles = {t["bridge_point_id"]: t for t in client.get(f"/review/mosaic.json?lecture={scene.lecture}").get_json()["tiles"]}
    first = tiles[scene.bps[0]]
    assert first["snapshot"]["url"].endswith("/snapshots/room2.jpg") and first["snapshot"]["headcount"] == 1
    assert (first["registered"], first["attended"], first["median"], first["open_flags"]) == (3, 3, 1.0, 3)
    assert tiles[scene.bps[1]]["snapshot"] is None

    page = client.get(f"/review/bridge-points/{scene.bps[0]}?lecture={scene.lecture}").text
    assert [page.index(f"/snapshots/room{i}.jpg") for i in range(3)] == sorted(page.index(f"/snapshots/room{i}.jpg") for i in range(3))
    assert "Số người ít hơn số điểm danh" in page and "Ảnh quá tối" in page

    log = client.get(f"/review/learners/{scene.learners['HV0010']}").text
    assert "/snapshots/cam1.jpg" in log and "Không thấy khuôn mặt" in log
    log = client.get(f"/review/learners/{scene.learners['HV0001']}").text
    assert "Học tập Nghị quyết" in log and "Đánh dấu không hợp lệ" in log


# the report carries the decisions ------------------------------------------------------------

def report_row(client, lecture: int, bp_id: int) -> str:
    page = client.get(f"/reports/attendance?lecture={lecture}").text
    start = page.index(f'data-bp="{bp_id}"')
    return page[start:page.index("</tr>", start)]


def cells(row_html: str) -> list[str]:
    import re

    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r'<td class="num[^"]*">(.*?)</td>', row_html, re.S)]


def test_invalid_check_in_and_confirmed_anomalies_change_the_report(client, scene):
    login_staff(client, "giamthi")
    assert cells(report_row(client, scene.lecture, scene.bps[0]))[:6] == ["3", "3", "", "1,0", "100,00", ""]

    r = client.post(f"/review/check-ins/{scene.check_ins['HV0002']}/invalid", data={"note": ""}, follow_redirects=True)
    assert "Hãy ghi lý do" in r.text
    r = client.post(f"/review/check-ins/{scene.check_ins['HV0002']}/invalid",
                    data={"note": "Camera không thấy ai ở chỗ ngồi 2", "next": f"/attendance/roster?lecture={scene.lecture}&bp={scene.bps[0]}"})
    assert r.status_code == 302 and "/attendance/roster" in r.location
    client.post(f"/review/flags/{scene.flags['low']}/decide", data={"decision": "confirmed", "note": "Đúng: thiếu người"})
    client.post(f"/review/flags/{scene.flags['dark']}/decide", data={"decision": "confirmed", "note": "Tối thật"})
    row = report_row(client, scene.lecture, scene.bps[0])
    assert cells(row)[:6] == ["3", "2", "1", "1,0", "66,67", "1"]
    assert "Số người ít hơn số điểm danh (1)" in row and "Ảnh quá tối" not in row

    roster = client.get(f"/attendance/roster?lecture={scene.lecture}&bp={scene.bps[0]}").text
    assert "Không hợp lệ" in roster

    # revisited: the invalid check-in is dismissed, so it counts again
    invalid_flag = db.session.scalar(sa.select(Flag.id).where(Flag.kind == "checkin_invalid"))
    db.session.rollback()
    assert flag_state(invalid_flag)[1] == [("confirmed", "Camera không thấy ai ở chỗ ngồi 2", "giamthi")]
    client.post(f"/review/flags/{invalid_flag}/decide", data={"decision": "dismissed", "note": "Học viên ngồi ngoài khung hình"})
    assert cells(report_row(client, scene.lecture, scene.bps[0]))[:3] == ["3", "3", ""]


def test_workbook_has_summary_and_district_sheets_with_the_numbers(app, client, scene):
    from openpyxl import load_workbook

    login_staff(client, "giamthi")
    client.post(f"/review/check-ins/{scene.check_ins['HV0003']}/invalid", data={"note": "Quét hộ"})
    client.post(f"/review/flags/{scene.flags['empty']}/decide", data={"decision": "confirmed", "note": "Phòng trống 10 phút"})
    r = client.get(f"/reports/attendance.xlsx?lecture={scene.lecture}")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["Tổng hợp", "Huyện 1", "Huyện 2"]
    summary = wb["Tổng hợp"]
    rows = [[c for c in row] for row in summary.iter_rows(values_only=True)]
    header = next(r for r in rows if r and r[0] == "Huyện / thành phố")
    for label in ("Đăng ký", "Điểm danh", "Số người theo camera (trung vị)", "Tỉ lệ (%)", "Cảnh báo đã xác nhận"):
        assert label in header
    col = {name: i for i, name in enumerate(header)}
    by_name = {r[0]: r for r in rows if r and r[0] in ("Huyện 1", "Huyện 2", "Toàn tỉnh")}
    h1 = by_name["Huyện 1"]
    assert (h1[col["Đăng ký"]], h1[col["Điểm danh"]], h1[col["Số người theo camera (trung vị)"]],
            h1[col["Tỉ lệ (%)"]], h1[col["Cảnh báo đã xác nhận"]]) == (6, 2, 1.0, 33.33, 1)
    assert by_name["Huyện 2"][col["Điểm danh"]] == 1 and by_name["Toàn tỉnh"][col["Đăng ký"]] == 12
    sheet_rows = [r for r in wb["Huyện 1"].iter_rows(values_only=True) if r and r[0] and str(r[0]).startswith("D1-01")]
    assert sheet_rows[0][col["Điểm danh"]] == 2 and "Phòng trống (1)" in sheet_rows[0][-1]

    district2 = login_staff(app.test_client(), "btc-huyen2")
    wb2 = load_workbook(io.BytesIO(district2.get(f"/reports/attendance.xlsx?lecture={scene.lecture}").data))
    assert wb2.sheetnames == ["Tổng hợp", "Huyện 2"]
