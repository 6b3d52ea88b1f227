"""Camera snapshots: store, analyse, flag, push, purge.

Operations flush and return; the caller commits (the upload view, the analysis worker,
the CLI). Pushes go out after the commit. Files live under the instance folder as
`snapshots/<yyyy-mm-dd>/<token>.jpg` (UTC date of the snapshot), the metadata in
`Snapshot`; a camera's recent history (for frozen / moved / replayed) in `CameraHistory`,
written by compare-and-set so two hub processes never interleave one camera's frames.
"""
from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import realtime
from ..core.errors import BadInput, Conflict, Forbidden, Unauthenticated
from ..core.timeutil import as_utc, now_utc, to_ms
from ..exam.models import Attempt
from ..extensions import db, socketio
from ..places.models import BridgePoint
from ..review.models import SEVERITY, Flag
from ..webcast.models import Lecture, LectureStatus, SiteStatus
from . import analysis, flags, queries
from .models import CameraHistory, CheckIn, Snapshot

log = logging.getLogger(__name__)

NS = "/proctor"
KINDS = flags.ROOM_KINDS + flags.WEBCAM_KINDS
#: settings and their defaults; each can be set in the app config or as DIEMCAU_<NAME>.
SETTINGS: dict[str, float] = {
    #: a room camera takes a snapshot this often.
    "SNAPSHOT_INTERVAL_SECONDS": 30,
    #: the largest snapshot accepted, in bytes (a 1280×720 JPEG at quality 0.8 is ~150 kB).
    "SNAPSHOT_MAX_BYTES": 2 * 1024 * 1024,
    #: snapshots, their files and idle camera histories are purged after this many days.
    "SNAPSHOT_RETENTION_DAYS": 90,
    #: analyses running at once in each hub process.
    "ANALYSIS_WORKERS": 2,
    #: the longest side of the picture the face detector sees. 640 counts a room of 60
    #: whose faces are ~20 px wide there, at 30 snapshots/s per core; a wide hall whose
    #: faces are ~10 px needs 1280 (and 1280-px snapshots), at ~8/s (docs/benchmarks.md).
    "ANALYSIS_INPUT_SIZE": 640,
    #: a learner's webcam takes a snapshot at a random moment between these two delays.
    "WEBCAM_SNAPSHOT_MIN_SECONDS": 120,
    "WEBCAM_SNAPSHOT_MAX_SECONDS": 360,
}
#: the largest image (header dimensions) accepted: a 4K camera frame is 8.3 MP.
MAX_PIXELS = 4096 * 4096
#: the default model file, relative to the instance folder.
DEFAULT_MODEL = Path("models") / "face_detection_yunet_2023mar.onnx"
#: compare-and-set attempts on a camera's history before giving the frame up to history.
HISTORY_TRIES = 4

IMAGE_MESSAGES = {
    "empty": _l("Ảnh rỗng: không có dữ liệu."),
    "not_image": _l("Dữ liệu gửi lên không phải là ảnh."),
    "unsupported_format": _l("Định dạng ảnh không được hỗ trợ; chỉ nhận ảnh JPEG."),
    "truncated": _l("Ảnh bị cắt cụt (chưa tải lên đầy đủ), vui lòng gửi lại."),
    "too_large": _l("Ảnh quá lớn (số điểm ảnh vượt giới hạn)."),
    "too_small": _l("Ảnh quá nhỏ để phân tích."),
    "too_many_bytes": _l("Tệp ảnh quá lớn."),
    "corrupt": _l("Ảnh bị hỏng, không giải mã được."),
}


class TooLarge(BadInput):
    http_status = 413


class WrongType(BadInput):
    http_status = 415


# settings and places -------------------------------------------------------------------------

def setting(name: str) -> float:
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(f"DIEMCAU_{name}", SETTINGS[name])
    return float(value)


def model_path() -> str:
    configured = (current_app.config.get("FACE_MODEL_PATH") or os.environ.get("DIEMCAU_FACE_MODEL")
                  or os.environ.get("DIEMCAU_FACE_MODEL_PATH"))
    return str(configured or Path(current_app.instance_path) / DEFAULT_MODEL)


def detector_spec() -> analysis.DetectorSpec:
    return analysis.DetectorSpec(model_path(), _input_size(int(setting("ANALYSIS_INPUT_SIZE"))))


@functools.lru_cache(maxsize=8)
def _input_size(size: int) -> int:
    """The configured size if it is sane; otherwise the default, said once in the log (not per snapshot)."""
    if 160 <= size <= 4096:
        return size
    default = int(SETTINGS["ANALYSIS_INPUT_SIZE"])
    log.error("ANALYSIS_INPUT_SIZE=%s is not between 160 and 4096 pixels; using %d", size, default)
    return default


def snapshots_root() -> Path:
    return Path(current_app.instance_path) / "snapshots"


def file_path(snap: Snapshot) -> Path:
    return snapshots_root() / as_utc(snap.taken_at).strftime("%Y-%m-%d") / f"{snap.token}.jpg"


def url_of(snap: Snapshot) -> str:
    return f"/snapshots/{snap.token}.jpg"


def camera_key(snap: Snapshot) -> str:
    return f"attempt:{snap.attempt_id}" if snap.attempt_id is not None else f"bp:{snap.bridge_point_id}"


def place_of(snap: Snapshot) -> tuple[Optional[int], Optional[int]]:
    """(district id, bridge point id) a snapshot belongs to, for scope checks and pushes."""
    if snap.attempt_id is not None:
        attempt = db.session.get(Attempt, snap.attempt_id)
        if attempt is None:
            return None, None
        district_id = attempt.district_id
        if district_id is None and attempt.bridge_point_id is not None:
            site = db.session.get(BridgePoint, attempt.bridge_point_id)
            district_id = site.district_id if site else None
        return district_id, attempt.bridge_point_id
    site = db.session.get(BridgePoint, snap.bridge_point_id) if snap.bridge_point_id else None
    return (site.district_id if site else None), snap.bridge_point_id


# storing ------------------------------------------------------------------------------------

def check_image(data: bytes):
    """The JPEG's header info, or a refusal with a code and a Vietnamese message.

    Only the header and the end marker are read: a decompression bomb is refused from
    its declared size before anything is decoded.
    """
    from proctor import ImageError, probe

    limit = int(setting("SNAPSHOT_MAX_BYTES"))
    if len(data) > limit:
        raise TooLarge("image.too_many_bytes", _("Tệp ảnh quá lớn: tối đa %(mb).1f MB.", mb=limit / 1048576))
    try:
        info = probe(data, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        error = TooLarge if exc.code in ("too_large", "too_many_bytes") else BadInput
        raise error(f"image.{exc.code}", IMAGE_MESSAGES.get(exc.code, IMAGE_MESSAGES["corrupt"])) from None
    if info.format != "jpeg":
        raise WrongType("image.unsupported_format", IMAGE_MESSAGES["unsupported_format"])
    return info


def store(data: bytes, kind: str, *, bridge_point_id: Optional[int] = None,
          attempt: Optional[Attempt] = None, now: Optional[datetime] = None) -> Snapshot:
    """Check a snapshot, write its file and add its row (status pending); flush, no commit.

    Refusals raise before anything is written. If the caller's commit fails it must call
    `discard_file`, so no file is left without its row.
    """
    if kind not in KINDS:
        raise BadInput("snapshot.bad_kind", _("Loại ảnh không hợp lệ."))
    info = check_image(data)
    now = now or now_utc()
    snap = Snapshot(token=secrets.token_hex(20), kind=kind, taken_at=now, size_bytes=len(data),
                    width=info.width, height=info.height, status="pending")
    if attempt is not None:
        snap.attempt_id = attempt.id
    else:
        snap.bridge_point_id = bridge_point_id
        from ..webcast.queries import current_lecture_id_subquery

        # looked up inside the INSERT: one round trip per upload, not two
        snap.lecture_id = current_lecture_id_subquery()
    # in an OS thread: an fsync blocks the process, and 164 cameras uploading at once
    # stalled every learner's acks for seconds (docs/benchmarks.md, snapshot burst).
    realtime.run_blocking(_write_file, file_path(snap), data)
    db.session.add(snap)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        discard_file(snap)
        if attempt is not None:
            raise
        # the bridge point is gone (the upload does not read it first): a kiosk signed
        # in to a site that no longer exists.
        raise Unauthenticated("snapshot.signed_out", _("Điểm cầu chưa đăng nhập.")) from None
    return snap


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())  # acknowledged means on disk, not in a page cache
    os.replace(tmp, path)


def discard_file(snap: Snapshot) -> None:
    try:
        file_path(snap).unlink()
    except OSError:
        pass


def _live_lecture_id() -> Optional[int]:
    from ..webcast.queries import current_lecture

    lecture = current_lecture()
    return lecture.id if lecture is not None else None


def open_attempt_of(user_id: int, attempt_id: Any) -> Attempt:
    """The sender's own open attempt, or a refusal."""
    attempt = db.session.get(Attempt, attempt_id) if isinstance(attempt_id, int) else None
    if attempt is None or attempt.user_id != user_id:
        raise Forbidden("snapshot.not_yours", _("Ảnh này không thuộc bài làm của bạn."))
    if not attempt.is_open:
        raise Conflict("snapshot.attempt_closed", _("Bài làm đã kết thúc: không cần gửi ảnh nữa."))
    return attempt


# analysing ------------------------------------------------------------------------------------

def pending_ids(older_than_s: float = 0.0, limit: int = analysis.QUEUE_MAX) -> list[int]:
    cutoff = now_utc() - timedelta(seconds=older_than_s)
    ids = db.session.scalars(
        sa.select(Snapshot.id).where(Snapshot.status == "pending", Snapshot.taken_at <= cutoff)
        .order_by(Snapshot.id).limit(limit)
    ).all()
    db.session.rollback()
    return list(ids)


def process(snapshot_id: int) -> Optional[Snapshot]:
    """Analyse one pending snapshot, record the result and its flags, commit, push.

    The function the pool's workers call (and tests, synchronously). The OpenCV part runs
    off the event loop with no transaction open; the camera's history is then saved by
    compare-and-set, and if another process saved it meanwhile the frame is analysed
    again against the newer history. Bad data marks the snapshot failed. Returns the
    snapshot, or None if it was not pending (finished elsewhere, or purged).
    """
    snap = db.session.get(Snapshot, snapshot_id)
    if snap is None or snap.status != "pending":
        db.session.rollback()
        return None
    camera, path = camera_key(snap), str(file_path(snap))
    taken, selfie = as_utc(snap.taken_at).timestamp(), snap.kind == "selfie"
    spec = detector_spec()
    for _try in range(HISTORY_TRIES):
        version, history = _read_history(camera)
        db.session.rollback()  # hold nothing while OpenCV works
        verdict = analysis.run_detection(path, history, spec, now=taken, selfie=selfie, max_pixels=MAX_PIXELS)
        keep_history = _try < HISTORY_TRIES - 1
        if verdict.error_code is None and keep_history and not _save_history(camera, version, verdict.history):
            db.session.rollback()
            continue
        found = _record(snapshot_id, verdict)
        if found is None:
            db.session.rollback()
            return None
        snap, raised = found
        db.session.commit()
        push_analysed(snap, raised)
        return snap
    return None  # unreachable: the last try records without the history


def give_up(snapshot_id: int, reason: str) -> None:
    """Mark a snapshot failed without analysis (it crashed the worker again and again); flush."""
    db.session.execute(sa.update(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.status == "pending")
                       .values(status="failed", error=f"{reason}: not analysed"[:200]))


def _read_history(camera: str) -> tuple[Optional[datetime], Optional[bytes]]:
    row = db.session.execute(
        sa.select(CameraHistory.updated_at, CameraHistory.data).where(CameraHistory.camera == camera)
    ).first()
    return (row.updated_at, row.data) if row else (None, None)


def _save_history(camera: str, version: Optional[datetime], data: Optional[bytes]) -> bool:
    """Write the camera's new history if nobody changed it since `version` was read."""
    now = now_utc()
    if version is None:
        # the first frame of this camera: whoever inserts first wins, the other retries.
        # Nothing else is in the transaction yet, so the caller's rollback loses nothing.
        try:
            db.session.add(CameraHistory(camera=camera, data=data, updated_at=now))
            db.session.flush()
        except sa.exc.IntegrityError:
            return False
        return True
    if as_utc(version) >= now:  # keep versions distinct even on a coarse clock
        now = as_utc(version) + timedelta(microseconds=1)
    result = db.session.execute(
        sa.update(CameraHistory).where(CameraHistory.camera == camera, CameraHistory.updated_at == version)
        .values(data=data, updated_at=now)
    )
    return result.rowcount == 1


def _record(snapshot_id: int, verdict: analysis.Verdict) -> Optional[tuple[Snapshot, list[Flag]]]:
    """Finish the snapshot (only if still pending) and raise its flags; flush, no commit."""
    if verdict.error_code is not None:
        values: dict[str, Any] = {"status": "failed", "error": f"{verdict.error_code}: {verdict.error}"[:200]}
    else:
        a = verdict.analysis
        health = {k: v for k, v in a.items() if k not in ("faces", "headcount", "width", "height", "detector")}
        if verdict.selfie is not None:
            health["selfie_ok"], health["selfie_reason"] = verdict.selfie
        values = {"status": "analysed", "headcount": a["headcount"], "faces": a["faces"], "health": health,
                  "detector": str(a["detector"])[:40], "error": None}
    done = db.session.execute(
        sa.update(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.status == "pending").values(**values)
    )
    if done.rowcount != 1:
        return None
    snap = db.session.get(Snapshot, snapshot_id, populate_existing=True)
    return snap, raise_flags(snap)


def raise_flags(snap: Snapshot) -> list[Flag]:
    """Apply the rules of `flags` to a finished snapshot; returns the flags newly created."""
    now = as_utc(snap.taken_at)
    if snap.attempt_id is not None:
        attempt = db.session.get(Attempt, snap.attempt_id)
        findings = _webcam_findings(snap)
        return [f for f in (raise_flag(x.kind, attempt=attempt, snapshot=snap, detail=x.detail, now=now)
                            for x in findings) if f is not None]
    if snap.status != "analysed":
        return []
    findings = flags.room_findings(_room_frames(snap), lecture_live=snap.lecture_id is not None)
    return [f for f in (raise_flag(x.kind, bridge_point_id=snap.bridge_point_id, lecture_id=snap.lecture_id,
                                   snapshot=snap, detail=x.detail, now=now) for x in findings) if f is not None]


def _room_frames(snap: Snapshot) -> list[flags.Frame]:
    """The camera's last analysed room snapshots of the same lecture, oldest first, `snap` last."""
    depth = max(flags.HEADCOUNT_LOW_STREAK, flags.EMPTY_ROOM_STREAK)
    earlier = db.session.scalars(
        sa.select(Snapshot).where(
            Snapshot.bridge_point_id == snap.bridge_point_id, Snapshot.kind.in_(flags.ROOM_KINDS),
            Snapshot.lecture_id.is_(None) if snap.lecture_id is None else Snapshot.lecture_id == snap.lecture_id,
            Snapshot.status == "analysed", Snapshot.id != snap.id, Snapshot.taken_at <= snap.taken_at,
        ).order_by(Snapshot.taken_at.desc(), Snapshot.id.desc()).limit(depth - 1)
    ).all()
    # a check-in a proctor confirmed invalid is nobody the camera should find
    invalid = queries.invalid_user_ids(snap.lecture_id) if snap.lecture_id is not None else set()
    return [_frame(s, invalid) for s in reversed(earlier)] + [_frame(snap, invalid)]


def _frame(snap: Snapshot, invalid: set[int] = frozenset()) -> flags.Frame:
    checked_in = 0
    if snap.lecture_id is not None:
        q = sa.select(sa.func.count()).select_from(CheckIn).where(
            CheckIn.lecture_id == snap.lecture_id, CheckIn.bridge_point_id == snap.bridge_point_id,
            CheckIn.at <= snap.taken_at)
        if invalid:
            q = q.where(CheckIn.user_id.not_in(sorted(invalid)))
        checked_in = db.session.scalar(q) or 0
    return flags.Frame(headcount=snap.headcount or 0, checked_in=checked_in, health=snap.health or {})


def _webcam_findings(snap: Snapshot) -> list[flags.Finding]:
    health = snap.health or {}
    if snap.kind != "selfie":
        if snap.status != "analysed":
            return []
        return flags.webcam_findings(snap.kind, snap.headcount or 0, health)
    earlier = db.session.scalars(
        sa.select(Snapshot.health).where(
            Snapshot.attempt_id == snap.attempt_id, Snapshot.kind == "selfie", Snapshot.id != snap.id,
            Snapshot.status.in_(("analysed", "failed")), Snapshot.taken_at <= snap.taken_at,
        ).order_by(Snapshot.taken_at, Snapshot.id)
    ).all()
    results = [bool((h or {}).get("selfie_ok")) for h in earlier] + [bool(health.get("selfie_ok"))]
    return flags.webcam_findings("selfie", snap.headcount or 0, health, results)


# flags ------------------------------------------------------------------------------------------

def raise_flag(kind: str, *, bridge_point_id: Optional[int] = None, lecture_id: Optional[int] = None,
               attempt: Optional[Attempt] = None, snapshot: Optional[Snapshot] = None,
               detail: Optional[dict] = None, now: Optional[datetime] = None) -> Optional[Flag]:
    """Open a flag for a camera (a bridge point's room, or a learner's attempt); flush.

    An open flag of the same kind for the same camera within `flags.REPEAT_WINDOW` is not
    repeated: it counts the repeat and keeps its first snapshot. Returns the new flag, or
    None for a repeat.
    """
    now = now or now_utc()
    camera = Flag.attempt_id == attempt.id if attempt is not None else Flag.bridge_point_id == bridge_point_id
    recent = db.session.scalars(
        sa.select(Flag).where(Flag.kind == kind, camera, Flag.status == "open",
                              Flag.created_at >= now - flags.REPEAT_WINDOW).order_by(Flag.id.desc())
    ).all()
    if flags.is_repeat([as_utc(f.created_at) for f in recent], now):
        item = recent[0]
        item.detail = {**(item.detail or {}), "repeats": (item.detail or {}).get("repeats", 0) + 1,
                       "last_ms": to_ms(now), **({"last_snapshot_id": snapshot.id} if snapshot else {})}
        return None
    item = Flag(kind=kind, severity=SEVERITY[kind], created_at=now, status="open", detail=detail or {},
                snapshot_id=snapshot.id if snapshot else None)
    if attempt is not None:
        item.attempt_id, item.exam_id = attempt.id, attempt.exam_id
    else:
        item.bridge_point_id, item.lecture_id = bridge_point_id, lecture_id
    db.session.add(item)
    db.session.flush()
    return item


def report(camera: str, event: str, *, bridge_point_id: Optional[int] = None,
           attempt: Optional[Attempt] = None, detail: Optional[dict] = None) -> Optional[Flag]:
    """A page's own report on its camera or its visibility → a flag (or a counted repeat)."""
    kind = flags.report_kind(camera, event)
    if kind is None:
        raise BadInput("camera.bad_event", _("Loại báo cáo không hợp lệ."))
    lecture_id = _live_lecture_id() if attempt is None else None
    return raise_flag(kind, bridge_point_id=bridge_point_id, lecture_id=lecture_id, attempt=attempt,
                      detail={"event": event, **(detail or {})})


def flag_offline_cameras(now: Optional[datetime] = None) -> list[Flag]:
    """Flag room cameras silent for 3 intervals during a live lecture; returns the new flags.

    A camera is expected from the lecture's start at the bridge points whose kiosk follows
    the lecture or that already sent a snapshot in it.
    """
    now = now or now_utc()
    interval = setting("SNAPSHOT_INTERVAL_SECONDS")
    raised: list[Flag] = []
    for lecture in db.session.scalars(sa.select(Lecture).where(Lecture.status == LectureStatus.live)).all():
        started = as_utc(lecture.started_at) or now
        last = dict(db.session.execute(
            sa.select(Snapshot.bridge_point_id, sa.func.max(Snapshot.taken_at))
            .where(Snapshot.lecture_id == lecture.id, Snapshot.kind.in_(flags.ROOM_KINDS))
            .group_by(Snapshot.bridge_point_id)
        ).all())
        watching = db.session.scalars(sa.select(SiteStatus.bridge_point_id).where(SiteStatus.lecture_id == lecture.id)).all()
        for bp_id in sorted(set(last) | set(watching)):
            seen = as_utc(last.get(bp_id))
            if flags.camera_offline(seen, started, now, interval):
                item = raise_flag("camera_offline", bridge_point_id=bp_id, lecture_id=lecture.id, now=now,
                                  detail={"last_ms": to_ms(seen), "interval_s": interval})
                if item is not None:
                    raised.append(item)
    return raised


# pushes: call after the commit -----------------------------------------------------------------

def proctor_rooms(district_id: Optional[int]) -> list[str]:
    rooms = ["proctors:all"]
    if district_id is not None:
        rooms.append(f"proctors:district:{district_id}")
    return rooms


def analysed_payload(snap: Snapshot, raised: Iterable[Flag] = ()) -> dict[str, Any]:
    health = snap.health or {}
    kinds = [k for k in ("dark", "covered", "blurred", "frozen", "moved", "replayed") if health.get(k)]
    return {
        "id": snap.id, "bridge_point_id": snap.bridge_point_id, "attempt_id": snap.attempt_id,
        "lecture_id": snap.lecture_id, "kind": snap.kind, "status": snap.status, "headcount": snap.headcount,
        "flags": kinds, "raised": [f.kind for f in raised], "approximate": bool(health.get("approximate")),
        "taken_ms": to_ms(snap.taken_at), "url": url_of(snap),
    }


def flag_payload(item: Flag) -> dict[str, Any]:
    return {"id": item.id, "kind": item.kind, "severity": item.severity, "bridge_point_id": item.bridge_point_id,
            "attempt_id": item.attempt_id, "lecture_id": item.lecture_id, "exam_id": item.exam_id,
            "snapshot_id": item.snapshot_id, "detail": item.detail, "created_ms": to_ms(item.created_at)}


def push_analysed(snap: Snapshot, raised: Iterable[Flag] = ()) -> dict[str, Any]:
    raised = list(raised)
    district_id, _bp = place_of(snap)
    payload = analysed_payload(snap, raised)
    rooms = proctor_rooms(district_id)
    socketio.emit("snapshot.analysed", payload, to=rooms, namespace=NS)
    for item in raised:
        socketio.emit("flag.raised", flag_payload(item), to=rooms, namespace=NS)
    db.session.rollback()
    return payload


def push_flag(item: Flag) -> None:
    if item.attempt_id is not None:
        attempt = db.session.get(Attempt, item.attempt_id)
        district_id = attempt.district_id if attempt else None
    else:
        site = db.session.get(BridgePoint, item.bridge_point_id) if item.bridge_point_id else None
        district_id = site.district_id if site else None
    socketio.emit("flag.raised", flag_payload(item), to=proctor_rooms(district_id), namespace=NS)


def request_snapshot(bridge_point_id: int, by_user_id: int) -> dict[str, Any]:
    """Ask a bridge point's kiosk for a snapshot now (it answers with an upload of kind "requested")."""
    payload = {"bridge_point_id": bridge_point_id, "by": by_user_id, "at_ms": to_ms(now_utc())}
    socketio.emit("snapshot.request", payload, to=f"kiosk:{bridge_point_id}", namespace=NS)
    return payload


# retention ---------------------------------------------------------------------------------------

def purge(days: float, now: Optional[datetime] = None, batch: int = 500) -> dict[str, int]:
    """Delete snapshots (rows and files) and idle camera histories older than `days`; commits.

    Flags keep their decisions; their `snapshot_id` is set to NULL. Rows go first, in
    batches, each batch committed before its files are removed; then any day folder older
    than the cut-off is removed whole, which also catches files a crash left behind.
    """
    now = now or now_utc()
    cutoff = now - timedelta(days=days)
    counts = {"snapshots": 0, "files": 0, "histories": 0, "folders": 0}
    while True:
        old = db.session.scalars(sa.select(Snapshot).where(Snapshot.taken_at < cutoff).order_by(Snapshot.id).limit(batch)).all()
        if not old:
            break
        ids, paths = [s.id for s in old], [file_path(s) for s in old]
        db.session.execute(sa.update(Flag).where(Flag.snapshot_id.in_(ids)).values(snapshot_id=None))
        db.session.execute(sa.delete(Snapshot).where(Snapshot.id.in_(ids)))
        db.session.commit()
        counts["snapshots"] += len(ids)
        for path in paths:
            try:
                path.unlink()
                counts["files"] += 1
            except FileNotFoundError:
                pass
    gone = db.session.execute(sa.delete(CameraHistory).where(CameraHistory.updated_at < cutoff))
    counts["histories"] = gone.rowcount or 0
    db.session.commit()
    root = snapshots_root()
    if root.is_dir():
        for folder in root.iterdir():
            try:
                day = datetime.strptime(folder.name, "%Y-%m-%d").date()
            except ValueError:
                continue
            if folder.is_dir() and day < cutoff.date():
                counts["files"] += sum(1 for p in folder.iterdir() if p.suffix == ".jpg")
                shutil.rmtree(folder, ignore_errors=True)
                counts["folders"] += 1
    return counts
