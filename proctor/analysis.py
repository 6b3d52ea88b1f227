"""One snapshot in, one verdict out: faces, headcount and the health of the camera.

`analyse` is what a hub worker calls for each room-camera or webcam snapshot;
`one_face_check` is the learner's selfie before a test. Neither keeps state: the site's
past comes in as a `SiteHistory` and the updated one goes out in the result.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from . import health as H
from .decoding import MAX_PIXELS, ImageError, decode_image
from .detectors import Face, FaceDetector
from .history import PreviousFrame, Reference, SiteHistory


@dataclass
class Analysis:
    faces: list[Face]  #: boxes in the original image's pixels, best score first
    headcount: int
    width: int  #: of the original image (after EXIF rotation)
    height: int
    dark: bool
    blurred: bool
    covered: bool
    frozen: bool  #: same picture as the previous snapshot
    moved: bool  #: the view no longer matches the site's reference view
    replayed: bool  #: an old picture came back, or a face has not moved for minutes
    luminance: float
    sharpness: float
    contrast: float
    flat_fraction: float
    dominant_fraction: float
    frame_difference: float | None  #: vs the previous snapshot; None for the first one
    move_inliers: int | None  #: None when there was no reference or too little texture
    move_shift: float | None
    move_rotation: float | None
    move_scale: float | None
    replay_reason: str | None  #: "history" (an old frame came back) or "still_faces"
    replay_age_s: float | None  #: how old the matched frame was
    detector: str
    approximate: bool  #: counts from the Haar fallback
    history: SiteHistory = field(repr=False)

    @property
    def flags(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in ("dark", "blurred", "covered", "frozen", "moved", "replayed")}

    def to_dict(self) -> dict:
        """JSON-safe summary for the hub (without the history)."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("faces", "history")}
        data["faces"] = [{"box": list(f.box), "score": round(f.score, 3)} for f in self.faces]
        return data


def analyse(
    jpeg_bytes: bytes,
    detector: FaceDetector,
    history: SiteHistory | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    now: float | None = None,
) -> Analysis:
    """Count the faces in a snapshot and check the camera, against the site's history.

    Raises ImageError (code + Vietnamese message) for bytes that are not a complete JPEG
    or PNG within `max_pixels`; the history is then unchanged. `now` is the snapshot's
    time in epoch seconds (default: the clock). The given history is not modified.
    """
    now = time.time() if now is None else float(now)
    image, scale, width, height = _load(jpeg_bytes, detector, max_pixels)
    faces = [_rescale(f, scale) for f in detector.detect(image)]
    small = H.health_image(image)
    gray = H.to_gray(small)
    frame = H.assess(small, gray)
    past = history.copy() if history is not None else SiteHistory()
    seen = _compare(past, frame, gray, faces, hashlib.blake2b(bytes(jpeg_bytes), digest_size=12).hexdigest(), now)
    change = seen.change
    return Analysis(
        faces=faces,
        headcount=len(faces),
        width=width,
        height=height,
        dark=frame.dark,
        blurred=frame.blurred,
        covered=frame.covered,
        frozen=seen.frozen,
        moved=change is not None and change.moved,
        replayed=seen.replay_reason is not None,
        luminance=round(frame.luminance, 2),
        sharpness=round(frame.sharpness, 1),
        contrast=round(frame.contrast, 2),
        flat_fraction=round(frame.flat_fraction, 3),
        dominant_fraction=round(frame.dominant_fraction, 3),
        frame_difference=None if seen.difference is None else round(seen.difference, 3),
        move_inliers=None if change is None else change.inliers,
        move_shift=_rounded(change and change.shift, 4),
        move_rotation=_rounded(change and change.rotation, 2),
        move_scale=_rounded(change and change.scale, 4),
        replay_reason=seen.replay_reason,
        replay_age_s=seen.replay_age,
        detector=detector.name,
        approximate=detector.approximate,
        history=past,
    )


@dataclass(frozen=True)
class _Comparison:
    frozen: bool
    difference: float | None
    change: H.ViewChange | None
    replay_reason: str | None
    replay_age: float | None


def _compare(past: SiteHistory, frame: H.FrameHealth, gray: np.ndarray, faces: list[Face], digest: str, now: float) -> _Comparison:
    """Compare the frame with the site's past, then record it there (`past` is a copy)."""
    thumb, code = H.thumbnail(gray), H.dhash(gray)
    boxes = tuple(f.box for f in faces)
    prev = past.previous
    difference = None if prev is None else H.frame_difference(thumb, prev.thumb)
    frozen = prev is not None and (prev.digest == digest or H.is_frozen(difference))
    still = prev is not None and H.boxes_still(prev.boxes, boxes) and difference < H.STILL_DIFF_MAX

    change = points = descriptors = None
    if frame.usable:
        points, descriptors = H.orb_features(gray)
        if (ref := past.reference) is not None:
            change = H.view_change(ref.points, ref.descriptors, ref.size, points, descriptors)
    # Replaying a picture only serves to fake presence, so only frames with faces count:
    # an empty room that looks as it did before someone stood in front of it is not one.
    replayed, age = H.find_replay(code, past.entries, now) if frame.usable and faces else (False, None)

    past.frozen_streak = past.frozen_streak + 1 if frozen else 0
    past.moved_streak = past.moved_streak + 1 if change is not None and change.moved else 0
    past.still_streak = past.still_streak + 1 if still else 0
    past.record(H.HashEntry(now, code, frame.usable))
    past.previous = PreviousFrame(now, code, thumb, digest, boxes)
    if past.reference is None and points is not None and not frame.blurred and len(points) >= H.MOVED_MIN_FEATURES:
        past.reference = Reference(now, (gray.shape[1], gray.shape[0]), points, descriptors, code)

    reason = "history" if replayed else ("still_faces" if past.still_streak >= H.STILL_MIN_STREAK else None)
    return _Comparison(frozen, difference, change, reason, age)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _load(data: bytes, detector: FaceDetector, max_pixels: int) -> tuple[np.ndarray, float, int, int]:
    """Decode, letting libjpeg shrink big frames as far as the detector allows.

    Returns the image, the factor from its pixels to the original's, and the original size
    (width and height as displayed, i.e. after EXIF rotation).
    """
    enlarge = getattr(detector, "upscale", False)
    image, info = decode_image(data, max_pixels=max_pixels, min_side=None if enlarge else detector.input_size)
    h, w = image.shape[:2]
    scale = max(info.width, info.height) / max(h, w)
    if (w >= h) == (info.width >= info.height):
        return image, scale, info.width, info.height
    return image, scale, info.height, info.width


def _rescale(face: Face, scale: float) -> Face:
    if scale == 1.0:
        return face
    return Face(tuple(round(v * scale) for v in face.box), face.score)


# The learner's selfie -------------------------------------------------------------------

#: A selfie face must be this sure (YuNet gives real faces 0.91–0.95 and animal faces
#: up to 0.88 on the photographs).
SELFIE_MIN_SCORE = 0.9
#: … and at least this share of the picture's width, so the learner can be recognised.
SELFIE_MIN_FACE_WIDTH = 0.08
#: Any other sure face counts as a second person; a less sure one when it is at least
#: this share of the main face's area (someone beside the learner, half turned away).
SELFIE_OTHER_FACE_AREA = 0.25

#: Reasons `one_face_check` gives, with the Vietnamese the learner sees.
ONE_FACE_REASONS = {
    "ok": "Ảnh hợp lệ.",
    "no_face": "Không thấy khuôn mặt; hãy nhìn thẳng vào camera.",
    "many_faces": "Có nhiều hơn một khuôn mặt; chỉ học viên được ở trong khung hình.",
    "face_too_small": "Khuôn mặt quá nhỏ; hãy ngồi gần camera hơn.",
    "dark": "Ảnh quá tối; hãy bật đèn hoặc ngồi nơi đủ sáng.",
    "covered": "Camera đang bị che; hãy bỏ vật che ống kính.",
}


def one_face_check(jpeg: bytes, detector: FaceDetector, *, max_pixels: int = MAX_PIXELS) -> tuple[bool, str]:
    """Does the learner's selfie show exactly one clear face? Returns (ok, reason code).

    Reason codes are the keys of ONE_FACE_REASONS, or an ImageError code for bytes that
    are not a usable image (never raises for bad input).
    """
    try:
        image, _, _, _ = _load(jpeg, detector, max_pixels)
    except ImageError as exc:
        return False, exc.code
    faces = detector.detect(image)
    sure = [f for f in faces if f.score >= SELFIE_MIN_SCORE]
    if not sure:
        frame = H.assess(H.health_image(image))
        return False, "dark" if frame.dark else "covered" if frame.covered else "no_face"
    main = max(sure, key=lambda f: f.area)
    others = [f for f in faces if f is not main and (f in sure or f.area >= SELFIE_OTHER_FACE_AREA * main.area)]
    if others:
        return False, "many_faces"
    if main.box[2] < SELFIE_MIN_FACE_WIDTH * image.shape[1]:
        return False, "face_too_small"
    return True, "ok"
