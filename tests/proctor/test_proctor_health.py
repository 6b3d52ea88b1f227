"""Single-frame health: real photographs are not flagged; dark, blurred and covered frames are."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from proctor_fixtures import PHOTOS, encode, labels, photo_bytes  # noqa: F401  (fixtures)

from proctor import FaceDetector, analyse
from proctor import health as H
from proctor.decoding import decode_image


class NoFaces(FaceDetector):
    """Health does not depend on the detector; this one keeps the tests fast."""

    name = "none"

    def detect(self, image_bgr):
        return []


NONE = NoFaces()


def frame(photo_bytes, name: str, width: int = 640) -> np.ndarray:
    image, _ = decode_image(photo_bytes(name))
    h, w = image.shape[:2]
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("photo", PHOTOS)
def test_real_photographs_are_healthy(photo_bytes, photo):
    a = analyse(photo_bytes(photo), NONE)
    assert not (a.dark or a.blurred or a.covered), a.to_dict()
    assert not (a.frozen or a.moved or a.replayed)  # no history: nothing to compare with


SAMPLES = ["ulfd_1.jpg", "fr_obama.jpg", "sk_coffee.png", "fr_obama-240p.jpg", "dlib_2008_001009.jpg", "ulfd_2.jpg"]


@pytest.mark.parametrize("photo", SAMPLES)
@pytest.mark.parametrize("brightness", [0.05, 0.10])
def test_dark(photo_bytes, photo, brightness):
    dim = (frame(photo_bytes, photo).astype(np.float32) * brightness).astype(np.uint8)
    a = analyse(encode(dim), NONE)
    assert a.dark and not a.blurred and a.luminance < H.DARK_MEAN_MAX


@pytest.mark.parametrize("photo", SAMPLES)
@pytest.mark.parametrize("sigma", [4, 8])
def test_blurred(photo_bytes, photo, sigma):
    soft = cv2.GaussianBlur(frame(photo_bytes, photo), (0, 0), sigma)
    a = analyse(encode(soft), NONE)
    assert a.blurred and not a.dark and not a.covered and a.sharpness < H.BLUR_LAPLACIAN_MIN


def hand_over(image: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """A skin-toned, out-of-focus patch (a palm on the lens) over `share` of the width."""
    h, w = image.shape[:2]
    ramp = np.linspace(0.8, 1.1, w, dtype=np.float32)[None, :, None]
    skin = np.array([90, 125, 175], np.float32)[None, None, :] * ramp
    skin = skin + np.random.default_rng(seed).normal(0, 3, (h, w, 3))
    out = image.copy()
    cut = int(w * share)
    out[:, :cut] = np.clip(skin[:, :cut], 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize(
    "make, dark",
    [
        (lambda img: np.full_like(img, 128), False),
        (lambda img: np.full_like(img, 0), True),
        (lambda img: np.full_like(img, 245), False),
        (lambda img: np.clip(np.full(img.shape, 60.0) + np.random.default_rng(3).normal(0, 4, img.shape), 0, 255).astype(np.uint8), False),
        (lambda img: hand_over(img, 0.93), False),
        (lambda img: hand_over(img, 0.97, seed=1), False),
    ],
    ids=["grey", "black", "white", "grey-noisy", "hand-93%", "hand-97%"],
)
@pytest.mark.parametrize("photo", ["ulfd_1.jpg", "fr_obama.jpg", "sk_coffee.png"])
def test_covered(photo_bytes, photo, make, dark):
    a = analyse(encode(make(frame(photo_bytes, photo))), NONE)
    assert a.covered and a.dark == dark and not a.blurred


@pytest.mark.parametrize("photo", ["ulfd_1.jpg", "ulfd_15.jpg", "fr_two_people.jpg"])
def test_hand_over_half_the_lens_is_not_covered(photo_bytes, photo):
    a = analyse(encode(hand_over(frame(photo_bytes, photo), 0.5)), NONE)
    assert not a.covered


@pytest.mark.parametrize(
    "lum, lap, std, flat, dom, expect",
    [
        (100.0, 500.0, 60.0, 0.2, 0.1, (False, False, False)),
        (10.0, 5.0, 3.0, 0.9, 1.0, (True, False, True)),  # lights off: dark and uniform
        (100.0, 20.0, 50.0, 0.3, 0.2, (False, True, False)),
        (120.0, 0.0, 0.0, 1.0, 1.0, (False, False, True)),
        (120.0, 60.0, 30.0, 0.9, 0.8, (False, False, True)),  # flat and one colour
        (120.0, 60.0, 30.0, 0.9, 0.3, (False, False, False)),  # flat but many colours
    ],
)
def test_flag_rules(lum, lap, std, flat, dom, expect):
    dark, covered = H.is_dark(lum), H.is_covered(std, flat, dom)
    blurred = H.is_blurred(lap) and not (dark or covered)
    assert (dark, blurred, covered) == expect


def test_health_is_measured_at_a_fixed_size(photo_bytes):
    """The same scene at 640 and 1280 px gives the same verdict (normalised for size)."""
    small, large = frame(photo_bytes, "ulfd_15.jpg", 640), frame(photo_bytes, "ulfd_15.jpg", 1280)
    a, b = analyse(encode(small), NONE), analyse(encode(large), NONE)
    assert a.flags == b.flags
    assert abs(a.sharpness - b.sharpness) < 0.35 * a.sharpness


@pytest.mark.parametrize(
    "a, b, distance",
    [(0, 0, 0), (0, 1, 1), (0xFFFF_FFFF_FFFF_FFFF, 0, 64), (0b1011, 0b0110, 3)],
)
def test_hamming(a, b, distance):
    assert H.hamming(a, b) == distance


def test_dhash_tells_photographs_apart_and_survives_reencoding(photo_bytes):
    hashes = {}
    for name in PHOTOS:
        gray = H.to_gray(H.health_image(frame(photo_bytes, name)))
        hashes[name] = H.dhash(gray)
        again, _ = decode_image(encode(frame(photo_bytes, name), 60))
        assert H.hamming(hashes[name], H.dhash(H.to_gray(H.health_image(again)))) <= H.REPLAY_MAX_DISTANCE
    names = list(hashes)
    closest = min(H.hamming(hashes[x], hashes[y]) for i, x in enumerate(names) for y in names[i + 1 :])
    assert closest > 2 * H.REPLAY_MAX_DISTANCE
