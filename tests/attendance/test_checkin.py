"""Check-in at a bridge point: QR token, rotating code, the operator's roster, the kiosk.

A learner checks in only at their own bridge point, only while the lecture is live, and
once; a bad or expired token or code is refused with a message and nothing is stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from factories import PASSWORD, make_staff
from server.accounts.models import User
from server.attendance import checkin
from server.attendance.models import CheckIn, Snapshot
from server.attendance.queries import median_headcounts, site_attendance
from server.core.timeutil import now_utc
from server.extensions import db
from server.webcast.models import Lecture, LectureStatus


@dataclass
class Ids:
    lecture: int
    bps: list[int]
    learners: dict[str, int]  # personal code → user id


def make_lecture(status: LectureStatus = LectureStatus.live, title: str = "Nghị quyết Trung ương") -> int:
    rapporteur = db.session.scalar(sa.select(User).where(User.username == "bcv")) or make_staff("rapporteur", "bcv")
    lecture = Lecture(title=title, rapporteur_id=rapporteur.id, status=status,
                      started_at=None if status == LectureStatus.planned else now_utc())
    db.session.add(lecture)
    db.session.commit()
    return lecture.id


@pytest.fixture
def ids(world) -> Ids:
    out = Ids(make_lecture(), [bp.id for bp in world.bridge_points],
              {u.personal_code: u.id for u in world.learners})
    db.session.rollback()
    return out


def login_learner(client, code: str, next_url: str | None = None):
    url = "/login" + (f"?next={next_url}" if next_url else "")
    r = client.post(url, data={"learner-personal_code": code, "learner-submit": "1"})
    assert r.status_code == 302, r.text
    return r


def login_staff(client, username: str):
    r = client.post("/login", data={"staff-username": username, "staff-password": PASSWORD, "staff-submit": "1"})
    assert r.status_code == 302, r.text
    return client


def check_ins(lecture_id: int) -> list[tuple[int, int, str]]:
    db.session.rollback()
    rows = db.session.execute(sa.select(CheckIn.user_id, CheckIn.bridge_point_id, CheckIn.method)
                              .where(CheckIn.lecture_id == lecture_id)).all()
    db.session.rollback()
    return sorted(tuple(r) for r in rows)


# the QR link ---------------------------------------------------------------------------

def test_qr_checkin_logs_in_confirms_and_counts_once(client, ids):
    token = checkin.checkin_token(ids.lecture, ids.bps[0], now_utc())
    r = client.get(f"/checkin/{token}")
    assert r.status_code == 302 and f"next=/checkin/{token}" in r.location

    r = login_learner(client, "HV0001", f"/checkin/{token}")
    assert r.location.endswith(f"/checkin/{token}")
    page = client.get(f"/checkin/{token}")
    assert page.status_code == 200 and "Xác nhận có mặt" in page.text and "Nghị quyết Trung ương" in page.text

    r = client.post(f"/checkin/{token}")
    assert r.status_code == 302 and "/checkin/done" in r.location
    assert "Điểm danh thành công" in client.get(r.location).text
    assert check_ins(ids.lecture) == [(ids.learners["HV0001"], ids.bps[0], "qr")]

    again = client.post(f"/checkin/{token}", follow_redirects=True)
    assert "Bạn đã điểm danh" in again.text
    assert len(check_ins(ids.lecture)) == 1


def test_qr_of_another_bridge_point_is_refused(client, ids):
    token = checkin.checkin_token(ids.lecture, ids.bps[1], now_utc())  # HV0001 sits at bps[0]
    login_learner(client, "HV0001")
    page = client.get(f"/checkin/{token}")
    assert page.status_code == 403 and "điểm cầu của mình" in page.text
    assert client.post(f"/checkin/{token}").status_code == 403
    assert check_ins(ids.lecture) == []


@pytest.mark.parametrize("age_minutes, tamper, message", [
    (11, False, "Mã QR đã hết hạn"),
    (0, True, "Mã QR không hợp lệ"),
])
def test_expired_or_forged_token_stores_nothing(client, ids, age_minutes, tamper, message):
    token = checkin.checkin_token(ids.lecture, ids.bps[0], now_utc() - timedelta(minutes=age_minutes))
    if tamper:
        token = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    login_learner(client, "HV0001")
    assert message in client.get(f"/checkin/{token}").text
    r = client.post(f"/checkin/{token}")
    assert r.status_code == 400 and message in r.text
    assert check_ins(ids.lecture) == []


def test_only_while_the_lecture_is_live(client, ids):
    ended = make_lecture(LectureStatus.ended, "Buổi đã kết thúc")
    token = checkin.checkin_token(ended, ids.bps[0], now_utc())
    login_learner(client, "HV0001")
    r = client.post(f"/checkin/{token}")
    assert r.status_code == 409 and "không đang phát trực tiếp" in r.text
    assert check_ins(ended) == []


def test_staff_cannot_check_in_as_a_learner(client, ids):
    login_staff(client, "giamthi")
    token = checkin.checkin_token(ids.lecture, ids.bps[0], now_utc())
    r = client.post(f"/checkin/{token}")
    assert r.status_code == 403 and "Chỉ học viên" in r.text


# the six-digit code -----------------------------------------------------------------------

def test_code_checkin_and_its_refusals(app, client, ids):
    now = now_utc()
    login_learner(client, "HV0001")
    assert client.get("/checkin").status_code == 200

    r = client.post("/checkin", data={"code": "12"})
    assert r.status_code == 400 and "6 chữ số" in r.text
    other_site, _ = checkin.checkin_code(ids.lecture, ids.bps[1], now)
    r = client.post("/checkin", data={"code": other_site})
    assert r.status_code == 403 and "điểm cầu của mình" in r.text
    stale = checkin._code_for(ids.lecture, ids.bps[0], checkin._window(now) - 2)
    own_now, _ = checkin.checkin_code(ids.lecture, ids.bps[0], now)
    if stale != own_now:
        r = client.post("/checkin", data={"code": stale})
        assert r.status_code == 400 and "không đúng hoặc đã hết hạn" in r.text
    assert check_ins(ids.lecture) == []

    previous = checkin._code_for(ids.lecture, ids.bps[0], checkin._window(now) - 1)
    r = client.post("/checkin", data={"code": previous[:3] + " " + previous[3:]})
    assert r.status_code == 302 and "/checkin/done" in r.location
    assert check_ins(ids.lecture) == [(ids.learners["HV0001"], ids.bps[0], "code")]
    again = client.post("/checkin", data={"code": own_now}, follow_redirects=True)
    assert "Bạn đã điểm danh" in again.text and len(check_ins(ids.lecture)) == 1


def test_code_without_a_live_lecture(client, world):
    make_lecture(LectureStatus.planned)
    login_learner(client, "HV0001")
    r = client.post("/checkin", data={"code": "123456"})
    assert r.status_code == 409 and "không có buổi giảng nào đang phát" in r.text


# the operator's roster ----------------------------------------------------------------------

def test_operator_ticks_and_unticks_own_bridge_point_only(client, ids):
    login_staff(client, "kt-1")  # operator of bps[0]
    page = client.get(f"/attendance/roster?lecture={ids.lecture}")
    assert page.status_code == 200 and "HV0001" in page.text and "HV0004" not in page.text

    r = client.post("/attendance/roster/tick", data={"lecture": ids.lecture, "user": ids.learners["HV0002"]})
    assert r.status_code == 302
    assert check_ins(ids.lecture) == [(ids.learners["HV0002"], ids.bps[0], "operator")]
    r = client.post("/attendance/roster/tick", data={"lecture": ids.lecture, "user": ids.learners["HV0002"]},
                    follow_redirects=True)
    assert "đã điểm danh" in r.text and len(check_ins(ids.lecture)) == 1

    r = client.post("/attendance/roster/tick", data={"lecture": ids.lecture, "user": ids.learners["HV0004"]})
    assert r.status_code == 403
    assert client.get(f"/attendance/roster?lecture={ids.lecture}&bp={ids.bps[1]}").status_code == 403

    r = client.post("/attendance/roster/tick",
                    data={"lecture": ids.lecture, "user": ids.learners["HV0002"], "action": "untick"})
    assert r.status_code == 302 and check_ins(ids.lecture) == []


def test_roster_scope_for_others(app, client, ids):
    login_learner(client, "HV0001")
    assert client.get(f"/attendance/roster?lecture={ids.lecture}").status_code == 403
    district2 = app.test_client()
    login_staff(district2, "btc-huyen2")
    assert district2.get(f"/attendance/roster?lecture={ids.lecture}&bp={ids.bps[0]}").status_code == 403
    page = district2.get(f"/attendance/roster?lecture={ids.lecture}&bp={ids.bps[2]}")
    assert page.status_code == 200 and "HV0007" in page.text
    # reviewers read the roster but do not tick it
    assert district2.post("/attendance/roster/tick",
                          data={"lecture": ids.lecture, "user": ids.learners["HV0007"]}).status_code == 403


# the kiosk ------------------------------------------------------------------------------------

def test_kiosk_shows_code_and_qr_while_live(client, ids):
    assert client.get("/kiosk/checkin-qr.svg").status_code == 403
    assert client.get("/kiosk/checkin.json").status_code == 401
    with client.session_transaction() as s:
        s["kiosk_bp"] = ids.bps[0]
    data = client.get("/kiosk/checkin.json").get_json()
    assert data["live"] and data["lecture_id"] == ids.lecture
    assert data["code"] == checkin.checkin_code(ids.lecture, ids.bps[0], now_utc())[0]
    svg = client.get(data["qr_url"])
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    assert "no-store" in svg.headers["Cache-Control"]
    assert 'id="kiosk-checkin"' in client.get("/kiosk").text

    db.session.get(Lecture, ids.lecture).status = LectureStatus.ended
    db.session.commit()
    assert client.get("/kiosk/checkin.json").get_json()["live"] is False
    assert client.get("/kiosk/checkin-qr.svg").status_code == 404


# the camera's median ---------------------------------------------------------------------------

def test_headcount_is_the_median_of_analysed_room_snapshots(ids):
    def snap(bp, headcount, status="analysed", kind="room", lecture=ids.lecture, n=[0]):
        n[0] += 1
        db.session.add(Snapshot(token=f"t{n[0]:04d}", bridge_point_id=bp, lecture_id=lecture, kind=kind,
                                size_bytes=1000, status=status, headcount=headcount))

    for h in (10, 2, 12, 11):
        snap(ids.bps[0], h)
    snap(ids.bps[0], 40, kind="requested")          # a proctor's request counts as a room snapshot
    snap(ids.bps[0], None, status="pending")        # not analysed yet
    snap(ids.bps[0], 0, status="failed")            # the analysis failed: no count
    snap(ids.bps[0], 1, kind="selfie")              # a learner's webcam is not the room
    snap(ids.bps[0], 99, lecture=make_lecture(LectureStatus.ended, "Buổi khác"))
    snap(ids.bps[1], 5)
    db.session.commit()
    medians = median_headcounts(ids.lecture, ids.bps)
    assert medians[ids.bps[0]] == (11.0, 5)
    assert medians[ids.bps[1]] == (5.0, 1)
    assert ids.bps[2] not in medians
    figures = site_attendance(ids.lecture, ids.bps)
    assert figures[ids.bps[0]].registered == 3 and figures[ids.bps[2]].headcount_median is None


def test_forms_carry_csrf_tokens(csrf_app):
    import re

    from factories import make_world

    world = make_world()
    lecture = make_lecture()
    bp_id = world.bridge_points[0].id
    db.session.rollback()
    client = csrf_app.test_client()
    page = client.get("/login").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    client.post("/login", data={"learner-csrf_token": token, "learner-personal_code": "HV0001", "learner-submit": "1"})
    qr = checkin.checkin_token(lecture, bp_id, now_utc())
    page = client.get(f"/checkin/{qr}").text
    assert 'name="csrf_token"' in page
    assert client.post(f"/checkin/{qr}").status_code == 400
    assert check_ins(lecture) == []
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/checkin/{qr}", data={"csrf_token": form_token}).status_code == 302
    assert len(check_ins(lecture)) == 1
