"""The cameras end to end in headless Chromium with a fake camera, against a live hub.

A live hub (gevent, its analysis pool running) during a live lecture; the bridge point's
kiosk page sends snapshots by itself every few seconds and once more when a proctor asks;
they are stored and analysed off the event loop, a proctor's `/proctor` socket hears
`snapshot.analysed`, the proctor can fetch the image and a learner cannot. Then a
learner's exam page runs the webcam module: three selfies that fail (the fake camera
shows no face), a random snapshot, and the page left — each reaching the proctor as a flag.
"""
from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from conftest import ROOT, SHARED, need, socket_token_for
from factories import PASSWORD, make_staff
from hub import staff_session
from server.attendance.models import Snapshot
from server.core.timeutil import now_utc
from server.exam.models import Attempt
from server.extensions import db
from server.webcast.models import Lecture, LectureStatus

MODEL = SHARED / "models" / "yunet_n_640_640.onnx"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream"]
INTERVAL_S = 3
WAIT_S = 45


class ProctorSocket:
    """A proctor's `/proctor` socket, recording what the hub pushes."""

    def __init__(self, url: str, token: str):
        import socketio

        self.sio = socketio.Client(reconnection=False)
        self.pushed: list[tuple[str, dict]] = []
        self.got = threading.Condition()
        self.sio.on("*", self._record, namespace="/proctor")
        self.sio.connect(url, namespaces=["/proctor"], auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def _record(self, event, data):
        with self.got:
            self.pushed.append((event, data))
            self.got.notify_all()

    def wait_for(self, event, match=lambda data: True, timeout=WAIT_S):
        end = time.time() + timeout
        with self.got:
            while True:
                found = [d for ev, d in self.pushed if ev == event and match(d)]
                if found:
                    return found[0]
                if time.time() >= end:
                    raise AssertionError(f"no {event} within {timeout}s; got {self.pushed}")
                self.got.wait(end - time.time())


def learner_session(url: str, code: str) -> requests.Session:
    s = requests.Session()
    token = re.search(r'name="csrf-token" content="([^"]+)"', s.get(url + "/login", timeout=10).text).group(1)
    r = s.post(url + "/login", data={"learner-csrf_token": token, "learner-personal_code": code, "learner-submit": "1"},
               timeout=10, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    return s


WEBCAM_START = """async ([attemptId]) => {
  const { startWebcamProctoring } = await import("/static/attendance/webcam.js");
  window.webcam = startWebcamProctoring({
    attemptId, uploadUrl: "/api/snapshots", reportUrl: "/api/camera/report", verdictUrl: "/api/snapshots/",
    minSec: 1, maxSec: 2, selfieTries: 3, root: document.getElementById("webcam"),
    texts: { notice: "Camera giám sát", selfie_retry: "{reason} ({n})", retake: "Chụp lại", selfie_failed: "Chưa đạt" },
  });
}"""


def learner_webcam(page, url: str, exam_id: int, attempt_id: int, proctor: ProctorSocket, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/login")
    page.fill("#learner-personal_code", "HV0001")
    page.click("[name=learner-submit]")
    page.wait_for_url(lambda u: "/login" not in u)
    page.goto(f"{url}/learn/exams/{exam_id}")
    page.evaluate(WEBCAM_START, [attempt_id])
    retake = page.locator("[data-webcam-retake]")
    for n in (2, 1):
        retake.wait_for(state="visible", timeout=WAIT_S * 1000)
        assert page.locator("[data-webcam-status]").inner_text().endswith(f"({n})")
        retake.click()
    flag = proctor.wait_for("flag.raised", lambda d: d["kind"] == "selfie_failed")
    assert flag["attempt_id"] == attempt_id and page.evaluate("() => window.webcam.stats.selfies") == 3
    page.wait_for_function("() => document.getElementById('webcam').dataset.state === 'selfie_failed'",
                           timeout=WAIT_S * 1000)
    snap = proctor.wait_for("snapshot.analysed", lambda d: d["kind"] == "random")
    assert snap["attempt_id"] == attempt_id and snap["bridge_point_id"] is None
    proctor.wait_for("flag.raised", lambda d: d["kind"] == "no_face" and d["attempt_id"] == attempt_id)
    page.goto(url + "/")  # the learner leaves the exam page
    proctor.wait_for("flag.raised", lambda d: d["kind"] == "page_hidden" and d["attempt_id"] == attempt_id)


def test_kiosk_camera_snapshots_reach_the_proctor_and_only_the_proctor(app, world, db_url, hub_factory,
                                                                       chromium_path, tmp_path):
    need(MODEL.is_file(), f"{MODEL} is missing")
    need((ROOT / "static" / "vendor" / "socket.io.min.js").is_file(), "static/vendor/ is missing: run deploy/vendor.sh")
    sync_api = pytest.importorskip("playwright.sync_api")
    site = world.bridge_points[0]
    site_id, code = site.id, site.kiosk_code
    rapporteur = make_staff("rapporteur", "bcv")
    lecture = Lecture(title="Nghị quyết thử", rapporteur_id=rapporteur.id, status=LectureStatus.live,
                      started_at=now_utc() - timedelta(minutes=1))
    db.session.add(lecture)
    db.session.commit()
    proctor_token = socket_token_for(app, world.staff["proctor"].id)
    attempt_id = db.session.scalar(sa.select(Attempt.id).where(Attempt.user_id == world.learners[0].id))
    exam_id = world.exam.id
    db.session.rollback()

    hub = hub_factory(db_url, DIEMCAU_FACE_MODEL=str(MODEL), DIEMCAU_SNAPSHOT_INTERVAL_SECONDS=INTERVAL_S)
    proctor = ProctorSocket(hub.url, proctor_token)
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
                context.grant_permissions(["camera"])
                page = context.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(hub.url + "/kiosk/login")
                page.fill("#code", code)
                page.click("[name=submit]")
                page.wait_for_url(hub.url + "/kiosk")

                # the room is told, on screen, that the camera is on and why
                notice = page.locator("#camera-notice")
                notice.wait_for(state="visible", timeout=15_000)
                assert "điểm danh" in notice.inner_text()

                first = proctor.wait_for("snapshot.analysed", lambda d: d["bridge_point_id"] == site_id)
                assert first["status"] == "analysed" and first["lecture_id"] == lecture.id
                assert first["headcount"] == 0 and first["url"].startswith("/snapshots/")  # a fake camera, nobody there

                ack = proctor.sio.call("snapshot.request", {"bridge_point_id": site_id}, namespace="/proctor", timeout=10)
                assert ack["ok"], ack
                asked = proctor.wait_for("snapshot.analysed", lambda d: d["kind"] == "requested")
                assert asked["bridge_point_id"] == site_id
                # Chromium's fake camera shows a flat green field: "covered", raised once, not once per frame
                assert "covered" in first["flags"]
                assert [d["kind"] for ev, d in proctor.pushed if ev == "flag.raised"].count("covered") == 1
                stats = page.evaluate("() => window.roomCamera.stats")
                assert stats["sent"] >= 2 and stats["requests"] == 1 and stats["refused"] == 0
                page.close()
                learner_webcam(context.new_page(), hub.url, exam_id, attempt_id, proctor, errors)
            finally:
                browser.close()
    finally:
        proctor.sio.disconnect()

    assert [e for e in errors if "attendance/" in e] == []
    db.session.expire_all()
    rows = db.session.query(Snapshot).filter_by(bridge_point_id=site_id).order_by(Snapshot.id).all()
    assert rows and {r.kind for r in rows} >= {"room", "requested"}
    stored = db.session.get(Snapshot, first["id"])
    assert stored.status == "analysed" and stored.width >= 320 and stored.detector.startswith("yunet")
    path = Path(tmp_path) / "snapshots" / stored.taken_at.strftime("%Y-%m-%d") / f"{stored.token}.jpg"
    assert path.is_file() and path.read_bytes()[:3] == b"\xff\xd8\xff"

    seen = staff_session(hub.url, "giamthi", PASSWORD).get(hub.url + first["url"], timeout=10)
    assert seen.status_code == 200 and seen.headers["Content-Type"] == "image/jpeg"
    assert seen.headers["Cache-Control"] == "private, no-store" and seen.content == path.read_bytes()
    assert learner_session(hub.url, "HV0001").get(hub.url + first["url"], timeout=10).status_code == 403
    assert requests.get(hub.url + first["url"], timeout=10, allow_redirects=False).status_code == 302
