"""Check-in at a bridge point: the kiosk's QR token, its rotating code, the operator's tick.

The QR code on the room's screen carries a signed token naming the live lecture and the
bridge point, valid for a few minutes; the kiosk fetches a fresh one before that, so a
photo of the screen sent to someone at home soon stops working. The six-digit code is an
HMAC of the lecture, the bridge point and the current time window: every hub process
computes the same code, nothing is stored. The code of the previous window is still
taken, so a learner typing the code just as it changes is not refused.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta, timezone
from typing import Optional

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Role, User
from ..core.errors import BadInput, Conflict, Forbidden
from ..core.i18n import fmt_datetime
from ..core.permissions import require_cover
from ..extensions import db
from ..places.models import BridgePoint
from ..webcast.models import Lecture, LectureStatus
from .models import CheckIn

log = logging.getLogger(__name__)

METHODS = ("qr", "code", "operator")
#: a QR token is taken this long after the kiosk drew it (setting CHECKIN_TOKEN_SECONDS).
TOKEN_SECONDS = 600
#: the six-digit code changes this often (setting CHECKIN_CODE_SECONDS).
CODE_SECONDS = 300
#: a token "from the future" beyond this (clock skew between hub processes) is refused.
CLOCK_SKEW = 60


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


# the QR token -----------------------------------------------------------------------

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="attendance-checkin")


def checkin_token(lecture_id: int, bridge_point_id: int, now: datetime) -> str:
    """A signed token for the check-in URL: lecture, bridge point and when it was drawn."""
    return _serializer().dumps({"l": lecture_id, "b": bridge_point_id, "t": int(now.timestamp())})


def token_expires_at(now: datetime) -> datetime:
    return now + timedelta(seconds=_setting("CHECKIN_TOKEN_SECONDS", TOKEN_SECONDS))


def read_checkin_token(token: str, now: datetime) -> tuple[int, int]:
    """(lecture id, bridge point id) of a check-in token, or a BadInput saying what is wrong."""
    if not isinstance(token, str) or len(token) > 300:
        raise BadInput("checkin.bad_token", _("Mã QR không hợp lệ. Hãy quét lại mã trên màn hình của điểm cầu."))
    try:
        data = _serializer().loads(token)
        lecture_id, bp_id, issued = int(data["l"]), int(data["b"]), int(data["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise BadInput("checkin.bad_token",
                       _("Mã QR không hợp lệ. Hãy quét lại mã trên màn hình của điểm cầu.")) from None
    age = now.timestamp() - issued
    if age > _setting("CHECKIN_TOKEN_SECONDS", TOKEN_SECONDS) or age < -CLOCK_SKEW:
        raise BadInput("checkin.expired_token",
                       _("Mã QR đã hết hạn. Hãy quét lại mã mới trên màn hình của điểm cầu, "
                         "hoặc nhập mã điểm danh gồm 6 chữ số."))
    return lecture_id, bp_id


# the six-digit code -----------------------------------------------------------------

def _window(now: datetime) -> int:
    return int(now.timestamp()) // _setting("CHECKIN_CODE_SECONDS", CODE_SECONDS)


def _code_for(lecture_id: int, bridge_point_id: int, window: int) -> str:
    key = hashlib.sha256(b"attendance-code:" + str(current_app.config["SECRET_KEY"]).encode()).digest()
    digest = hmac.new(key, f"{lecture_id}:{bridge_point_id}:{window}".encode(), hashlib.sha256).digest()
    offset = digest[-1] & 0x0F  # HOTP's dynamic truncation (RFC 4226)
    return f"{(int.from_bytes(digest[offset:offset + 4], 'big') & 0x7FFFFFFF) % 1_000_000:06d}"


def checkin_code(lecture_id: int, bridge_point_id: int, now: datetime) -> tuple[str, datetime]:
    """The code the kiosk shows now, and when it changes."""
    window = _window(now)
    seconds = _setting("CHECKIN_CODE_SECONDS", CODE_SECONDS)
    changes_at = datetime.fromtimestamp((window + 1) * seconds, timezone.utc)
    return _code_for(lecture_id, bridge_point_id, window), changes_at


def code_matches(code: str, lecture_id: int, bridge_point_id: int, now: datetime) -> bool:
    window = _window(now)
    return any(hmac.compare_digest(code, _code_for(lecture_id, bridge_point_id, w)) for w in (window, window - 1))


def normalize_code(text: Optional[str]) -> str:
    code = "".join(ch for ch in (text or "") if not ch.isspace())
    if len(code) != 6 or not code.isdigit():
        raise BadInput("checkin.bad_code", _("Mã điểm danh gồm đúng 6 chữ số, như trên màn hình của điểm cầu."))
    return code


def lecture_for_code(learner: User, code: str, now: datetime) -> tuple[Lecture, int]:
    """The live lecture whose code at some bridge point is `code`: the learner's own first.

    Looking at the other bridge points too lets the page say "not your bridge point"
    instead of "wrong code" to someone who typed the code of the room they sit in.
    """
    lectures = db.session.scalars(
        sa.select(Lecture).where(Lecture.status == LectureStatus.live).order_by(Lecture.started_at.desc())
    ).all()
    if not lectures:
        raise Conflict("checkin.not_live", _("Hiện không có buổi giảng nào đang phát trực tiếp để điểm danh."))
    own = learner.bridge_point_id
    for lecture in lectures:
        if own is not None and code_matches(code, lecture.id, own, now):
            return lecture, own
    others = db.session.scalars(sa.select(BridgePoint.id).where(BridgePoint.id != own)).all()
    for lecture in lectures:
        for bp_id in others:
            if code_matches(code, lecture.id, bp_id, now):
                return lecture, bp_id
    raise BadInput("checkin.wrong_code",
                   _("Mã điểm danh không đúng hoặc đã hết hạn. Hãy nhập mã đang hiện trên màn hình của điểm cầu."))


# check-ins --------------------------------------------------------------------------

def find_check_in(lecture_id: int, user_id: int) -> Optional[CheckIn]:
    return db.session.scalar(sa.select(CheckIn).where(CheckIn.lecture_id == lecture_id, CheckIn.user_id == user_id))


def _already(existing: CheckIn, learner: User, by: User) -> Conflict:
    if by.id == learner.id:
        message = _("Bạn đã điểm danh buổi giảng này lúc %(t)s.", t=fmt_datetime(existing.at))
    else:
        message = _("Học viên %(name)s đã điểm danh lúc %(t)s.", name=learner.full_name, t=fmt_datetime(existing.at))
    return Conflict("checkin.already", message, at=fmt_datetime(existing.at))


def _record(lecture: Lecture, learner: User, bridge_point_id: int, method: str, by: User, now: datetime) -> CheckIn:
    existing = find_check_in(lecture.id, learner.id)
    if existing is not None:
        raise _already(existing, learner, by)
    check_in = CheckIn(lecture_id=lecture.id, user_id=learner.id, bridge_point_id=bridge_point_id,
                       method=method, by_user_id=by.id, at=now)
    db.session.add(check_in)
    try:
        db.session.flush()
    except IntegrityError:  # the same learner twice at the same instant: the other one won
        db.session.rollback()
        existing = find_check_in(lecture.id, learner.id)
        raise _already(existing, learner, by) if existing else Conflict("checkin.already") from None
    log.info("check-in: lecture %s learner %s at bp %s by %s (%s)", lecture.id, learner.id, bridge_point_id, by.id, method)
    return check_in


def check_in(learner: User, lecture: Lecture, bridge_point_id: int, method: str, now: datetime) -> CheckIn:
    """The learner says they are present: only at their own bridge point, while the lecture
    is live, and once. Raises a DomainError with a message for the learner otherwise."""
    if method not in ("qr", "code"):
        raise BadInput("checkin.bad_method")
    require_may_check_in(learner, lecture, bridge_point_id)
    return _record(lecture, learner, bridge_point_id, method, learner, now)


def require_may_check_in(learner: User, lecture: Lecture, bridge_point_id: int) -> None:
    """The checks of `check_in` without the write: the QR page says what is wrong before
    the learner presses anything."""
    if learner.role != Role.learner:
        raise Forbidden("checkin.learners_only", _("Chỉ học viên mới tự điểm danh được."))
    if lecture.status != LectureStatus.live:
        raise Conflict("checkin.not_live",
                       _("Buổi giảng “%(title)s” không đang phát trực tiếp: chỉ điểm danh được trong giờ giảng.",
                         title=lecture.title))
    if learner.bridge_point_id != bridge_point_id:
        here = db.session.get(BridgePoint, bridge_point_id)
        own = db.session.get(BridgePoint, learner.bridge_point_id) if learner.bridge_point_id else None
        if own is None:
            message = _("Bạn chưa được xếp vào điểm cầu nào. Hãy báo cán bộ kỹ thuật của điểm cầu.")
        else:
            message = _("Bạn học tại điểm cầu %(own)s, không phải %(here)s. Hãy điểm danh tại điểm cầu của mình.",
                        own=f"{own.code} – {own.name}", here=f"{here.code} – {here.name}" if here else "?")
        raise Forbidden("checkin.wrong_site", message)


def _operated(operator: User, lecture: Lecture, learner: User) -> None:
    if operator.role != Role.operator:
        raise Forbidden("checkin.operators_only", _("Chỉ cán bộ kỹ thuật của điểm cầu mới đánh dấu danh sách."))
    if learner.role != Role.learner or learner.bridge_point_id is None:
        raise BadInput("checkin.not_learner", _("Người này không phải học viên của một điểm cầu."))
    require_cover(operator, learner.district_id, learner.bridge_point_id)
    if lecture.status == LectureStatus.planned:
        raise Conflict("checkin.not_started", _("Buổi giảng chưa bắt đầu: chưa điểm danh được."))


def tick(operator: User, lecture: Lecture, learner: User, now: datetime) -> CheckIn:
    """The operator marks a learner of their own bridge point present (during or after the
    lecture: a room whose link dropped fills its roster in afterwards)."""
    _operated(operator, lecture, learner)
    return _record(lecture, learner, learner.bridge_point_id, "operator", operator, now)


def untick(operator: User, lecture: Lecture, learner: User) -> None:
    """The operator takes a learner of their own bridge point off the roster of a lecture."""
    _operated(operator, lecture, learner)
    existing = find_check_in(lecture.id, learner.id)
    if existing is None:
        raise Conflict("checkin.none", _("Học viên %(name)s chưa điểm danh.", name=learner.full_name))
    db.session.delete(existing)
    db.session.flush()
    log.info("check-in removed: lecture %s learner %s by operator %s", lecture.id, learner.id, operator.id)
