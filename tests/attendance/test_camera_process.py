"""Camera work in a process of its own, on the production stack (PostgreSQL, Redis).

The exam's hub process runs with ANALYSIS_WORKERS=0; a second hub process at a lower CPU
priority (PROCESS_NICE) is where a reverse proxy sends the cameras' uploads. The kiosk
signs in on the exam's process (the session cookie is the same for both: one SECRET_KEY),
uploads to the camera process, and the proctor, connected to the exam's process, hears
`snapshot.analysed` through Redis; the analyses run in worker processes at nice 19 (SCHED_IDLE). A snapshot that reaches the exam's process anyway
waits in the table and is analysed by the camera process.
"""
from __future__ import annotations

import os
import re
import time

import pytest
import requests
import sqlalchemy as sa

from conftest import SHARED, base_config, migrate, need, socket_token_for
from factories import make_world
from hub import staff_session
from server import create_app
from server.attendance.models import Snapshot
from server.extensions import db
from test_snapshot_browser import ProctorSocket

MODEL = SHARED / "models" / "yunet_n_640_640.onnx"
FACES = SHARED / "faces"


def kiosk_session(url: str, code: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', s.get(url + "/kiosk/login", timeout=10).text).group(1)
    r = s.post(url + "/kiosk/login", data={"csrf_token": token, "code": code, "submit": "1"}, allow_redirects=False,
               timeout=10)
    assert r.status_code in (302, 303), r.text[:300]
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', s.get(url + "/kiosk", timeout=10).text).group(1)
    return s, csrf


def upload(s: requests.Session, csrf: str, url: str, jpeg: bytes) -> int:
    r = s.post(url + "/api/snapshots", headers={"X-CSRFToken": csrf, "Accept": "application/json"},
               files={"image": ("room.jpg", jpeg, "image/jpeg")}, data={"kind": "room"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r.json()["id"]


def status_of(snapshot_id: int) -> str:
    db.session.expire_all()
    status = db.session.scalar(sa.select(Snapshot.status).where(Snapshot.id == snapshot_id))
    db.session.rollback()
    return status


def analysis_children(pid: int) -> list[tuple[int, int]]:
    """(pid, niceness) of the `proctor.worker` processes a hub process started."""
    import psutil

    return [(c.pid, os.getpriority(os.PRIO_PROCESS, c.pid)) for c in psutil.Process(pid).children()
            if "proctor.worker" in " ".join(c.cmdline())]


@pytest.mark.parametrize("mode", ["gevent", "eventlet"])
def test_a_camera_process_does_the_cameras_work_and_the_exam_process_none(mode, pg_url, redis_url, tmp_path,
                                                                         hub_factory):
    need(MODEL.is_file(), f"{MODEL} is missing")
    need((FACES / "dlib_2008_001322.jpg").is_file(), f"{FACES} is missing")
    migrate(pg_url, tmp_path)
    app = create_app(base_config(pg_url, tmp_path))
    with app.app_context():
        world = make_world()
        site = world.bridge_points[0]
        site_id, code = site.id, site.kiosk_code
        proctor_token = socket_token_for(app, world.staff["proctor"].id)
        db.session.rollback()

        exam_hub = hub_factory(pg_url, mode, REDIS_URL=redis_url, DIEMCAU_FACE_MODEL=str(MODEL),
                               DIEMCAU_ANALYSIS_WORKERS=0)
        proctor = ProctorSocket(exam_hub.url, proctor_token)
        kiosk, csrf = kiosk_session(exam_hub.url, code)
        three = (FACES / "dlib_2008_001322.jpg").read_bytes()  # three faces
        one = (FACES / "fr_obama.jpg").read_bytes()

        # sent to the exam's process (a proxy misrouted it): acknowledged, stored, not analysed there
        waiting = upload(kiosk, csrf, exam_hub.url, three)
        time.sleep(2.0)
        assert status_of(waiting) == "pending"
        assert "ANALYSIS_WORKERS=0" in exam_hub.log()

        camera_hub = hub_factory(pg_url, mode, REDIS_URL=redis_url, DIEMCAU_FACE_MODEL=str(MODEL),
                                 DIEMCAU_PROCESS_NICE=10)
        # the camera process finds it at its start, and the proctor on the other process hears it
        first = proctor.wait_for("snapshot.analysed", lambda d: d["id"] == waiting)
        assert first["bridge_point_id"] == site_id and first["headcount"] == 3

        # the proxy's route: the same kiosk session, the camera process
        sent = upload(kiosk, csrf, camera_hub.url, one)
        second = proctor.wait_for("snapshot.analysed", lambda d: d["id"] == sent)
        assert second["headcount"] == 1 and status_of(sent) == "analysed"

        # the camera process runs below the exam's in CPU priority, its analyses in processes
        # of their own at the lowest; the exam's process is untouched and analyses nothing
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        workers = analysis_children(camera_hub.proc.pid)
        assert len(workers) == 2 and {nice for _, nice in workers} == {19}
        assert {os.sched_getscheduler(pid) for pid, _ in workers} == {os.SCHED_IDLE}
        assert analysis_children(exam_hub.proc.pid) == []
        assert os.getpriority(os.PRIO_PROCESS, camera_hub.proc.pid) == min(19, mine + 10)
        assert os.getpriority(os.PRIO_PROCESS, exam_hub.proc.pid) == mine

        # the image is served by either process to the proctor (one instance folder)
        staff = staff_session(exam_hub.url, "giamthi", "mat-khau-thu")
        image = staff.get(exam_hub.url + second["url"], timeout=10)
        assert image.status_code == 200 and image.content == one
        assert kiosk.get(exam_hub.url + second["url"], timeout=10).status_code == 403

        proctor.sio.disconnect()
        assert "Traceback" not in exam_hub.log() and "Traceback" not in camera_hub.log()
        db.session.remove()
