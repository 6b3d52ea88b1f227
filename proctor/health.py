"""Image health: pure functions over numpy arrays, thresholds as named constants.

Everything is measured on a grey copy whose longest side is `HEALTH_SIDE`, so the values
do not depend on the camera's resolution. The thresholds were set on synthetic cases
(a real photo at 5–15 % brightness, Gaussian blur σ ≥ 3 at 640 px, flat grey, a skin-toned
patch over 93 % of the frame) and checked against the 26 real photographs in
`shared/faces/`, none of which they flag; the margins are in the comments.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Longest side of the grey copy every measure is taken on ("normalised for size").
HEALTH_SIDE = 320
#: Thumbnail kept as the previous frame's signature (3 kB as uint8).
THUMB_SIZE = (64, 48)

#: Mean luminance (0–255) below which the room is too dark. Real photos: ≥ 38.6; a real
#: photo at 10 % brightness: ≤ 18. YuNet loses the small faces of a class photo below
#: ~13 (noise-free darkening; real low light is noisier, hence the margin).
DARK_MEAN_MAX = 25.0
#: Variance of the Laplacian at HEALTH_SIDE below which the picture is blurred. Real
#: photos: ≥ 188; σ=3 blur at 640 px: ≤ 72; σ=5: ≤ 16.
BLUR_LAPLACIAN_MIN = 50.0
#: Grey-level standard deviation below which the frame is uniform (lens capped, grey
#: screen). Real photos: ≥ 31.
COVERED_STD_MAX = 10.0
#: A frame is also covered when this share of it is flat … (real photos: ≤ 0.57;
#: a hand-like patch over 93 %: ≥ 0.93)
COVERED_FLAT_MIN = 0.85
#: … and one colour fills this share of it (real photos: ≤ 0.53; the patch: 0.77).
COVERED_DOMINANT_MIN = 0.6
#: Sobel magnitude under which a pixel counts as flat.
FLAT_GRADIENT_MAX = 8.0
#: Per-channel distance to the median colour under which a pixel shares the dominant colour.
DOMINANT_TOLERANCE = 20

#: Mean absolute difference of the 64×48 thumbnails below which a frame is the same as
#: the previous one. Two live frames of a still scene differ by ≥ 0.13 even with sensor
#: noise of σ = 0.5 (≈ 0.3 at σ = 3); the same frame re-encoded at quality 85 then 84
#: gives 0.09, and a stalled camera or encoder re-sends identical pixels (0.0).
FROZEN_DIFF_MAX = 0.1

#: ORB features kept for the site's reference view (~12 kB serialised).
ORB_FEATURES = 300
#: ORB needs room for its 31-px patches on a few pyramid levels.
ORB_MIN_SIDE = 64
#: Fewer RANSAC inliers than this and the view no longer matches the reference at all.
MOVED_MIN_INLIERS = 12
#: With fewer features than this (a bare wall, a dark room) the comparison is not made.
MOVED_MIN_FEATURES = 40
#: The view's centre moved by more than this share of the diagonal (a real camera
#: knocked aside; JPEG noise alone gives < 0.001).
MOVED_SHIFT_MAX = 0.03
#: Degrees of rotation, and relative zoom, above which the camera moved.
MOVED_ROTATION_MAX = 2.0
MOVED_SCALE_MAX = 0.05

#: dHash bits (of 64) within which two frames are the same picture. The same frame
#: re-encoded with noise: ≤ 4; two different photographs: ≥ 19.
REPLAY_MAX_DISTANCE = 5
#: Bits by which some frame in between must differ for a match to count as a replay (so a
#: static room that looks like itself ten minutes ago is not flagged).
REPLAY_SCENE_CHANGE = 10
#: A matched frame must be at least this old: a person walking past the camera for one
#: snapshot and the room looking as before is not a replay.
REPLAY_MIN_AGE_S = 120.0

#: "Still with faces" (a photo held up to a webcam): at most this many faces …
STILL_MAX_FACES = 3
#: … each face within this share of its width of where it was …
STILL_BOX_TOLERANCE = 0.10
#: … the frame otherwise almost unchanged …
STILL_DIFF_MAX = 2.0
#: … for this many consecutive snapshots.
STILL_MIN_STREAK = 6


@dataclass(frozen=True)
class FrameHealth:
    """The measures of one frame and the flags they raise."""

    luminance: float  #: mean grey level, 0–255
    sharpness: float  #: variance of the Laplacian at HEALTH_SIDE
    contrast: float  #: grey-level standard deviation
    flat_fraction: float  #: share of pixels with almost no gradient
    dominant_fraction: float  #: share of pixels near the median colour
    dark: bool
    blurred: bool
    covered: bool

    @property
    def usable(self) -> bool:
        """Good enough to serve as a reference or a replay witness."""
        return not (self.dark or self.covered)


def health_image(image_bgr: np.ndarray) -> np.ndarray:
    """The frame shrunk (never enlarged) to HEALTH_SIDE on its longest side, with INTER_AREA."""
    h, w = image_bgr.shape[:2]
    scale = HEALTH_SIDE / max(h, w)
    if scale >= 1.0:
        return image_bgr
    return cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def to_gray(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr


def luminance(gray: np.ndarray) -> float:
    return float(gray.mean())


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for edges in focus, near 0 for blur or a blank frame."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def contrast(gray: np.ndarray) -> float:
    return float(gray.std())


def flat_fraction(gray: np.ndarray) -> float:
    smooth = cv2.GaussianBlur(gray, (3, 3), 0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    return float((cv2.magnitude(gx, gy) < FLAT_GRADIENT_MAX).mean())


def dominant_fraction(image_bgr: np.ndarray) -> float:
    """Share of the frame within DOMINANT_TOLERANCE of its median colour (a hand, a cap, a wall)."""
    small = cv2.resize(image_bgr, THUMB_SIZE, interpolation=cv2.INTER_AREA).reshape(-1, image_bgr.shape[2] if image_bgr.ndim == 3 else 1)
    median = np.median(small, axis=0)
    return float((np.abs(small.astype(np.int16) - median).max(axis=1) < DOMINANT_TOLERANCE).mean())


def is_dark(mean_luminance: float) -> bool:
    return mean_luminance < DARK_MEAN_MAX


def is_covered(std: float, flat: float, dominant: float) -> bool:
    return std < COVERED_STD_MAX or (flat >= COVERED_FLAT_MIN and dominant >= COVERED_DOMINANT_MIN)


def is_blurred(laplacian_variance: float) -> bool:
    return laplacian_variance < BLUR_LAPLACIAN_MIN


def assess(small_bgr: np.ndarray, gray: np.ndarray | None = None) -> FrameHealth:
    """All single-frame measures of a frame already shrunk by `health_image`.

    Blur is only reported on a frame that is neither dark nor covered: those have no
    edges either, and saying "blurred" would send the operator to the wrong fix.
    """
    gray = to_gray(small_bgr) if gray is None else gray
    lum, sharp, std = luminance(gray), sharpness(gray), contrast(gray)
    flat, dom = flat_fraction(gray), dominant_fraction(small_bgr)
    dark, covered = is_dark(lum), is_covered(std, flat, dom)
    return FrameHealth(lum, sharp, std, flat, dom, dark, is_blurred(sharp) and not (dark or covered), covered)


# Frame-to-frame comparison ------------------------------------------------------------


def thumbnail(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, THUMB_SIZE, interpolation=cv2.INTER_AREA)


def frame_difference(thumb_a: np.ndarray, thumb_b: np.ndarray) -> float:
    """Mean absolute grey-level difference of two thumbnails (inf when their sizes differ)."""
    if thumb_a.shape != thumb_b.shape:
        return math.inf
    return float(cv2.absdiff(thumb_a, thumb_b).mean())


def is_frozen(difference: float) -> bool:
    return difference < FROZEN_DIFF_MAX


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash: is each cell of a 9×8 grey grid brighter than its left neighbour."""
    grid = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (grid[:, 1:] > grid[:, :-1]).flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class HashEntry:
    t: float  #: seconds since the epoch
    dhash: int
    usable: bool  #: neither dark nor covered


def find_replay(code: int, entries: Sequence[HashEntry], now: float) -> tuple[bool, float | None]:
    """Is this frame an old one coming back? Returns (replayed, age of the matched frame).

    The most recent past frame within REPLAY_MAX_DISTANCE is the match. It is a replay
    when that frame is not the previous one, is at least REPLAY_MIN_AGE_S old, and some
    usable frame since then differed by REPLAY_SCENE_CHANGE bits: the scene changed and
    then came back exactly. A static scene always matches its previous frame and is never
    flagged; a looping video is flagged where it loops back.
    """
    for i in range(len(entries) - 1, -1, -1):
        entry = entries[i]
        if entry.usable and hamming(code, entry.dhash) <= REPLAY_MAX_DISTANCE:
            break
    else:
        return False, None
    age = now - entry.t
    if i == len(entries) - 1 or age < REPLAY_MIN_AGE_S:
        return False, None
    changed = any(e.usable and hamming(code, e.dhash) >= REPLAY_SCENE_CHANGE for e in entries[i + 1 :])
    return changed, (age if changed else None)


def boxes_still(
    previous: Sequence[tuple[int, int, int, int]], current: Sequence[tuple[int, int, int, int]]
) -> bool:
    """Same number of faces (1..STILL_MAX_FACES), each within STILL_BOX_TOLERANCE of its width
    from a face of the previous frame and of about the same size."""
    if not 1 <= len(current) <= STILL_MAX_FACES or len(previous) != len(current):
        return False
    for x, y, w, h in current:
        cx, cy = x + w / 2, y + h / 2
        if not any(
            abs(cx - (px + pw / 2)) <= STILL_BOX_TOLERANCE * w
            and abs(cy - (py + ph / 2)) <= STILL_BOX_TOLERANCE * w
            and abs(w - pw) <= STILL_BOX_TOLERANCE * w
            for px, py, pw, ph in previous
        ):
            return False
    return True


# The site's reference view --------------------------------------------------------------


def orb_features(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints (float32 N×2) and descriptors (uint8 N×32) of a HEALTH_SIDE grey frame."""
    if min(gray.shape[:2]) < ORB_MIN_SIDE:  # ORB's pyramid fails on slivers
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    orb = cv2.ORB_create(nfeatures=ORB_FEATURES, fastThreshold=10)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors


@dataclass(frozen=True)
class ViewChange:
    """How the current view relates to the reference: None values when it was not measurable."""

    inliers: int
    shift: float | None  #: displacement of the view's centre / diagonal
    rotation: float | None  #: degrees
    scale: float | None  #: zoom factor
    moved: bool


def view_change(
    ref_points: np.ndarray,
    ref_descriptors: np.ndarray,
    ref_size: tuple[int, int],
    points: np.ndarray,
    descriptors: np.ndarray,
) -> ViewChange | None:
    """Match ORB features against the reference and fit a rotation+scale+shift with RANSAC.

    Moved when the fitted motion exceeds the MOVED_* limits, or when the view matches
    nothing of the reference although both have texture (the camera points elsewhere,
    or people fill the whole view: the hub should wait for a second moved frame).
    Returns None when either frame has too little texture to tell.
    """
    if len(ref_descriptors) < MOVED_MIN_FEATURES or len(descriptors) < MOVED_MIN_FEATURES:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(ref_descriptors, descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    matrix, inliers = None, None
    if len(good) >= MOVED_MIN_INLIERS:
        matrix, inliers = cv2.estimateAffinePartial2D(
            ref_points[[m.queryIdx for m in good]],
            points[[m.trainIdx for m in good]],
            method=cv2.RANSAC,
            ransacReprojThreshold=3.0,
        )
    count = 0 if inliers is None else int(inliers.sum())
    if matrix is None or count < MOVED_MIN_INLIERS:
        return ViewChange(count, None, None, None, True)
    w, h = ref_size
    centre = np.array([w / 2, h / 2, 1.0])
    dx, dy = matrix @ centre - centre[:2]
    shift = float(math.hypot(dx, dy) / math.hypot(w, h))
    rotation = float(math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])))
    scale = float(math.hypot(matrix[0, 0], matrix[1, 0]))
    moved = shift > MOVED_SHIFT_MAX or abs(rotation) > MOVED_ROTATION_MAX or abs(scale - 1) > MOVED_SCALE_MAX
    return ViewChange(count, shift, rotation, scale, moved)
