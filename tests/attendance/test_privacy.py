"""Camera images are personal data: who may fetch one, how it is served, how long it is kept."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from conftest import SHARED, need
from factories import make_staff
from server.attendance import snapshots
from server.attendance.models import CameraHistory, Snapshot
from server.core.timeutil import now_utc
from server.exam.models import Attempt
from server.extensions import db
from server.review.models import Flag, FlagDecision

PHOTO = SHARED / "faces" / "fr_obama.jpg"
STAFF_PASSWORD = "mat-khau-thu"


@pytest.fixture
def hub(app, tmp_path):
    need(PHOTO.is_file(), f"{PHOTO} is missing")
    app.instance_path = str(tmp_path / "instance")
    return app


def login(app, username: str | None = None, learner: str | None = None, kiosk: str | None = None):
    client = app.test_client()
    if username:
        r = client.post("/login", data={"staff-username": username, "staff-password": STAFF_PASSWORD, "staff-submit": "1"})
    elif learner:
        r = client.post("/login", data={"learner-personal_code": learner, "learner-submit": "1"})
    elif kiosk:
        r = client.post("/kiosk/login", data={"code": kiosk, "submit": "1"})
    else:
        return client
    assert r.status_code == 302, r.text
    return client


def upload(client, **fields) -> Snapshot:
    form = {"kind": "room", **fields, "image": (io.BytesIO(PHOTO.read_bytes()), "s.jpg", "image/jpeg")}
    r = client.post("/api/snapshots", data=form, content_type="multipart/form-data")
    assert r.status_code == 200, r.text
    return db.session.get(Snapshot, r.json["id"])


@pytest.fixture
def room_and_webcam(hub, world):
    """A room snapshot of D1-01 (district 1) and a webcam snapshot of a learner there."""
    make_staff("proctor", "giamthi-huyen1", district=world.districts[0])
    db.session.commit()
    room = upload(login(hub, kiosk="KIOSK-101"))
    attempt = db.session.scalar(sa.select(Attempt).where(Attempt.user_id == world.learners[0].id))
    webcam = upload(login(hub, learner="HV0001"), kind="selfie", attempt_id=str(attempt.id))
    assert attempt.bridge_point_id == world.bridge_points[0].id
    return room.token, webcam.token


#: who → the answer for both snapshots (one world for the whole matrix: set-up is the slow part).
MATRIX = [
    ({"username": "giamthi"}, 200),            # province proctor
    ({"username": "btc"}, 200),                # province organizer
    ({"username": "giamthi-huyen1"}, 200),     # the district's own proctor
    ({"username": "btc-huyen2"}, 404),         # another district's organizer: as if it did not exist
    ({"username": "kt-1"}, 403),               # the bridge point's own operator: not a reviewer
    ({"learner": "HV0001"}, 403),              # even the learner in the picture
    ({"kiosk": "KIOSK-101"}, 403),             # the room's kiosk
    ({}, 302),                                 # anonymous: to the login page
]


def test_who_may_fetch_a_snapshot(hub, room_and_webcam):
    photo = PHOTO.read_bytes()
    for who, status in MATRIX:
        client = login(hub, **who)
        for token in room_and_webcam:
            r = client.get(f"/snapshots/{token}.jpg")
            assert r.status_code == status, (who, token, r.status_code)
            if status == 200:
                assert r.mimetype == "image/jpeg" and r.data == photo
                assert r.headers["Cache-Control"] == "private, no-store"
                assert r.headers["X-Content-Type-Options"] == "nosniff"
            if status == 302:
                assert "/login" in r.headers["Location"]
        # a token that does not exist answers exactly as one out of scope (or the same refusal)
        unknown = client.get(f"/snapshots/{'0' * 40}.jpg").status_code
        assert unknown == (404 if status in (200, 404) else status), who


def test_purge_removes_old_files_rows_and_histories_and_keeps_decisions(hub, world):
    site = world.bridge_points[0]
    reviewer = world.staff["proctor"]
    old_time = now_utc() - timedelta(days=91)
    with hub.test_request_context():
        old = snapshots.store(PHOTO.read_bytes(), "room", bridge_point_id=site.id, now=old_time)
        recent = snapshots.store(PHOTO.read_bytes(), "room", bridge_point_id=site.id)
    flag = Flag(kind="dark", severity=30, bridge_point_id=site.id, snapshot_id=old.id, status="confirmed")
    db.session.add(flag)
    db.session.flush()
    db.session.add(FlagDecision(flag_id=flag.id, decision="confirmed", note="tối", by_user_id=reviewer.id))
    db.session.add_all([CameraHistory(camera="bp:1", data=b"x", updated_at=old_time),
                        CameraHistory(camera="bp:2", data=b"y", updated_at=now_utc())])
    db.session.commit()
    old_path, recent_path = snapshots.file_path(old), snapshots.file_path(recent)
    stray = old_path.parent / ("f" * 40 + ".jpg")  # a file a crash left without its row
    stray.write_bytes(b"x")
    assert old_path.is_file() and recent_path.is_file()

    result = hub.test_cli_runner().invoke(args=["snapshots", "purge"])
    assert result.exit_code == 0, result.output
    assert "1 ảnh" in result.output
    db.session.expire_all()
    assert db.session.scalars(sa.select(Snapshot.id)).all() == [recent.id]
    assert not old_path.exists() and not stray.exists() and not old_path.parent.exists() and recent_path.is_file()
    assert db.session.get(Flag, flag.id).snapshot_id is None and db.session.get(Flag, flag.id).status == "confirmed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FlagDecision)) == 1
    assert db.session.scalars(sa.select(CameraHistory.camera)).all() == ["bp:2"]

    result = hub.test_cli_runner().invoke(args=["snapshots", "purge", "--days", "0"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Snapshot)) == 0 and not recent_path.exists()
