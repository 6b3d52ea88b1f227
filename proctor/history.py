"""What one site's camera has shown before: small, bounded, and storable outside the process.

Two hub processes may analyse frames of the same bridge point, so this state cannot live
in a worker's memory (STYLE principle 5): `analyse` takes a `SiteHistory` and returns the
updated one, and the hub keeps it per site in its database or Redis through
`to_bytes()`/`from_bytes()` (≈ 15–25 kB) or `to_dict()`/`from_dict()` (JSON-safe).
Read–analyse–write per site must be serialised by the hub (a per-site lock or Redis
WATCH); two frames analysed against the same old history would each miss the other.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from dataclasses import dataclass, field

import numpy as np

from .health import THUMB_SIZE, HashEntry

FORMAT_VERSION = 1
#: Hashes kept: an hour of snapshots every 15 s.
HISTORY_MAX_ENTRIES = 240
#: Hashes older than this are forgotten.
HISTORY_MAX_AGE_S = 3600.0

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class PreviousFrame:
    """The signature of the last frame analysed, for "frozen" and "still with faces"."""

    t: float
    dhash: int
    thumb: np.ndarray  #: uint8 THUMB_SIZE grey thumbnail
    digest: str  #: hash of the raw bytes: an identical upload is frozen whatever its content
    boxes: tuple[Box, ...] = ()

    def __post_init__(self):
        _read_only(self.thumb)


@dataclass(frozen=True)
class Reference:
    """The site's reference view (set from the first usable frame, or again after `clear_reference`)."""

    t: float
    size: tuple[int, int]  #: width, height of the grey frame the features come from
    points: np.ndarray  #: float32 N×2
    descriptors: np.ndarray  #: uint8 N×32 (ORB)
    dhash: int

    def __post_init__(self):
        _read_only(self.points)
        _read_only(self.descriptors)


def _read_only(array: np.ndarray) -> None:
    # Histories share these arrays (see SiteHistory.copy): nobody may change them in place.
    array.flags.writeable = False


@dataclass
class SiteHistory:
    entries: list[HashEntry] = field(default_factory=list)  #: oldest first
    previous: PreviousFrame | None = None
    reference: Reference | None = None
    frozen_streak: int = 0  #: consecutive frozen frames
    moved_streak: int = 0  #: consecutive frames away from the reference
    still_streak: int = 0  #: consecutive frames with the same faces in the same places

    def record(self, entry: HashEntry) -> None:
        """Append a frame's hash and forget what is too old or beyond the bound."""
        self.entries.append(entry)
        horizon = entry.t - HISTORY_MAX_AGE_S
        self.entries = [e for e in self.entries if e.t >= horizon][-HISTORY_MAX_ENTRIES:]

    def clear_reference(self) -> None:
        """Forget the reference view: the next usable frame becomes it (after an operator
        re-aims the camera on purpose)."""
        self.reference = None
        self.moved_streak = 0

    def copy(self) -> SiteHistory:
        """A copy whose updates do not reach this one. Entries, the previous frame and the
        reference are immutable and replaced rather than changed, so they are shared
        (a deep copy of 240 entries cost 5 ms a snapshot, half of the health checks)."""
        return dataclasses.replace(self, entries=list(self.entries))

    # Serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-safe dict: numbers, strings, lists; arrays as base64."""
        prev, ref = self.previous, self.reference
        return {
            "v": FORMAT_VERSION,
            "entries": [[round(e.t, 3), f"{e.dhash:016x}", int(e.usable)] for e in self.entries],
            "previous": None
            if prev is None
            else {
                "t": round(prev.t, 3),
                "dhash": f"{prev.dhash:016x}",
                "thumb": _b64(prev.thumb.tobytes()),
                "digest": prev.digest,
                "boxes": [list(b) for b in prev.boxes],
            },
            "reference": None
            if ref is None
            else {
                "t": round(ref.t, 3),
                "size": list(ref.size),
                "points": _b64(ref.points.astype("<f4").tobytes()),
                "descriptors": _b64(ref.descriptors.tobytes()),
                "dhash": f"{ref.dhash:016x}",
            },
            "streaks": [self.frozen_streak, self.moved_streak, self.still_streak],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SiteHistory:
        """Rebuild from `to_dict()`. Raises ValueError on anything malformed; the hub should
        then start over with an empty history rather than fail the snapshot."""
        try:
            if data.get("v") != FORMAT_VERSION:
                raise ValueError(f"unknown SiteHistory format {data.get('v')!r}")
            history = cls(entries=[HashEntry(float(t), int(h, 16), bool(ok)) for t, h, ok in data["entries"]])
            if (p := data.get("previous")) is not None:
                thumb = np.frombuffer(_unb64(p["thumb"]), np.uint8).reshape(THUMB_SIZE[1], THUMB_SIZE[0]).copy()
                boxes = tuple(tuple(int(v) for v in b) for b in p["boxes"])
                if any(len(b) != 4 for b in boxes):
                    raise ValueError("face box is not x, y, w, h")
                history.previous = PreviousFrame(float(p["t"]), int(p["dhash"], 16), thumb, str(p["digest"]), boxes)
            if (r := data.get("reference")) is not None:
                points = np.frombuffer(_unb64(r["points"]), "<f4").astype(np.float32).reshape(-1, 2)
                descriptors = np.frombuffer(_unb64(r["descriptors"]), np.uint8).reshape(-1, 32).copy()
                if len(points) != len(descriptors):
                    raise ValueError("reference points and descriptors differ in number")
                width, height = (int(v) for v in r["size"])
                history.reference = Reference(float(r["t"]), (width, height), points, descriptors, int(r["dhash"], 16))
            history.frozen_streak, history.moved_streak, history.still_streak = (int(v) for v in data["streaks"])
        except ValueError:
            raise
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"malformed SiteHistory: {exc!r}") from exc
        return history

    def to_bytes(self) -> bytes:
        """Compressed JSON, for a database column or a Redis value."""
        return zlib.compress(json.dumps(self.to_dict(), separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> SiteHistory:
        try:
            data = json.loads(zlib.decompress(blob))
        except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed SiteHistory bytes: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("malformed SiteHistory bytes: not an object")
        return cls.from_dict(data)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad base64 in SiteHistory: {exc}") from exc
