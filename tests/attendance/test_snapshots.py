"""Camera snapshots through the hub: upload, storage, analysis, flags, refusals.

Real photographs from ../shared/faces (never copied here) are posted by a bridge point's
kiosk and by a learner; the analysis runs synchronously through `snapshots.process`, the
function the worker pool calls. The flag rules themselves are tested as a table.
"""
from __future__ import annotations

import io
import struct
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlalchemy as sa

from conftest import SHARED, need
from factories import make_staff
from server.attendance import flags, snapshots
from server.attendance.flags import Frame
from server.attendance.models import CameraHistory, CheckIn, Snapshot
from server.core.timeutil import now_utc
from server.exam.models import Attempt
from server.extensions import db
from server.review.models import Flag
from server.webcast.models import Lecture, LectureStatus

FACES = SHARED / "faces"
MODEL = SHARED / "models" / "yunet_n_640_640.onnx"


# fixtures and helpers ----------------------------------------------------------------------------

@pytest.fixture
def hub(app, tmp_path):
    """The app with its instance folder in tmp and the face model from ../shared."""
    need(MODEL.is_file(), f"{MODEL} is missing")
    app.instance_path = str(tmp_path / "instance")
    app.config["FACE_MODEL_PATH"] = str(MODEL)
    return app


def photo(name: str) -> bytes:
    need((FACES / name).is_file(), f"photograph {FACES / name} is missing")
    return (FACES / name).read_bytes()


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def kiosk(app, code: str = "KIOSK-101"):
    client = app.test_client()
    r = client.post("/kiosk/login", data={"code": code, "submit": "1"})
    assert r.status_code == 302, r.text
    return client


def learner(app, code: str = "HV0001"):
    client = app.test_client()
    r = client.post("/login", data={"learner-personal_code": code, "learner-submit": "1"})
    assert r.status_code == 302, r.text
    return client


def post(client, data: bytes, kind: str = "room", content_type: str = "image/jpeg", **fields):
    form = {"kind": kind, **{k: str(v) for k, v in fields.items()}, "image": (io.BytesIO(data), "snap.jpg", content_type)}
    return client.post("/api/snapshots", data=form, content_type="multipart/form-data")


def send(app, client, data: bytes, kind: str = "room", **fields) -> Snapshot:
    """Upload, then analyse as a worker would; the analysed snapshot."""
    r = post(client, data, kind, **fields)
    assert r.status_code == 200 and r.json["ok"], r.text
    snap = snapshots.process(r.json["id"])
    assert snap is not None
    db.session.expire_all()
    return db.session.get(Snapshot, r.json["id"])


def flags_of(kind: str | None = None, **where) -> list[Flag]:
    db.session.expire_all()
    q = sa.select(Flag).filter_by(**where).order_by(Flag.id)
    if kind:
        q = q.where(Flag.kind == kind)
    return list(db.session.scalars(q))


def snapshot_files(app) -> list[Path]:
    root = Path(app.instance_path) / "snapshots"
    return sorted(root.rglob("*")) if root.exists() else []


def live_lecture(world) -> Lecture:
    rapporteur = make_staff("rapporteur", "bcv")
    lecture = Lecture(title="Nghị quyết thử", rapporteur_id=rapporteur.id, status=LectureStatus.live,
                      started_at=now_utc() - timedelta(minutes=5))
    db.session.add(lecture)
    db.session.commit()
    return lecture


# the room camera ------------------------------------------------------------------------------------

ROOM_PHOTOS = [("ulfd_5_office_crop.jpg", 0), ("fr_obama.jpg", 1), ("dlib_2008_001322.jpg", 3),
               ("ulfd_16.jpg", 9), ("ulfd_1.jpg", 52)]


def test_room_snapshots_are_stored_then_analysed_with_the_right_headcount(hub, world):
    site = world.bridge_points[0]
    client = kiosk(hub)
    ids = []
    for name, faces in ROOM_PHOTOS:
        r = post(client, photo(name))
        assert r.status_code == 200 and r.json == {"ok": True, "id": r.json["id"]}
        ids.append((r.json["id"], name, faces))
    # acknowledged = committed and on disk, still pending: what a restarted hub re-queues.
    assert snapshots.pending_ids() == [i for i, _, _ in ids]
    for snapshot_id, name, faces in ids:
        snap = db.session.get(Snapshot, snapshot_id)
        path = snapshots.file_path(snap)
        assert path.read_bytes() == photo(name)
        assert path.parent.name == snap.taken_at.strftime("%Y-%m-%d") and path.parent.parent.name == "snapshots"
        assert len(snap.token) >= 32 and path.stem == snap.token
        assert (snap.status, snap.kind, snap.bridge_point_id, snap.attempt_id) == ("pending", "room", site.id, None)
        snapshots.process(snapshot_id)
        db.session.expire_all()
        snap = db.session.get(Snapshot, snapshot_id)
        assert snap.status == "analysed", snap.error
        assert snap.headcount == faces == len(snap.faces), name
        assert snap.detector.startswith("yunet") and not snap.health["dark"]
    assert snapshots.pending_ids() == []
    assert db.session.get(CameraHistory, f"bp:{site.id}") is not None
    assert snapshots.process(ids[0][0]) is None  # finished: a second worker does nothing


def test_dark_and_covered_frames_raise_flags_once(hub, world):
    site = world.bridge_points[0]
    client = kiosk(hub)
    room = cv2.imdecode(np.frombuffer(photo("dlib_2008_001322.jpg"), np.uint8), cv2.IMREAD_COLOR)
    dark = send(hub, client, jpeg((room * 0.2).astype(np.uint8)))
    assert dark.health["dark"] and [f.kind for f in flags_of(bridge_point_id=site.id)] == ["dark"]
    flag = flags_of("dark")[0]
    assert (flag.snapshot_id, flag.severity, flag.status) == (dark.id, 30, "open")
    covered = send(hub, client, jpeg(np.full((480, 640, 3), 128, np.uint8)))
    assert covered.health["covered"] and covered.headcount == 0
    assert [f.kind for f in flags_of(bridge_point_id=site.id)] == ["dark", "covered"]
    # the same trouble again within the window: counted on the open flag, not repeated
    send(hub, client, jpeg(np.full((480, 640, 3), 120, np.uint8)))
    covered_flags = flags_of("covered")
    assert len(covered_flags) == 1 and covered_flags[0].detail["repeats"] == 1


def test_headcount_under_80_percent_of_check_ins_twice_running(hub, world):
    site = world.bridge_points[0]
    lecture = live_lecture(world)
    operator = world.staff["operator"]
    for person in [u for u in world.learners if u.bridge_point_id == site.id]:  # 3 checked in
        db.session.add(CheckIn(lecture_id=lecture.id, user_id=person.id, bridge_point_id=site.id,
                               method="operator", by_user_id=operator.id, at=now_utc() - timedelta(minutes=1)))
    db.session.commit()
    client = kiosk(hub)
    first = send(hub, client, photo("fr_two_people.jpg"))  # 2 of 3: one frame is not enough
    assert first.lecture_id == lecture.id and first.headcount == 2
    assert flags_of("headcount_low") == []
    second = send(hub, client, photo("fr_kit_with_rose.jpg"))
    low = flags_of("headcount_low")
    assert [(f.bridge_point_id, f.lecture_id, f.snapshot_id) for f in low] == [(site.id, lecture.id, second.id)]
    assert low[0].detail["headcounts"] == [2, 2] and low[0].detail["checked_in"] == [3, 3]
    full = send(hub, client, photo("dlib_2008_001322.jpg"))  # 3 of 3: no new flag
    assert full.headcount == 3 and len(flags_of("headcount_low")) == 1


def test_a_check_in_confirmed_invalid_does_not_count_against_the_camera(hub, world):
    """Two faces for three check-ins is low, unless a proctor found one check-in false."""
    from server.review.operations import mark_check_in_invalid

    site = world.bridge_points[0]
    lecture = live_lecture(world)
    operator, proctor = world.staff["operator"], world.staff["proctor"]
    rows = [CheckIn(lecture_id=lecture.id, user_id=p.id, bridge_point_id=site.id, method="operator",
                    by_user_id=operator.id, at=now_utc() - timedelta(minutes=1))
            for p in world.learners if p.bridge_point_id == site.id]
    db.session.add_all(rows)
    db.session.flush()
    mark_check_in_invalid(rows[0], "Người khác quét mã hộ", proctor, now_utc())
    db.session.commit()
    client = kiosk(hub)
    for name in ("fr_two_people.jpg", "fr_kit_with_rose.jpg"):
        assert send(hub, client, photo(name)).headcount == 2
    assert flags_of("headcount_low") == []  # 2 of the 2 valid check-ins are there


def test_a_live_lectures_silent_camera_is_flagged_offline(hub, world):
    site = world.bridge_points[0]
    lecture = live_lecture(world)
    send(hub, kiosk(hub), photo("fr_obama.jpg"))
    assert snapshots.flag_offline_cameras(now_utc() + timedelta(seconds=60)) == []
    raised = snapshots.flag_offline_cameras(now_utc() + timedelta(seconds=120))
    assert [(f.kind, f.bridge_point_id, f.lecture_id) for f in raised] == [("camera_offline", site.id, lecture.id)]
    assert snapshots.flag_offline_cameras(now_utc() + timedelta(seconds=150)) == []  # open already


# refusals ----------------------------------------------------------------------------------------

def _bomb() -> bytes:
    """A valid small JPEG whose header claims 60000×60000 pixels."""
    data = bytearray(jpeg(np.zeros((32, 32, 3), np.uint8)))
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    data[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


def test_every_bad_upload_is_refused_with_its_code_and_nothing_is_stored(hub, world):
    good = photo("fr_obama.jpg")
    png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    other_site = world.bridge_points[1].id
    someone_else = db.session.scalar(sa.select(Attempt.id).where(Attempt.user_id == world.learners[1].id))
    room, me = kiosk(hub), learner(hub)
    anonymous = hub.test_client()
    cases = [
        ("JSON body", room.post("/api/snapshots", json={"image": "x"}), 415, "snapshot.content_type"),
        ("text part", post(room, good, content_type="text/plain"), 415, "snapshot.content_type"),
        ("no file", room.post("/api/snapshots", data={"kind": "room"}, content_type="multipart/form-data"), 400, "snapshot.no_file"),
        ("not an image", post(room, b"<html>definitely not a photo</html>" * 10), 400, "image.not_image"),
        ("truncated", post(room, good[: len(good) // 2]), 400, "image.truncated"),
        ("bomb", post(room, _bomb()), 413, "image.too_large"),
        ("png", post(room, png), 415, "image.unsupported_format"),
        ("bad kind", post(room, good, kind="portrait"), 400, "snapshot.bad_kind"),
        ("another site", post(room, good, bridge_point_id=other_site), 403, "snapshot.not_yours"),
        ("anonymous", post(anonymous, good), 401, "snapshot.signed_out"),
        ("learner as kiosk", post(learner(hub), good), 403, "snapshot.kiosk_only"),
        ("kiosk as learner", post(room, good, kind="selfie", attempt_id=someone_else), 401, "unauthenticated"),
        ("another's attempt", post(me, good, kind="random", attempt_id=someone_else), 403, "snapshot.not_yours"),
    ]
    hub.config["SNAPSHOT_MAX_BYTES"] = 50_000
    cases.append(("oversize", post(room, good), 413, "image.too_many_bytes"))
    for name, r, status, code in cases:
        assert r.status_code == status, f"{name}: {r.status_code} {r.text[:300]}"
        assert r.json["ok"] is False and r.json["error"]["code"] == code, f"{name}: {r.json}"
        assert r.json["error"]["message"], name
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Snapshot)) == 0
    assert [p for p in snapshot_files(hub) if p.is_file()] == []


def test_a_kiosk_whose_bridge_point_is_gone_is_refused_and_nothing_is_stored(hub, world):
    from server.places.models import BridgePoint

    site = BridgePoint(district_id=world.bridge_points[0].district_id, code="GONE-1", name="Điểm cầu đã xoá",
                       kiosk_code="KIOSK-GONE")
    db.session.add(site)
    db.session.commit()
    room = kiosk(hub, "KIOSK-GONE")
    assert post(room, photo("fr_obama.jpg")).status_code == 200  # signed in, site there: stored
    db.session.execute(sa.delete(Snapshot))
    db.session.delete(site)
    db.session.commit()
    for path in snapshot_files(hub):
        if path.is_file():
            path.unlink()

    r = post(room, photo("fr_obama.jpg"))
    assert r.status_code == 401 and r.json["error"]["code"] == "snapshot.signed_out", r.text
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Snapshot)) == 0
    assert [p for p in snapshot_files(hub) if p.is_file()] == []


def test_a_room_snapshot_belongs_to_the_live_lecture_and_none_without_one(hub, world):
    client = kiosk(hub)
    before = post(client, photo("fr_obama.jpg")).json["id"]
    lecture = live_lecture(world)
    during = post(client, photo("fr_obama.jpg")).json["id"]
    db.session.expire_all()
    assert db.session.get(Snapshot, before).lecture_id is None
    assert db.session.get(Snapshot, during).lecture_id == lecture.id


def test_the_worker_survives_garbage_and_goes_on(hub, world):
    client = kiosk(hub)
    # a header that passes the probe (size, scan, end marker) but no Huffman tables: undecodable
    header = jpeg(np.zeros((64, 64, 3), np.uint8))
    garbage = header[:2] + header[header.index(b"\xff\xc0"):]
    corrupt = post(client, garbage)
    assert corrupt.status_code == 200, corrupt.text
    missing = post(client, photo("fr_obama.jpg")).json["id"]
    snapshots.file_path(db.session.get(Snapshot, missing)).unlink()
    db.session.add(CameraHistory(camera="bp:999", data=b"not a history", updated_at=now_utc()))
    db.session.merge(CameraHistory(camera=f"bp:{world.bridge_points[0].id}", data=b"\x00garbage", updated_at=now_utc()))
    db.session.commit()
    for snapshot_id in (corrupt.json["id"], missing):
        snapshots.process(snapshot_id)
    db.session.expire_all()
    failed = db.session.scalars(sa.select(Snapshot).where(Snapshot.status == "failed")).all()
    assert sorted(s.id for s in failed) == sorted([corrupt.json["id"], missing])
    assert all(s.error for s in failed) and any(s.error.startswith("file_missing") for s in failed)
    after = send(hub, client, photo("dlib_2008_001322.jpg"))  # a damaged history starts afresh
    assert (after.status, after.headcount) == ("analysed", 3)


def test_the_pool_outlives_a_crashing_analysis_and_gives_up_after_three(hub, world, monkeypatch):
    from server.attendance import analysis

    client = kiosk(hub)
    doomed, good = (post(client, photo("fr_obama.jpg")).json["id"] for _ in range(2))
    real = analysis.run_detection

    def crash_on_doomed(path, *args, **kwargs):
        if db.session.get(Snapshot, doomed).token in path:
            raise RuntimeError("a bug, not bad data")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(analysis, "run_detection", crash_on_doomed)
    pool = analysis.AnalysisPool(hub, workers=1)
    pool.start()
    for snapshot_id in (doomed, doomed, doomed, good):
        pool.queue.put(snapshot_id)  # as three re-queues would
    deadline = time.time() + 30
    while time.time() < deadline:
        db.session.expire_all()
        states = {i: db.session.get(Snapshot, i).status for i in (doomed, good)}
        db.session.rollback()
        if states == {doomed: "failed", good: "analysed"}:
            break
        time.sleep(0.2)
    assert states == {doomed: "failed", good: "analysed"}
    assert db.session.get(Snapshot, doomed).error.startswith("crashed")


def test_a_cameras_history_is_written_by_compare_and_set(hub, world):
    camera = "bp:1"
    assert snapshots._save_history(camera, None, b"first")
    db.session.commit()
    version, data = snapshots._read_history(camera)
    assert data == b"first"
    assert not snapshots._save_history(camera, None, b"a second first")  # another process inserted it
    db.session.rollback()
    assert snapshots._save_history(camera, version, b"next")
    db.session.commit()
    assert not snapshots._save_history(camera, version, b"stale")  # analysed against an old history
    db.session.rollback()
    assert snapshots._read_history(camera)[1] == b"next"


# the learner's webcam ---------------------------------------------------------------------------

def test_learner_selfie_random_snapshots_and_page_reports(hub, world):
    me = learner(hub)
    attempt = db.session.scalar(sa.select(Attempt).where(Attempt.user_id == world.learners[0].id))
    attempt_id = attempt.id
    ok = send(hub, me, photo("fr_obama.jpg"), kind="selfie", attempt_id=attempt_id)
    assert (ok.attempt_id, ok.bridge_point_id, ok.health["selfie_ok"]) == (attempt_id, None, True)
    verdict = me.get(f"/api/snapshots/{ok.id}").json
    assert verdict["selfie"]["ok"] is True and verdict["status"] == "analysed"
    assert hub.test_client().get(f"/api/snapshots/{ok.id}").status_code == 404  # not the sender
    for _ in range(3):  # three selfies without a face after a good one
        bad = send(hub, me, photo("ulfd_5_office_crop.jpg"), kind="selfie", attempt_id=attempt_id)
        assert me.get(f"/api/snapshots/{bad.id}").json["selfie"]["reason"] == "no_face"
        assert len(flags_of("selfie_failed")) == 0  # the first selfie passed: no flag at all
    send(hub, me, photo("fr_two_people.jpg"), kind="random", attempt_id=attempt_id)
    send(hub, me, photo("ulfd_5_office_crop.jpg"), kind="random", attempt_id=attempt_id)
    raised = flags_of(attempt_id=attempt_id)
    assert [(f.kind, f.exam_id) for f in raised] == [("multiple_faces", world.exam.id), ("no_face", world.exam.id)]
    for _ in range(2):
        r = me.post("/api/camera/report", json={"camera": "webcam", "event": "page_hidden", "attempt_id": attempt_id,
                                                "detail": {"how": "hidden", "hidden_ms": 4000, "junk": "x" * 500}})
        assert r.status_code == 200 and r.json["ok"], r.text
    hidden = flags_of("page_hidden")
    assert len(hidden) == 1 and hidden[0].detail == {"event": "page_hidden", "how": "hidden", "hidden_ms": 4000, "repeats": 1,
                                                     "last_ms": hidden[0].detail["last_ms"]}
    r = me.post("/api/camera/report", json={"camera": "webcam", "event": "camera_refused", "attempt_id": attempt_id + 1})
    assert r.status_code == 403


def test_three_failed_selfies_raise_selfie_failed(hub, world):
    me = learner(hub, "HV0002")
    attempt_id = db.session.scalar(sa.select(Attempt.id).where(Attempt.user_id == world.learners[1].id))
    for n in range(3):
        send(hub, me, photo("fr_two_people.jpg"), kind="selfie", attempt_id=attempt_id)
        assert len(flags_of("selfie_failed")) == (1 if n == 2 else 0)
    assert flags_of("selfie_failed")[0].detail["reason"] == "many_faces"


def test_a_kiosk_reports_its_camera_refused(hub, world):
    r = kiosk(hub).post("/api/camera/report", json={"camera": "room", "event": "camera_refused",
                                                     "detail": {"error": "NotAllowedError"}})
    assert r.status_code == 200 and r.json == {"ok": True, "flagged": True}
    assert [(f.kind, f.bridge_point_id) for f in flags_of()] == [("camera_refused", world.bridge_points[0].id)]
    assert hub.test_client().post("/api/camera/report", json={"camera": "room", "event": "camera_refused"}).status_code == 401


# the rules, as a table ------------------------------------------------------------------------------

OK = {}
DARK = {"dark": True}


@pytest.mark.parametrize("frames, live, kinds", [
    ([Frame(2, 3)], True, []),
    ([Frame(2, 3), Frame(2, 3)], True, ["headcount_low"]),
    ([Frame(3, 3), Frame(2, 3)], True, []),
    ([Frame(2, 3), Frame(2, 3)], False, []),
    ([Frame(8, 10), Frame(8, 10)], True, []),  # 80% is enough
    ([Frame(0, 0), Frame(0, 0)], True, ["empty_room"]),
    ([Frame(0, 5), Frame(0, 5)], True, ["empty_room"]),
    ([Frame(0, 5, DARK), Frame(0, 5, DARK)], True, ["dark"]),  # the camera's fault, not the room's
    ([Frame(1, 0, {"frozen": True, "frozen_streak": 1})], True, []),
    ([Frame(1, 0, {"frozen": True, "frozen_streak": 2})], True, ["frozen"]),
    ([Frame(1, 0, {"moved": True, "moved_streak": 2})], False, ["moved"]),
    ([Frame(1, 0, {"covered": True, "blurred": True})], False, ["covered"]),
    ([Frame(4, 0, {"replayed": True, "replay_reason": "history"})], False, ["replayed"]),
])
def test_room_rules(frames, live, kinds):
    assert sorted(f.kind for f in flags.room_findings(frames, lecture_live=live)) == sorted(kinds)


@pytest.mark.parametrize("kind, headcount, results, kinds", [
    ("random", 1, (), []),
    ("random", 0, (), ["no_face"]),
    ("random", 2, (), ["multiple_faces"]),
    ("selfie", 0, (False,), []),
    ("selfie", 0, (False, False, False), ["selfie_failed"]),
    ("selfie", 0, (True, False, False), []),
    ("selfie", 0, (False, False, False, False), []),  # flagged once, at the third
])
def test_webcam_rules(kind, headcount, results, kinds):
    assert [f.kind for f in flags.webcam_findings(kind, headcount, {}, results)] == kinds


def test_offline_and_repeat_rules():
    t0 = datetime(2025, 7, 1, 1, 0, tzinfo=timezone.utc)
    assert not flags.camera_offline(None, t0, t0 + timedelta(seconds=90), 30)
    assert flags.camera_offline(None, t0, t0 + timedelta(seconds=91), 30)
    assert not flags.camera_offline(t0 + timedelta(seconds=60), t0, t0 + timedelta(seconds=140), 30)
    assert flags.is_repeat([t0], t0 + timedelta(minutes=9)) and not flags.is_repeat([t0], t0 + timedelta(minutes=11))
    assert flags.report_kind("room", "camera_lost") == "camera_offline"
    assert flags.report_kind("webcam", "camera_lost") == "camera_lost" and flags.report_kind("room", "page_hidden") is None


def test_uploads_beyond_the_gate_wait_their_turn_then_are_refused_busy(hub, world):
    """164 cameras at once: a few uploads run at a time; one that waited too long is told
    "server.busy" and nothing of it is stored; the next one, with a slot free, is taken."""
    from server.core.admission import Gate

    gate = hub.wsgi_app
    assert isinstance(gate, Gate) and gate.paths == {"/api/snapshots"}
    room = kiosk(hub)
    good = photo("fr_obama.jpg")
    held = [gate.slots.acquire(timeout=1) for _ in range(hub.config["SNAPSHOT_UPLOAD_SLOTS"])]
    assert all(held) and not gate.slots.acquire(timeout=0)  # every slot taken
    gate.wait_s = 0.1
    try:
        t0 = time.monotonic()
        r = post(room, good)
        assert time.monotonic() - t0 >= 0.1  # it waited its turn first
        assert r.status_code == 503 and r.json["error"]["code"] == "server.busy" and r.json["error"]["message"]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Snapshot)) == 0
        assert [p for p in snapshot_files(hub) if p.is_file()] == []
        assert room.get("/kiosk").status_code != 503  # other pages do not queue at the gate
    finally:
        for _ in held:
            gate.slots.release()
    r = post(room, good)
    assert r.status_code == 200 and r.json["ok"], r.text
    # a slot is given back after each upload, refused or taken
    assert all(gate.slots.acquire(timeout=0) for _ in held)
    for _ in held:
        gate.slots.release()


def test_the_detector_sees_the_configured_size_and_a_wrong_size_falls_back(hub, world, caplog):
    from server.attendance.analysis import detector_for

    with hub.app_context():
        assert snapshots.detector_spec().input_size == 640
        hub.config["ANALYSIS_INPUT_SIZE"] = 1280
        spec = snapshots.detector_spec()
        assert spec.input_size == 1280 and detector_for(spec).input_size == 1280
        hub.config["ANALYSIS_INPUT_SIZE"] = 20
        with caplog.at_level("ERROR", logger=snapshots.log.name):
            assert snapshots.detector_spec().input_size == 640
        assert "ANALYSIS_INPUT_SIZE=20" in caplog.text


@pytest.mark.parametrize("rate", [0.0, 20.0])
def test_the_gate_spreads_a_burst_of_uploads_at_its_rate_and_lets_other_paths_through(rate):
    import threading

    from server.core.admission import Gate

    admitted: list[float] = []

    def app(environ, start_response):
        admitted.append(time.monotonic())
        start_response("200 OK", [])
        return [b"ok"]

    gate = Gate(app, ("/api/snapshots",), slots=2, wait_s=5.0, rate=rate)
    upload = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/snapshots"}
    threads = [threading.Thread(target=gate, args=(dict(upload), lambda *a: None)) for _ in range(6)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(admitted) == 6
    gaps = [b - a for a, b in zip(sorted(admitted), sorted(admitted)[1:])]
    if rate:
        assert min(gaps) >= 1 / rate - 0.005  # one every 50 ms, never two at once
        assert max(admitted) - t0 >= 5 / rate - 0.01
    else:
        assert max(admitted) - t0 < 0.2  # no pacing: as fast as the slots allow
    admitted.clear()
    t1 = time.monotonic()
    gate({"REQUEST_METHOD": "GET", "PATH_INFO": "/kiosk"}, lambda *a: None)  # not an upload: no wait
    assert admitted and admitted[0] - t1 < 0.02


def test_uploads_are_paced_by_default_only_where_learners_webcams_are_off(monkeypatch):
    from config import load

    for name in ("DIEMCAU_SNAPSHOT_UPLOAD_RATE", "SNAPSHOT_UPLOAD_RATE", "DIEMCAU_EXAM_WEBCAM_REQUIRED",
                 "EXAM_WEBCAM_REQUIRED"):
        monkeypatch.delenv(name, raising=False)
    assert load()["SNAPSHOT_UPLOAD_RATE"] == 15  # room cameras only
    monkeypatch.setenv("DIEMCAU_EXAM_WEBCAM_REQUIRED", "1")
    assert load()["SNAPSHOT_UPLOAD_RATE"] == 0  # ~40 webcam snapshots/s at 10,000 learners: no cap
    monkeypatch.setenv("DIEMCAU_SNAPSHOT_UPLOAD_RATE", "30")
    assert load()["SNAPSHOT_UPLOAD_RATE"] == 30
