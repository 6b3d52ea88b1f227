"""Snapshots over HTTP: the cameras' uploads, the pages' reports, the images for proctors.

Upload: parse → check the sender → check the image → store → commit → answer → queue for
analysis. The answer `{ok, id}` comes only after the commit, so an acknowledged snapshot
is never lost; a refusal stores nothing. Images are served only to a proctor or an
organizer whose scope covers them, with `Cache-Control: private, no-store`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Optional

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, redirect, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..accounts.models import Role
from ..core.admission import BUSY
from ..core.errors import BadInput, Busy, Forbidden, NotFound, Unauthenticated
from ..core.permissions import covers
from ..exam.models import Attempt
from ..extensions import db
from ..places.models import BridgePoint
from ..webcast.views import KIOSK_SESSION
from . import analysis, flags, snapshots
from .models import Snapshot

bp = Blueprint("snapshots", __name__)
VIEWERS = (Role.organizer, Role.proctor)
TOKEN = re.compile(r"^[0-9a-f]{32,64}$")
#: room for the multipart envelope and the form fields around the image.
MULTIPART_OVERHEAD = 64 * 1024

SELFIE_MESSAGES = {
    "ok": _l("Ảnh chân dung hợp lệ."),
    "no_face": _l("Không thấy khuôn mặt; hãy nhìn thẳng vào camera."),
    "many_faces": _l("Có nhiều hơn một khuôn mặt; chỉ học viên được ở trong khung hình."),
    "face_too_small": _l("Khuôn mặt quá nhỏ; hãy ngồi gần camera hơn."),
    "dark": _l("Ảnh quá tối; hãy bật đèn hoặc ngồi nơi đủ sáng."),
    "covered": _l("Camera đang bị che; hãy bỏ vật che ống kính."),
}


# the cameras' uploads ------------------------------------------------------------------------

@bp.post("/api/snapshots")
def upload():
    if request.environ.get(BUSY):
        raise Busy(message=_("Máy chủ đang nhận nhiều ảnh cùng lúc; ảnh sẽ được gửi lại ở lần chụp sau."))
    limit = int(snapshots.setting("SNAPSHOT_MAX_BYTES"))
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise snapshots.TooLarge("image.too_many_bytes", _("Tệp ảnh quá lớn: tối đa %(mb).1f MB.", mb=limit / 1048576))
    if request.mimetype != "multipart/form-data":
        raise snapshots.WrongType("snapshot.content_type", _("Ảnh phải được gửi dạng multipart/form-data."))
    kind = request.form.get("kind", "room")
    site_id, attempt = _sender(kind)
    image = request.files.get("image")
    if image is None:
        raise BadInput("snapshot.no_file", _("Thiếu tệp ảnh (trường “image”)."))
    if image.mimetype != "image/jpeg":
        raise snapshots.WrongType("snapshot.content_type", _("Chỉ nhận ảnh JPEG (image/jpeg)."))
    data = image.stream.read(limit + 1)
    snap = snapshots.store(data, kind, bridge_point_id=site_id, attempt=attempt)
    snap_id = snap.id  # known since the flush; after the commit it would cost a SELECT
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        snapshots.discard_file(snap)
        raise
    analysis.submit(current_app._get_current_object(), snap_id)
    return jsonify({"ok": True, "id": snap_id})


def _sender(kind: str) -> tuple[Optional[int], Optional[Attempt]]:
    """(bridge point, None) for a kiosk's room snapshot, (None, attempt) for a learner's webcam."""
    if kind in flags.ROOM_KINDS:
        return _kiosk_site(required=True, claimed=request.form.get("bridge_point_id"), exists=False), None
    if kind in flags.WEBCAM_KINDS:
        return None, _learner_attempt(request.form.get("attempt_id"))
    raise BadInput("snapshot.bad_kind", _("Loại ảnh không hợp lệ."))


def _kiosk_site(*, required: bool, claimed: Any = None, exists: bool = True) -> Optional[int]:
    """The signed-in kiosk's bridge point. `exists=False` skips looking the site up (a
    snapshot's INSERT refuses a site that is gone: `snapshots.store`)."""
    site_id = session.get(KIOSK_SESSION)
    if not isinstance(site_id, int) or (exists and db.session.get(BridgePoint, site_id) is None):
        if not required:
            return None
        if current_user.is_authenticated:
            raise Forbidden("snapshot.kiosk_only", _("Chỉ máy của điểm cầu mới gửi được ảnh phòng học."))
        raise Unauthenticated("snapshot.signed_out", _("Điểm cầu chưa đăng nhập."))
    if claimed not in (None, "") and str(claimed) != str(site_id):
        raise Forbidden("snapshot.not_yours", _("Ảnh này không thuộc điểm cầu của máy này."))
    return site_id


def _learner_attempt(attempt_id: Any) -> Attempt:
    if not current_user.is_authenticated:
        raise Unauthenticated()
    if current_user.role != Role.learner:
        raise Forbidden("snapshot.learners_only", _("Chỉ học viên mới gửi được ảnh từ camera của mình."))
    return snapshots.open_attempt_of(current_user.id, _int(attempt_id, "attempt_id"))


def _int(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise BadInput("payload.bad_field", _("Trường “%(key)s” phải là số nguyên.", key=field), field=field) from None


@bp.get("/api/snapshots/<int:snapshot_id>")
def verdict(snapshot_id: int):
    """The sender's own snapshot: analysed yet, and for a selfie whether it passed."""
    snap = db.session.get(Snapshot, snapshot_id)
    if snap is None or not _sent_by_me(snap):
        raise NotFound("snapshot.not_found", _("Không tìm thấy ảnh."))
    health = snap.health or {}
    out: dict[str, Any] = {"ok": True, "id": snap.id, "kind": snap.kind, "status": snap.status,
                           "headcount": snap.headcount}
    if snap.kind == "selfie" and snap.status != "pending":
        reason = health.get("selfie_reason") or (snap.error or "corrupt").split(":")[0]
        message = SELFIE_MESSAGES.get(reason) or snapshots.IMAGE_MESSAGES.get(reason) or SELFIE_MESSAGES["no_face"]
        out["selfie"] = {"ok": bool(health.get("selfie_ok")), "reason": reason, "message": str(message)}
    return jsonify(out)


def _sent_by_me(snap: Snapshot) -> bool:
    if snap.attempt_id is not None:
        if not current_user.is_authenticated or current_user.role != Role.learner:
            return False
        attempt = db.session.get(Attempt, snap.attempt_id)
        return attempt is not None and attempt.user_id == current_user.id
    return snap.bridge_point_id is not None and session.get(KIOSK_SESSION) == snap.bridge_point_id


# the pages' reports: camera refused or lost, page hidden or left ----------------------------------

@bp.post("/api/camera/report")
def camera_report():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise snapshots.WrongType("payload.malformed", _("Dữ liệu gửi lên phải là một đối tượng JSON."))
    camera, event = data.get("camera"), data.get("event")
    if camera not in flags.REPORTS or flags.report_kind(camera, event) is None:
        raise BadInput("camera.bad_event", _("Loại báo cáo không hợp lệ."))
    detail = _report_detail(data.get("detail"))
    if camera == "room":
        item = snapshots.report("room", event, bridge_point_id=_kiosk_site(required=True), detail=detail)
    else:
        if not current_user.is_authenticated:
            raise Unauthenticated()
        attempt = db.session.get(Attempt, _int(data.get("attempt_id"), "attempt_id"))
        if attempt is None or current_user.role != Role.learner or attempt.user_id != current_user.id:
            raise Forbidden("snapshot.not_yours", _("Bài làm này không phải của bạn."))
        if not attempt.is_open:  # leaving the page after submitting is no one's business
            db.session.rollback()
            return jsonify({"ok": True, "flagged": False})
        item = snapshots.report("webcam", event, attempt=attempt, detail=detail)
    db.session.commit()
    if item is not None:
        snapshots.push_flag(item)
    return jsonify({"ok": True, "flagged": item is not None})


def _report_detail(raw: Any) -> dict[str, Any]:
    """Keep only small, known fields of what a page says about itself."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("hidden_ms", "tries"):
        value = raw.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            out[key] = min(int(value), 10**9)
    for key in ("how", "error"):
        value = raw.get(key)
        if isinstance(value, str):
            out[key] = value[:80]
    return out


# the images, for proctors and organizers only ------------------------------------------------------

@bp.get("/snapshots/<token>.jpg")
def image(token: str):
    if not current_user.is_authenticated:
        if session.get(KIOSK_SESSION) is not None:
            abort(403)
        return redirect(url_for("accounts.login", next=request.path))
    # a learner, an operator or a rapporteur is refused before any lookup: the answer
    # is the same whether the token exists or not.
    if current_user.role not in VIEWERS:
        abort(403)
    if not TOKEN.match(token):
        abort(404)
    snap = db.session.scalar(sa.select(Snapshot).where(Snapshot.token == token))
    if snap is None:
        abort(404)
    district_id, site_id = snapshots.place_of(snap)
    if not covers(current_user, district_id, site_id):
        abort(404)  # out of scope looks exactly like a token that does not exist
    path = snapshots.file_path(snap)
    db.session.rollback()
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", conditional=False, etag=False, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# what the pages' camera modules are mounted with ------------------------------------------------------

def camera_mount(camera: str, attempt_id: Optional[int] = None) -> dict[str, Any]:
    """Settings, URLs and texts for `startRoomCamera` ("room") or `startWebcamProctoring` ("webcam")."""
    days = int(snapshots.setting("SNAPSHOT_RETENTION_DAYS"))
    common = {
        "uploadUrl": url_for("snapshots.upload"),
        "reportUrl": url_for("snapshots.camera_report"),
        "verdictUrl": url_for("snapshots.upload") + "/",
    }
    if camera == "room":
        interval = int(snapshots.setting("SNAPSHOT_INTERVAL_SECONDS"))
        return common | {"intervalSec": interval, "texts": {
            "notice": _("Camera của phòng học đang bật: cứ %(n)s giây hệ thống chụp một ảnh để điểm danh, "
                        "thay cho cán bộ quản lý lớp. Ảnh chỉ giám thị và Ban Tổ chức có thẩm quyền xem, "
                        "và được xoá sau %(days)s ngày.", n=interval, days=days),
            "starting": _("Đang bật camera…"),
            "on": _("Camera điểm danh đang bật"),
            "sent": _("Đã gửi ảnh điểm danh lúc {time}"),
            "retrying": _("Chưa gửi được ảnh điểm danh – đang thử lại…"),
            "refused": _("Không dùng được camera: hãy cho phép trình duyệt dùng camera để điểm danh."),
            "lost": _("Mất tín hiệu camera – đang thử bật lại…"),
            "requested": _("Giám thị yêu cầu chụp ảnh – đang gửi…"),
            "idle": _("Camera chờ: chỉ chụp khi có buổi giảng hoặc bài kiểm tra."),
            "signed_out": _("Điểm cầu chưa đăng nhập: chưa gửi được ảnh."),
        }}
    return common | {
        "attemptId": attempt_id,
        "minSec": int(snapshots.setting("WEBCAM_SNAPSHOT_MIN_SECONDS")),
        "maxSec": int(snapshots.setting("WEBCAM_SNAPSHOT_MAX_SECONDS")),
        "selfieTries": flags.SELFIE_TRIES,
        "texts": {
            "notice": _("Bài thi này có giám sát bằng camera: hệ thống chụp một ảnh chân dung khi bắt đầu và một số "
                        "ảnh vào thời điểm ngẫu nhiên trong lúc làm bài, để xác nhận đúng người dự thi. Ảnh chỉ giám "
                        "thị có thẩm quyền xem, và được xoá sau %(days)s ngày.", days=days),
            "starting": _("Đang bật camera…"),
            "on": _("Camera giám sát đang bật"),
            "selfie_taking": _("Đang chụp ảnh chân dung – hãy nhìn thẳng vào camera…"),
            "selfie_checking": _("Đang kiểm tra ảnh chân dung…"),
            "selfie_ok": _("Ảnh chân dung hợp lệ. Chúc bạn làm bài tốt."),
            "selfie_retry": _("{reason} Bấm “Chụp lại” (còn {n} lần)."),
            "selfie_failed": _("Ảnh chân dung chưa đạt. Bạn vẫn làm bài bình thường; giám thị sẽ xem lại."),
            "retake": _("Chụp lại"),
            "refused": _("Bạn chưa cho phép dùng camera. Giám thị sẽ được báo; hãy cho phép camera rồi tải lại trang."),
            "lost": _("Mất tín hiệu camera – đang thử bật lại…"),
            "hidden": _("Bạn vừa rời khỏi trang làm bài; việc này được ghi lại để giám thị xem xét."),
            "retrying": _("Chưa gửi được ảnh – đang thử lại…"),
        },
    }
