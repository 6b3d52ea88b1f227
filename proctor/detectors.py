"""Face detectors behind one small interface, and the choice between them.

YuNet (a 230 kB ONNX network run by `cv2.FaceDetectorYN`) is the real detector; the Haar
cascade shipped inside the OpenCV 4.x wheel is the fallback when the model file is
missing or altered, and says so (`approximate = True`). Detectors are registered by name
so the hub can pick one from configuration. A detector holds OpenCV state that is not
thread-safe: make one per worker thread or process.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: sha256 of the YuNet exports we have measured (see /work/shared/models/README.md).
KNOWN_MODELS = {
    "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4": "yunet_s",  # = opencv_zoo 2023mar
    "25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31": "yunet_n",
}

#: Longest side of the picture the detector sees. 640 keeps 25+ snapshots/s per core and
#: finds faces down to ~16 px; rooms whose faces are smaller need 1280 (see README).
DEFAULT_INPUT_SIZE = 640
#: YuNet confidence: 0.8 was best on the 26 labelled photographs (0.7 adds animal faces,
#: 0.9 loses small faces in class photos).
DEFAULT_SCORE_THRESHOLD = 0.8
DEFAULT_NMS_THRESHOLD = 0.3
#: Overlap between neighbouring tiles, as a fraction of the tile, when tiling is on.
TILE_OVERLAP = 0.25

# FaceDetectorYN rows: x, y, w, h, five landmarks (x, y), score.
_X_COLUMNS = [0, 4, 6, 8, 10, 12]
_Y_COLUMNS = [1, 5, 7, 9, 11, 13]


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  #: x, y, width, height in the original image's pixels
    score: float  #: detector confidence in [0, 1]; Haar has none and reports 1.0

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


class FaceDetector:
    """What the rest of `proctor` relies on: `detect`, `name`, `approximate`, `input_size`."""

    kind: ClassVar[str] = ""  #: registry key
    approximate: ClassVar[bool] = False  #: True when counts are known to be unreliable
    name: str = ""
    input_size: int = DEFAULT_INPUT_SIZE

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} input={self.input_size}>"


#: Detector classes by `kind`, filled by `@register`.
DETECTORS: dict[str, type[FaceDetector]] = {}


def register(cls: type[FaceDetector]) -> type[FaceDetector]:
    DETECTORS[cls.kind] = cls
    return cls


def _scale_for(shape: tuple[int, ...], input_size: int, upscale: bool) -> float:
    scale = input_size / max(shape[0], shape[1])
    return scale if scale < 1.0 or upscale else 1.0


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _to_faces(rows: np.ndarray, scale: float, shape: tuple[int, ...]) -> list[Face]:
    """Detector rows (x, y, w, h, ..., score) at `scale` → Face boxes clipped to the image."""
    height, width = shape[:2]
    faces = []
    for row in rows:
        if not np.isfinite(row[:4]).all():  # YuNet on a sliver of a picture can emit NaN
            continue
        x0, y0 = max(0.0, row[0] / scale), max(0.0, row[1] / scale)
        x1, y1 = min(width, (row[0] + row[2]) / scale), min(height, (row[1] + row[3]) / scale)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            faces.append(Face((round(x0), round(y0), round(x1 - x0), round(y1 - y0)), float(row[-1])))
    faces.sort(key=lambda f: -f.score)
    return faces


def tile_grid(width: int, height: int, tiles: int, overlap: float = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles (x, y, w, h) covering a width×height picture in a tiles×tiles grid."""
    tw = int(np.ceil(width / (tiles - (tiles - 1) * overlap)))
    th = int(np.ceil(height / (tiles - (tiles - 1) * overlap)))
    xs = sorted({min(round(i * tw * (1 - overlap)), width - tw) for i in range(tiles)})
    ys = sorted({min(round(j * th * (1 - overlap)), height - th) for j in range(tiles)})
    return [(x, y, tw, th) for y in ys for x in xs]


def _nms(rows: np.ndarray, threshold: float) -> np.ndarray:
    if len(rows) < 2:
        return rows
    keep = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, -1].tolist(), 0.0, threshold)
    return rows[np.asarray(keep, dtype=int).reshape(-1)]


@register
class YuNetDetector(FaceDetector):
    """YuNet through `cv2.FaceDetectorYN`: accurate down to ~16 px faces at 640 px.

    `input_size` is the longest side of the picture YuNet sees: larger frames are shrunk
    to it, smaller ones are enlarged only with `upscale=True` (which recovers faces under
    ~12 px in a wide room, at 4× the cost). `tiles=n` runs the network on an n×n grid of
    overlapping tiles and merges them with NMS; measured, it finds the same faces as one
    pass at the same resolution and costs more, so it is off by default.
    """

    kind = "yunet"

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        input_size: int = DEFAULT_INPUT_SIZE,
        *,
        upscale: bool = False,
        tiles: int = 1,
        top_k: int = 5000,
    ):
        self.model_path = str(model_path)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.input_size = int(input_size)
        self.upscale = upscale
        self.tiles = max(1, int(tiles))
        self.name = KNOWN_MODELS.get(_sha256(self.model_path), "yunet")
        if self.input_size != DEFAULT_INPUT_SIZE or upscale or self.tiles > 1:
            self.name += f"@{self.input_size}" + ("+up" if upscale else "") + (f"x{self.tiles}tiles" if self.tiles > 1 else "")
        self._net = cv2.FaceDetectorYN.create(self.model_path, "", (320, 320), score_threshold, nms_threshold, top_k)
        self._net_size = (320, 320)

    def _run(self, image: np.ndarray) -> np.ndarray:
        size = (image.shape[1], image.shape[0])
        if size != self._net_size:
            self._net.setInputSize(size)
            self._net_size = size
        _, rows = self._net.detect(image)
        return np.zeros((0, 15), np.float32) if rows is None else rows

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        scale = _scale_for(image_bgr.shape, self.input_size, self.upscale)
        picture = _resized(image_bgr, scale)
        if self.tiles == 1:
            rows = self._run(picture)
        else:
            parts = []
            for x, y, w, h in tile_grid(picture.shape[1], picture.shape[0], self.tiles):
                part = self._run(np.ascontiguousarray(picture[y : y + h, x : x + w])).copy()
                part[:, _X_COLUMNS] += x
                part[:, _Y_COLUMNS] += y
                parts.append(part)
            rows = _nms(np.concatenate(parts), self.nms_threshold)
        return _to_faces(rows, scale, image_bgr.shape)


@register
class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade: no download, ~5× slower than YuNet and wrong on
    about a quarter of the photographs (misses small, turned and half-lit faces)."""

    kind = "haar"
    approximate = True

    def __init__(
        self,
        cascade: str = "haarcascade_frontalface_alt2.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
        min_size: int = 20,
        input_size: int = DEFAULT_INPUT_SIZE,
        *,
        upscale: bool = False,
    ):
        path = Path(cascade)
        if not path.is_file():
            path = Path(cv2.data.haarcascades) / cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FileNotFoundError(f"Haar cascade not found: {cascade}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.input_size = int(input_size)
        self.upscale = upscale
        self.name = "haar-" + path.stem.replace("haarcascade_frontalface_", "")

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        scale = _scale_for(image_bgr.shape, self.input_size, self.upscale)
        gray = cv2.cvtColor(_resized(image_bgr, scale), cv2.COLOR_BGR2GRAY)
        boxes = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size, self.min_size)
        )
        rows = np.array([[x, y, w, h, 1.0] for x, y, w, h in boxes], dtype=np.float32).reshape(-1, 5)
        return _to_faces(rows, scale, image_bgr.shape)


def _sha256(path: str | Path) -> str:
    """The file's sha256, computed once per version of the file (every analysis thread
    builds its own detector, and each would hash the model again)."""
    st = os.stat(path)
    return _sha256_of(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _sha256_of(path: str, _mtime_ns: int, _size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model(path: str | Path | None) -> bool:
    """True when `path` is a file whose sha256 is one of the YuNet exports we know."""
    try:
        return path is not None and Path(path).is_file() and _sha256(path) in KNOWN_MODELS
    except OSError:
        return False


def make_detector(model_path: str | Path | None, **opts) -> FaceDetector:
    """YuNet when `model_path` is a verified model file, otherwise the approximate Haar cascade.

    Options meant for one detector (`score_threshold` for YuNet, `min_neighbors` for Haar)
    are dropped when the other is built, so one configuration works for both.
    """
    if verify_model(model_path):
        return _build(YuNetDetector, model_path, **opts)
    if model_path is not None:
        log.warning("face model %s missing or not a known YuNet export; using Haar (approximate counts)", model_path)
    return _build(HaarDetector, **opts)


def _build(cls: type[FaceDetector], *args, **opts) -> FaceDetector:
    accepted = inspect.signature(cls.__init__).parameters
    return cls(*args, **{k: v for k, v in opts.items() if k in accepted})
