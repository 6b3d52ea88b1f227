"""Camera analysis for bridge-point rooms and learners' webcams: plain Python + OpenCV.

Nothing here imports the hub (`server/`): the hub calls `analyse` / `one_face_check`
with the snapshot's bytes, a detector from `make_detector`, and the site's `SiteHistory`
it keeps in its own storage. See README.md for the defaults and their limits.
"""
from .analysis import ONE_FACE_REASONS, Analysis, analyse, one_face_check
from .decoding import MAX_PIXELS, ImageError, ImageInfo, decode_image, probe
from .detectors import (
    DETECTORS,
    KNOWN_MODELS,
    Face,
    FaceDetector,
    HaarDetector,
    YuNetDetector,
    make_detector,
    verify_model,
)
from .history import SiteHistory

__all__ = [
    "Analysis",
    "DETECTORS",
    "Face",
    "FaceDetector",
    "HaarDetector",
    "ImageError",
    "ImageInfo",
    "KNOWN_MODELS",
    "MAX_PIXELS",
    "ONE_FACE_REASONS",
    "SiteHistory",
    "YuNetDetector",
    "analyse",
    "decode_image",
    "make_detector",
    "one_face_check",
    "probe",
    "verify_model",
]
