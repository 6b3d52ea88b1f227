"""Proctors' decisions on flags: confirm or dismiss, always with a note, never erased.

A decision is a new FlagDecision row; the flag's status follows the latest one, so a
decision can be revisited and the whole history stays readable (who, when, why).
"""
from __future__ import annotations

import logging
import unicodedata
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from ..accounts.models import Role, User
from ..attendance.models import CheckIn
from ..attendance.queries import CHECKIN_INVALID
from ..core.errors import BadInput, Forbidden
from ..core.permissions import require_cover
from ..extensions import db
from ..places.models import BridgePoint
from . import queries
from .models import SEVERITY, Flag, FlagDecision

log = logging.getLogger(__name__)

DECISIONS = ("confirmed", "dismissed")
REVIEWERS = (Role.organizer, Role.proctor)
NOTE_MAX = 2000
#: a check-in marked invalid weighs like a low headcount: it changes the attendance figures.
CHECKIN_INVALID_SEVERITY = 70


def _note(text: str | None) -> str:
    note = unicodedata.normalize("NFC", text or "").strip()
    if not note:
        raise BadInput("review.note_required", _("Hãy ghi lý do cho quyết định (bắt buộc)."))
    if len(note) > NOTE_MAX:
        raise BadInput("review.note_too_long", _("Ghi chú dài quá %(n)d ký tự.", n=NOTE_MAX))
    return note


def require_reviewer(user: User, flag: Flag) -> None:
    """A proctor or organizer whose scope covers the flag's place."""
    if user.role not in REVIEWERS:
        raise Forbidden("review.reviewers_only", _("Chỉ giám thị và Ban tổ chức mới xem xét cảnh báo."))
    district_id, bp_id = queries.flag_place(flag)
    if district_id is None and bp_id is None:
        if user.district_id is not None:  # a flag with no place belongs to the province
            raise Forbidden("scope.outside", _("Cảnh báo này thuộc cấp tỉnh, ngoài phạm vi quản lý của bạn."))
        return
    require_cover(user, district_id, bp_id)


def decide(flag: Flag, decision: str, note: str | None, by: User, now: datetime) -> FlagDecision:
    """Record a reviewer's decision on a flag with its reason; the flag takes that status."""
    if decision not in DECISIONS:
        raise BadInput("review.bad_decision", _("Hãy chọn xác nhận hoặc bỏ qua cảnh báo."))
    require_reviewer(by, flag)
    row = FlagDecision(flag_id=flag.id, decision=decision, note=_note(note), by_user_id=by.id, at=now)
    db.session.add(row)
    flag.status = decision
    db.session.flush()
    log.info("flag %s %s by %s", flag.id, decision, by.id)
    return row


def mark_check_in_invalid(check_in: CheckIn, note: str | None, by: User, now: datetime) -> Flag:
    """A reviewer finds a check-in false (the camera shows nobody in that seat, a friend
    scanned for someone): a `checkin_invalid` flag, confirmed at once with the reason, so
    the check-in leaves the attended count. Dismissing that flag later brings it back."""
    note = _note(note)
    flag = db.session.scalar(
        sa.select(Flag).where(Flag.kind == CHECKIN_INVALID, Flag.lecture_id == check_in.lecture_id,
                              Flag.detail["user_id"].as_integer() == check_in.user_id)
    )
    if flag is None:
        place = db.session.get(BridgePoint, check_in.bridge_point_id)
        flag = Flag(
            kind=CHECKIN_INVALID, severity=SEVERITY.get(CHECKIN_INVALID, CHECKIN_INVALID_SEVERITY),
            lecture_id=check_in.lecture_id, bridge_point_id=place.id,
            detail={"user_id": check_in.user_id, "check_in_id": check_in.id, "method": check_in.method},
            created_at=now, status="open",
        )
        require_reviewer(by, flag)
        db.session.add(flag)
        db.session.flush()
    decide(flag, "confirmed", note, by, now)
    return flag
