"""When a camera snapshot deserves a proctor's look: the rules, as pure functions.

Nothing here touches Flask or the database. `snapshots.py` gathers the facts (the
camera's recent analysed snapshots, the check-ins at each moment, the page's reports),
asks these rules which flag kinds apply, and writes the flags through an operation that
also avoids duplicates (`is_repeat`). Kinds and their severities are in
`server/review/models.py::SEVERITY`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Optional, Sequence

#: a room is under-attended when its headcount is below this share of its check-ins…
HEADCOUNT_LOW_RATIO = 0.8
#: … for this many analysed snapshots running (one frame can miss a row of faces).
HEADCOUNT_LOW_STREAK = 2
#: an empty room needs as many empty frames running (everyone out for a minute at a break
#: is not an empty class, and the detector may miss faces turned to the screen).
EMPTY_ROOM_STREAK = 2
#: a frozen or moved camera is flagged only from this streak on: proctor/README.md says
#: one frame can look frozen on a still scene, or moved when people fill the view.
FROZEN_STREAK = 2
MOVED_STREAK = 2
#: the hub expects a room snapshot every interval; a camera silent this many intervals
#: while a lecture is live is offline.
OFFLINE_INTERVALS = 3
#: an open flag of the same kind for the same camera within this window is not repeated:
#: the existing one counts the repeats instead.
REPEAT_WINDOW = timedelta(minutes=10)
#: a learner's selfie may be retaken this many times before the attempt is flagged.
SELFIE_TRIES = 3

ROOM_KINDS = ("room", "requested")
WEBCAM_KINDS = ("selfie", "random")
#: single-frame health flags raised as they are (frozen and moved need a streak).
HEALTH_KINDS = ("dark", "covered", "blurred", "replayed")

#: what a page may report about its own camera or visibility, per camera, → flag kind.
REPORTS = {
    "room": {"camera_refused": "camera_refused", "camera_lost": "camera_offline"},
    "webcam": {"camera_refused": "camera_refused", "camera_lost": "camera_lost",
               "page_hidden": "page_hidden", "page_left": "page_hidden"},
}


@dataclass(frozen=True)
class Finding:
    """One flag kind that applies, with what a proctor needs to judge it."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Frame:
    """An analysed snapshot as the rules see it (newest last in a sequence)."""

    headcount: int
    #: learners checked in at this bridge point for the lecture when the frame was taken.
    checked_in: int = 0
    #: the analysis's health flags and streaks (`Analysis.to_dict()` plus the streaks).
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """A frame in which an empty room would show: not dark and not covered."""
        return not (self.health.get("dark") or self.health.get("covered"))


def health_findings(health: dict[str, Any]) -> list[Finding]:
    """The camera's own trouble in one frame: dark, covered, blurred, replayed, frozen, moved."""
    out = [Finding(kind, _measures(kind, health)) for kind in HEALTH_KINDS if health.get(kind)]
    if health.get("frozen") and health.get("frozen_streak", 0) >= FROZEN_STREAK:
        out.append(Finding("frozen", {"streak": health["frozen_streak"]}))
    if health.get("moved") and health.get("moved_streak", 0) >= MOVED_STREAK:
        out.append(Finding("moved", {"streak": health["moved_streak"],
                                     "shift": health.get("move_shift"), "rotation": health.get("move_rotation")}))
    # "blurred" under "dark"/"covered" says nothing more.
    if any(f.kind in ("dark", "covered") for f in out):
        out = [f for f in out if f.kind != "blurred"]
    return out


def _measures(kind: str, health: dict[str, Any]) -> dict[str, Any]:
    keys = {
        "dark": ("luminance",),
        "covered": ("contrast", "flat_fraction", "dominant_fraction"),
        "blurred": ("sharpness",),
        "replayed": ("replay_reason", "replay_age_s"),
    }[kind]
    return {k: health.get(k) for k in keys}


def room_findings(frames: Sequence[Frame], *, lecture_live: bool) -> list[Finding]:
    """Flags for a room camera's newest frame (`frames[-1]`), given the frames before it.

    `frames` are the camera's analysed snapshots of the same lecture in time order.
    Attendance rules apply only while a lecture is live; the camera's health always.
    """
    if not frames:
        return []
    current = frames[-1]
    out = health_findings(current.health)
    if not lecture_live:
        return out
    recent = frames[-max(HEADCOUNT_LOW_STREAK, EMPTY_ROOM_STREAK):]
    if _streak(frames, lambda f: f.usable and f.headcount == 0) >= EMPTY_ROOM_STREAK:
        out.append(Finding("empty_room", {"streak": EMPTY_ROOM_STREAK}))
    elif _streak(frames, _under_attended) >= HEADCOUNT_LOW_STREAK:
        out.append(Finding("headcount_low", {
            "headcounts": [f.headcount for f in recent], "checked_in": [f.checked_in for f in recent],
            "ratio": HEADCOUNT_LOW_RATIO,
        }))
    return out


def _under_attended(frame: Frame) -> bool:
    # A dark or covered frame is the camera's fault, flagged as such; it says nothing of the room.
    return frame.usable and frame.checked_in > 0 and frame.headcount < HEADCOUNT_LOW_RATIO * frame.checked_in


def _streak(frames: Sequence[Frame], test) -> int:
    n = 0
    for frame in reversed(frames):
        if not test(frame):
            break
        n += 1
    return n


def webcam_findings(kind: str, headcount: int, health: dict[str, Any],
                    selfie_results: Sequence[bool] = ()) -> list[Finding]:
    """Flags for a learner's webcam snapshot.

    A selfie is judged by the one-face check (`selfie_results`: every selfie of the
    attempt so far, oldest first, this one last): only the last allowed try that still
    fails raises `selfie_failed`. A random snapshot must show exactly one face.
    """
    out = [f for f in health_findings(health) if f.kind in ("covered", "replayed")]
    if kind == "selfie":
        if selfie_failed(selfie_results):
            out.append(Finding("selfie_failed", {"tries": len(selfie_results), "reason": health.get("selfie_reason")}))
        return out
    if headcount == 0:
        out.append(Finding("no_face", {"dark": bool(health.get("dark")), "covered": bool(health.get("covered"))}))
    elif headcount > 1:
        out.append(Finding("multiple_faces", {"headcount": headcount}))
    return out


def selfie_failed(results: Sequence[bool]) -> bool:
    """True exactly when the SELFIE_TRIES-th selfie failed and none before it passed."""
    return len(results) == SELFIE_TRIES and not any(results)


def camera_offline(last_snapshot_at: Optional[datetime], watching_since: datetime, now: datetime,
                   interval_s: float) -> bool:
    """A live lecture's room camera has been silent for OFFLINE_INTERVALS intervals.

    `watching_since` is when the camera became expected (the lecture's start); a camera
    is given the same grace after it before it counts as offline.
    """
    limit = timedelta(seconds=OFFLINE_INTERVALS * interval_s)
    since = max(last_snapshot_at or watching_since, watching_since)
    return now - since > limit


def report_kind(camera: str, event: str) -> Optional[str]:
    """The flag kind a page's report raises for a "room" or "webcam" camera, or None."""
    return REPORTS.get(camera, {}).get(event)


def is_repeat(open_flags_created_at: Iterable[datetime], now: datetime, window: timedelta = REPEAT_WINDOW) -> bool:
    """Whether an open flag of the same kind for the same camera already covers `now`."""
    return any(now - created <= window for created in open_flags_created_at)
