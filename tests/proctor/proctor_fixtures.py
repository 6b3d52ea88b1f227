"""Fixtures for proctor/: the real photographs and models in ../shared (never copied here),
detectors built once per session, and synthetic frames made from the photographs.

Without ../shared the tests that need it skip; with the environment variable CI set they
fail instead. This is a plain module imported by the test files, not a conftest.py: the
other test folders import names from `conftest`, and a second module of that name
would shadow tests/conftest.py for them.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FACES = SHARED / "faces"
MODELS = SHARED / "models"
MODEL_FILES = {"yunet_s": "yunet_s_640_640.onnx", "yunet_n": "yunet_n_640_640.onnx"}

cv2.setNumThreads(1)


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def read_labels() -> list[dict]:
    """Rows of labels.csv, or [] when the photographs are absent (tests then skip)."""
    path = FACES / "labels.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [dict(r, faces=int(r["faces"]), faces_max=int(r["faces_max"])) for r in csv.DictReader(fh)]


LABELS = read_labels()
PHOTOS = [r["file"] for r in LABELS] or ["(photographs absent)"]
PORTRAITS = [r["file"] for r in LABELS if r["faces"] == r["faces_max"] == 1] or ["(photographs absent)"]
NO_PERSON = [r["file"] for r in LABELS if r["faces_max"] == 0] or ["(photographs absent)"]


@pytest.fixture(scope="session")
def labels() -> dict[str, dict]:
    need(FACES.is_dir() and LABELS, f"{FACES} with labels.csv is missing")
    return {r["file"]: r for r in LABELS}


@pytest.fixture(scope="session")
def photo_bytes(labels):
    def read(name: str) -> bytes:
        need(name in labels, f"photograph {name} is missing")
        return (FACES / name).read_bytes()

    return read


@pytest.fixture(scope="session")
def model_path():
    def path(variant: str) -> Path:
        p = MODELS / MODEL_FILES[variant]
        need(p.is_file(), f"{p} is missing")
        return p

    return path


@pytest.fixture(scope="session")
def detectors(model_path):
    """Detectors by name, built on first use."""
    from proctor import HaarDetector, YuNetDetector

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = HaarDetector() if name == "haar" else YuNetDetector(model_path(name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def haar():
    from proctor import HaarDetector

    return HaarDetector()


@pytest.fixture(scope="session")
def scene(photo_bytes):
    """A 640×480 BGR frame of a real group photograph, the room camera's "scene"."""
    image = cv2.imdecode(np.frombuffer(photo_bytes("ulfd_15.jpg"), np.uint8), cv2.IMREAD_COLOR)
    return cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)


def encode(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def live(image: np.ndarray, seed: int, sigma: float = 3.0) -> bytes:
    """The frame as a live camera would send it again: sensor noise, then JPEG."""
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return encode(np.clip(image + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def jpeg():
    return encode


@pytest.fixture(scope="session")
def live_frame():
    return live
