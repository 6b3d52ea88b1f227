"""Face detectors: the interface, the model check and fallback, and counts on real photographs."""
from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from proctor_fixtures import (  # noqa: F401  (fixtures)
    FACES,
    LABELS,
    NO_PERSON,
    PHOTOS,
    PORTRAITS,
    detectors,
    haar,
    jpeg,
    labels,
    model_path,
    photo_bytes,
)

import proctor
from proctor import DETECTORS, Face, FaceDetector, HaarDetector, YuNetDetector, make_detector, verify_model
from proctor.detectors import tile_grid


def test_proctor_imports_nothing_from_the_hub():
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, proctor; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('server', 'flask', 'flask_socketio', 'sqlalchemy')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)


def test_registry_holds_both_detectors_behind_one_base():
    assert DETECTORS == {"yunet": YuNetDetector, "haar": HaarDetector}
    assert all(issubclass(cls, FaceDetector) for cls in DETECTORS.values())
    assert HaarDetector.approximate and not YuNetDetector.approximate


@pytest.mark.parametrize("variant", ["yunet_s", "yunet_n"])
def test_known_models_verify(model_path, variant):
    path = model_path(variant)
    assert verify_model(path) and verify_model(str(path))
    detector = make_detector(path, score_threshold=0.8, min_neighbors=5)  # Haar's option is dropped
    assert isinstance(detector, YuNetDetector) and detector.name == variant and not detector.approximate


@pytest.mark.parametrize(
    "case",
    ["none", "missing", "altered", "directory"],
)
def test_make_detector_falls_back_to_haar(tmp_path, model_path, case):
    if case == "none":
        path = None
    elif case == "missing":
        path = tmp_path / "yunet.onnx"
    elif case == "altered":
        path = tmp_path / "yunet.onnx"
        data = bytearray(model_path("yunet_s").read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    else:
        path = tmp_path
    assert not verify_model(path)
    detector = make_detector(path, score_threshold=0.8, input_size=640)  # YuNet's option is dropped
    assert isinstance(detector, HaarDetector)
    assert detector.approximate and detector.name == "haar-alt2"


def test_haar_runs_on_a_portrait_and_is_marked_approximate(haar, photo_bytes):
    a = proctor.analyse(photo_bytes("fr_obama.jpg"), haar)
    assert a.approximate and a.detector == "haar-alt2"
    assert a.headcount == 1 and all(f.score == 1.0 for f in a.faces)


def test_blank_image_has_no_faces(detectors, haar):
    blank = np.full((480, 640, 3), 127, np.uint8)
    assert detectors("yunet_s").detect(blank) == []
    assert haar.detect(blank) == []


@functools.cache
def _counts(detector_name: str, detector) -> dict[str, int]:
    """Headcount of every photograph through the full pipeline (decode → detect)."""
    return {r["file"]: proctor.analyse((FACES / r["file"]).read_bytes(), detector).headcount for r in LABELS}


@pytest.mark.parametrize("variant", ["yunet_s", "yunet_n"])
def test_yunet_counts_exactly_on_at_least_90_percent_of_photographs(labels, detectors, variant):
    counts = _counts(variant, detectors(variant))
    wrong = {f: (labels[f]["faces"], n) for f, n in counts.items() if not labels[f]["faces"] <= n <= labels[f]["faces_max"]}
    assert len(labels) == 26
    assert len(counts) - len(wrong) >= 0.9 * len(counts), wrong


@pytest.mark.parametrize("variant", ["yunet_s", "yunet_n"])
@pytest.mark.parametrize("photo", PHOTOS)
def test_yunet_count_within_two_on_every_photograph(labels, detectors, variant, photo):
    n = _counts(variant, detectors(variant))[photo]
    assert labels[photo]["faces"] - 2 <= n <= labels[photo]["faces_max"] + 2


@pytest.mark.parametrize("variant", ["yunet_s", "yunet_n"])
@pytest.mark.parametrize("photo", PORTRAITS + NO_PERSON)
def test_one_face_check_on_portraits_and_empty_photographs(labels, detectors, photo_bytes, variant, photo):
    ok, reason = proctor.one_face_check(photo_bytes(photo), detectors(variant))
    if labels[photo]["faces"] == 1:
        assert (ok, reason) == (True, "ok")
    else:
        assert (ok, reason) == (False, "no_face")


def test_one_face_check_refuses_two_people(detectors, photo_bytes):
    assert proctor.one_face_check(photo_bytes("fr_two_people.jpg"), detectors("yunet_s")) == (False, "many_faces")


def test_one_face_check_refuses_a_tiny_face(detectors, photo_bytes, jpeg):
    import cv2

    def load(name):
        return cv2.imdecode(np.frombuffer(photo_bytes(name), np.uint8), cv2.IMREAD_COLOR)

    # The learner far back in an office: the face is ~4 % of the picture's width.
    canvas = cv2.resize(load("ulfd_5_office_crop.jpg"), (1600, 1200))
    canvas[500:800, 700:940] = cv2.resize(load("fr_obama.jpg"), (240, 300), interpolation=cv2.INTER_AREA)
    assert proctor.one_face_check(jpeg(canvas), detectors("yunet_s")) == (False, "face_too_small")


def test_faces_are_boxes_in_original_pixels(detectors, photo_bytes):
    """fr_biden.jpg is 970×2204: decoded at half size, boxes must come back full size."""
    a = proctor.analyse(photo_bytes("fr_biden.jpg"), detectors("yunet_s"))
    assert (a.width, a.height) == (970, 2204) and a.headcount == 1
    (face,) = a.faces
    x, y, w, h = face.box
    assert isinstance(face, Face) and 0.8 <= face.score <= 1.0
    assert 0 <= x < x + w <= 970 and 0 <= y < y + h <= 2204 and w > 200


@pytest.mark.parametrize(
    "options, at_least",
    [({}, 51), ({"input_size": 1280, "upscale": True}, 52), ({"input_size": 1280, "upscale": True, "tiles": 2}, 52)],
)
def test_class_photo_settings(model_path, photo_bytes, options, at_least):
    detector = YuNetDetector(model_path("yunet_s"), **options)
    assert at_least <= proctor.analyse(photo_bytes("ulfd_1.jpg"), detector).headcount <= 52


@pytest.mark.parametrize("width, height, tiles", [(1280, 720, 2), (640, 480, 3), (1000, 999, 2)])
def test_tiles_cover_the_picture(width, height, tiles):
    grid = tile_grid(width, height, tiles)
    assert len(grid) == tiles * tiles
    covered = np.zeros((height, width), bool)
    for x, y, w, h in grid:
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
        covered[y : y + h, x : x + w] = True
    assert covered.all()


def test_a_model_file_replaced_in_place_is_verified_again(tmp_path, model_path):
    """The model's hash is remembered per version of the file, not per path."""
    import os

    path = tmp_path / "yunet.onnx"
    good = model_path("yunet_s").read_bytes()
    path.write_bytes(good)
    assert verify_model(path)
    bad = bytearray(good)
    bad[-1] ^= 1
    path.write_bytes(bytes(bad))
    os.utime(path, ns=(1, 1))  # even with a clock too coarse to tell the two writes apart
    assert not verify_model(path)
    path.write_bytes(good)
    assert verify_model(path)
