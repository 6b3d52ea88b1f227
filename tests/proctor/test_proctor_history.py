"""A site's snapshots over time: frozen, moved, replayed, and the SiteHistory that carries them."""
from __future__ import annotations

import base64
import json
import zlib

import cv2
import numpy as np
import pytest
from proctor_fixtures import (  # noqa: F401  (fixtures)
    detectors,
    encode,
    labels,
    live,
    model_path,
    photo_bytes,
    scene,
)

from proctor import FaceDetector, SiteHistory, analyse
from proctor import health as H
from proctor.decoding import decode_image
from proctor.history import HISTORY_MAX_ENTRIES


class NoFaces(FaceDetector):
    name = "none"

    def detect(self, image_bgr):
        return []


NONE = NoFaces()


def run(frames, detector, history=None, start=0.0, step=30.0):
    """Analyse JPEG frames taken every `step` seconds; return the analyses."""
    results = []
    for i, data in enumerate(frames):
        a = analyse(data, detector, history, now=start + i * step)
        history = a.history
        results.append(a)
    return results


def warp(image, angle=0.0, zoom=1.0, dx=0.0, dy=0.0):
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += (dx * w, dy * h)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def room(photo_bytes, name):
    image, _ = decode_image(photo_bytes(name))
    return cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)


# Frozen ------------------------------------------------------------------------------


def test_same_frame_twice_is_frozen(scene):
    data = live(scene, 0)
    first, second, third = run([data, data, data], NONE)
    assert not first.frozen and first.frame_difference is None
    assert second.frozen and second.frame_difference == 0.0
    assert third.frozen and third.history.frozen_streak == 2


def test_same_pixels_reencoded_is_frozen(scene):
    _, again = run([encode(scene, 85), encode(scene, 84)], NONE)
    assert again.frozen and again.frame_difference < H.FROZEN_DIFF_MAX


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_live_camera_on_a_still_scene_is_not_frozen(scene, sigma):
    results = run([live(scene, seed, sigma) for seed in range(6)], NONE)
    assert not any(a.frozen for a in results)
    assert results[-1].history.frozen_streak == 0


# Moved ------------------------------------------------------------------------------


MOVES = [
    ("same view, new noise", lambda img: img, False),
    ("re-encoded at quality 60", lambda img: cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], 1), False),
    ("lights dimmed", lambda img: cv2.convertScaleAbs(img, alpha=0.7), False),
    ("2% shift", lambda img: warp(img, dx=0.02), False),
    ("1 degree", lambda img: warp(img, angle=1.0), False),
    ("3% zoom", lambda img: warp(img, zoom=1.03), False),
    ("6% shift", lambda img: warp(img, dx=0.06), True),
    ("8% down", lambda img: warp(img, dy=0.08), True),
    ("5 degrees", lambda img: warp(img, angle=5.0), True),
    ("10% zoom", lambda img: warp(img, zoom=1.10), True),
    ("shift and turn", lambda img: warp(img, angle=-3.0, dx=-0.04), True),
]


@pytest.mark.parametrize("name, change, moved", MOVES, ids=[m[0] for m in MOVES])
def test_moved_against_the_reference(scene, name, change, moved):
    reference = analyse(live(scene, 0), NONE, now=0)
    assert reference.history.reference is not None and not reference.moved
    a = analyse(live(change(scene), 1), NONE, reference.history, now=30)
    assert a.moved == moved, (a.move_inliers, a.move_shift, a.move_rotation, a.move_scale)
    assert a.move_inliers >= H.MOVED_MIN_INLIERS


def test_people_in_front_of_part_of_the_view_is_not_moved(scene, photo_bytes):
    crowd = room(photo_bytes, "ulfd_3.jpg")
    partly = scene.copy()
    partly[300:, :] = crowd[300:, :]  # the lower 37 % now shows other people
    _, a = run([live(scene, 0), live(partly, 1)], NONE)
    assert not a.moved


def test_camera_pointing_elsewhere_is_moved_until_the_reference_is_reset(scene, photo_bytes):
    elsewhere = room(photo_bytes, "ulfd_10.jpg")
    results = run([live(scene, 0), live(elsewhere, 1), live(elsewhere, 2)], NONE)
    assert [a.moved for a in results] == [False, True, True]
    assert results[-1].history.moved_streak == 2 and results[1].move_shift is None
    history = results[-1].history
    history.clear_reference()  # the operator re-aimed the camera on purpose
    after = run([live(elsewhere, 3), live(elsewhere, 4)], NONE, history, start=100)
    assert [a.moved for a in after] == [False, False]


def test_no_reference_from_a_dark_or_covered_frame(scene):
    dark = (scene * 0.05).astype(np.uint8)
    grey = np.full_like(scene, 128)
    results = run([encode(dark), encode(grey), live(scene, 0)], NONE)
    assert results[0].history.reference is None and results[1].history.reference is None
    assert results[2].history.reference is not None
    assert not any(a.moved for a in results)


# Replayed ---------------------------------------------------------------------------

OTHERS = ["ulfd_3.jpg", "ulfd_10.jpg", "ulfd_20.jpg", "dlib_2008_002470.jpg", "ulfd_2.jpg", "ulfd_9.jpg", "ulfd_16.jpg", "fr_two_people.jpg", "ulfd_13.jpg"]


def test_frame_from_five_minutes_ago_is_replayed(scene, photo_bytes, detectors):
    """The room's picture at 0 s comes back at 300 s after nine different pictures."""
    frames = [live(scene, 0)] + [live(room(photo_bytes, n), i) for i, n in enumerate(OTHERS, 1)] + [live(scene, 99)]
    results = run(frames, detectors("yunet_s"), step=30)
    assert not any(a.replayed for a in results[:-1])
    last = results[-1]
    assert last.replayed and last.replay_reason == "history" and last.replay_age_s == 300
    assert not last.frozen and last.headcount >= 15


def test_a_still_room_is_never_replayed(scene, detectors):
    results = run([live(scene, i) for i in range(16)], detectors("yunet_s"), step=30)
    assert not any(a.replayed or a.frozen for a in results)


def test_a_person_walking_past_is_not_a_replay(scene, photo_bytes, detectors):
    passer = room(photo_bytes, "ulfd_13.jpg")
    results = run([live(scene, 0), live(scene, 1), live(passer, 2), live(scene, 3)], detectors("yunet_s"), step=30)
    assert not any(a.replayed for a in results)


def test_empty_room_after_the_lights_come_back_is_not_a_replay(photo_bytes):
    office = room(photo_bytes, "ulfd_5_office_crop.jpg")
    dark = [encode((office * 0.04).astype(np.uint8)) for _ in range(8)]
    results = run([live(office, 0), *dark, live(office, 1)], NONE)
    assert not any(a.replayed for a in results)


def test_a_face_that_never_moves_is_flagged_after_a_streak(photo_bytes, detectors):
    """A photograph held in front of a webcam: same face, same place, snapshot after snapshot."""
    learner = room(photo_bytes, "ulfd_5.jpg")
    n = H.STILL_MIN_STREAK + 2
    results = run([live(learner, i) for i in range(n)], detectors("yunet_s"), step=20)
    assert all(a.headcount == 1 for a in results)
    assert [a.replayed for a in results] == [False] * H.STILL_MIN_STREAK + [True, True]
    assert results[-1].replay_reason == "still_faces" and not results[-1].frozen


def test_a_learner_who_moves_is_not_flagged(photo_bytes, detectors):
    learner = room(photo_bytes, "ulfd_5.jpg")
    frames = [live(warp(learner, dx=0.06 * (i % 2)), i) for i in range(H.STILL_MIN_STREAK + 3)]
    results = run(frames, detectors("yunet_s"), step=20)
    assert not any(a.replayed for a in results)


# SiteHistory ------------------------------------------------------------------------


@pytest.fixture
def busy_history(scene, photo_bytes, detectors):
    frames = [live(scene, 0), live(room(photo_bytes, "ulfd_3.jpg"), 1), live(scene, 2), live(scene, 3)]
    return run(frames, detectors("yunet_s"))[-1].history


def test_history_round_trips_through_a_dict_and_json(busy_history):
    data = busy_history.to_dict()
    text = json.dumps(data)
    again = SiteHistory.from_dict(json.loads(text))
    assert again.to_dict() == data
    assert again.previous.boxes == busy_history.previous.boxes and again.previous.boxes
    assert np.array_equal(again.reference.descriptors, busy_history.reference.descriptors)
    assert np.array_equal(again.previous.thumb, busy_history.previous.thumb)


def test_history_round_trips_through_bytes_and_analysis_continues_the_same(busy_history, scene, detectors):
    blob = busy_history.to_bytes()
    assert isinstance(blob, bytes) and len(blob) < 40_000
    restored = SiteHistory.from_bytes(blob)
    frame = live(warp(scene, dx=0.06), 9)
    a = analyse(frame, detectors("yunet_s"), busy_history, now=500)
    b = analyse(frame, detectors("yunet_s"), restored, now=500)
    assert a.to_dict() == b.to_dict() and a.moved
    assert a.history.to_dict() == b.history.to_dict()


def test_empty_history_round_trips():
    assert SiteHistory.from_bytes(SiteHistory().to_bytes()).to_dict() == SiteHistory().to_dict()


def test_analyse_does_not_change_the_history_it_is_given(busy_history, scene):
    before = busy_history.to_dict()
    analyse(live(scene, 42), NONE, busy_history, now=1000)
    assert busy_history.to_dict() == before


def test_history_is_bounded():
    history = SiteHistory()
    for i in range(1000):
        history.record(H.HashEntry(i * 10.0, i, True))
    assert len(history.entries) == HISTORY_MAX_ENTRIES
    history.record(H.HashEntry(1_000_000.0, 1, True))
    assert len(history.entries) == 1  # everything else is more than an hour old


def _mangled(key, value):
    data = SiteHistory().to_dict()
    data[key] = value
    return data


BAD_DICTS = [
    ("empty", {}),
    ("future version", {**SiteHistory().to_dict(), "v": 99}),
    ("entries not a list of triples", _mangled("entries", [[1.0, "zz", 1]])),
    ("entries wrong shape", _mangled("entries", [5])),
    ("thumb of the wrong size", _mangled("previous", {"t": 0, "dhash": "00", "thumb": base64.b64encode(b"x" * 10).decode(), "digest": "", "boxes": []})),
    ("thumb not base64", _mangled("previous", {"t": 0, "dhash": "00", "thumb": "***", "digest": "", "boxes": []})),
    ("box with 3 numbers", _mangled("previous", {"t": 0, "dhash": "00", "thumb": base64.b64encode(bytes(64 * 48)).decode(), "digest": "", "boxes": [[1, 2, 3]]})),
    (
        "points and descriptors differ",
        _mangled("reference", {"t": 0, "size": [320, 240], "points": base64.b64encode(bytes(8 * 3)).decode(), "descriptors": base64.b64encode(bytes(32 * 2)).decode(), "dhash": "0"}),
    ),
    ("streaks missing", {k: v for k, v in SiteHistory().to_dict().items() if k != "streaks"}),
]


@pytest.mark.parametrize("name, data", BAD_DICTS, ids=[b[0] for b in BAD_DICTS])
def test_malformed_history_dict_is_a_value_error(name, data):
    with pytest.raises(ValueError):
        SiteHistory.from_dict(data)


@pytest.mark.parametrize("blob", [b"", b"not zlib", zlib.compress(b"not json"), zlib.compress(b"[1, 2]")])
def test_malformed_history_bytes_is_a_value_error(blob):
    with pytest.raises(ValueError):
        SiteHistory.from_bytes(blob)


def test_analysis_summary_is_json(busy_history, scene, detectors):
    a = analyse(live(scene, 7), detectors("yunet_s"), busy_history, now=600)
    data = json.loads(json.dumps(a.to_dict()))
    assert data["headcount"] == a.headcount == len(data["faces"]) >= 15
    assert set(a.flags) == {"dark", "blurred", "covered", "frozen", "moved", "replayed"}
    assert "history" not in data and data["detector"] == "yunet_s"
