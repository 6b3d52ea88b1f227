"""Webcast changes: lectures, slides, questions from the sites, announcements, site modes.

Operations flush and return; the caller (a view or a socket handler) commits, then calls
the `push_*` helpers at the bottom so that nobody is told of a change that was rolled
back. Pushes go to rooms through Socket.IO's message queue, so they reach sockets held
by any hub process:

    all              every kiosk             district:<id>   the kiosks of a district
    bp:<id>          one bridge point        lecture:<id>    everyone showing a lecture
    stage:<id>       the lecture's stage     control         the control-room pages
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from ..accounts.models import Role, User
from ..core.errors import BadInput, Conflict, Forbidden
from ..core.permissions import covers
from ..core.timeutil import now_utc, to_ms
from ..extensions import db, socketio
from ..places.models import BridgePoint, District
from . import queries, slides
from .models import Announcement, Lecture, LectureStatus, SiteQuestion, SiteStatus, SlideDeck

log = logging.getLogger(__name__)
NS = "/live"

#: webcast settings and their defaults; each can be set in the app config or as
#: DIEMCAU_<NAME> in the environment.
SETTINGS: dict[str, float] = {
    #: how often each hub process writes what its kiosks reported (one batch per process).
    "WEBCAST_HEALTH_FLUSH_SECONDS": 3.0,
    #: a bridge point is online if its kiosk was seen within this many seconds.
    "WEBCAST_ONLINE_SECONDS": 15.0,
    #: the control room raises an alert for a site offline longer than this.
    "WEBCAST_OFFLINE_ALERT_SECONDS": 30.0,
    "WEBCAST_SLIDES_MAX_BYTES": 20 * 1024 * 1024,
    "WEBCAST_SLIDES_MAX_PAGES": 300,
}
MAX_TEXT = 1000
#: a site may send this many questions (or hands) per QUESTION_WINDOW.
QUESTION_BURST, QUESTION_WINDOW = 5, timedelta(seconds=30)


def setting(name: str) -> float:
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(f"DIEMCAU_{name}", SETTINGS[name])
    return float(value)


def clean_text(value: Any, *, field: str, required: bool) -> str:
    """NFC, trimmed, at most MAX_TEXT characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadInput("payload.bad_field", _("Trường “%(key)s” phải là văn bản.", key=field), field=field)
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise BadInput("text.empty", _("Nội dung không được để trống."), field=field)
    if len(text) > MAX_TEXT:
        raise BadInput("text.too_long", _("Nội dung dài quá %(n)d ký tự.", n=MAX_TEXT), field=field, max=MAX_TEXT)
    return text


# who runs a lecture --------------------------------------------------------------------

def runs_lecture(who: Any, lecture: Lecture) -> bool:
    """The lecture's rapporteur, or a province organizer. `who`: a User or a socket Identity."""
    role = getattr(who, "role", None)
    if role == Role.rapporteur:
        return user_id_of(who) == lecture.rapporteur_id
    return role == Role.organizer and who.district_id is None


def user_id_of(who: Any) -> int:
    return who.user_id if hasattr(who, "user_id") else who.id


def require_runner(who: Any, lecture: Lecture) -> None:
    if not runs_lecture(who, lecture):
        raise Forbidden("lecture.forbidden", _("Chỉ báo cáo viên của buổi giảng hoặc Ban Tổ chức cấp tỉnh mới làm được việc này."))


# lectures --------------------------------------------------------------------------------

def create_lecture(title: str, rapporteur_id: Optional[int], scheduled_at: Optional[datetime],
                   topic_id: Optional[int] = None) -> Lecture:
    """A planned lecture on a topic, given by a rapporteur at a scheduled time (UTC)."""
    title = unicodedata.normalize("NFC", title or "").strip()
    if not title:
        raise BadInput("lecture.no_title", _("Hãy nhập tên buổi giảng."))
    if len(title) > 300:
        raise BadInput("lecture.title_too_long", _("Tên buổi giảng dài quá 300 ký tự."))
    rapporteur = db.session.get(User, rapporteur_id) if rapporteur_id else None
    if rapporteur is None or rapporteur.role != Role.rapporteur or not rapporteur.active:
        raise BadInput("lecture.bad_rapporteur", _("Hãy chọn một báo cáo viên."))
    if scheduled_at is None:
        raise BadInput("lecture.no_time", _("Hãy nhập thời gian dự kiến (dd/mm/yyyy HH:MM)."))
    if topic_id is not None:
        from ..questions.models import Topic

        if db.session.get(Topic, topic_id) is None:
            raise BadInput("lecture.bad_topic", _("Chuyên đề không tồn tại."))
    lecture = Lecture(title=title, rapporteur_id=rapporteur.id, scheduled_at=scheduled_at, topic_id=topic_id)
    db.session.add(lecture)
    db.session.flush()
    log.info("lecture %s created: %s", lecture.id, title)
    return lecture


def start_lecture(lecture: Lecture, now: Optional[datetime] = None) -> None:
    """Mark the lecture live: every kiosk switches to it (the most recently started wins)."""
    lecture.start(now or now_utc())
    db.session.flush()
    log.info("lecture %s started", lecture.id)


def end_lecture(lecture: Lecture, now: Optional[datetime] = None) -> None:
    """End the lecture and close its recording (if the recorder is installed)."""
    lecture.end(now or now_utc())
    db.session.flush()
    try:
        from .recording import finish_recording
    except ImportError:
        finish_recording = None
    if finish_recording is not None:
        try:
            finish_recording(lecture)
        except Exception:  # the lecture must end even if its recording cannot be closed
            log.exception("closing the recording of lecture %s failed", lecture.id)
    log.info("lecture %s ended", lecture.id)


# slides ------------------------------------------------------------------------------------

#: PDFium must not run in two threads at once; one upload renders at a time per process.
_pdfium = threading.Lock()

SLIDE_MESSAGES = {
    "slides.empty": lambda d: _("Tệp trống. Hãy chọn tệp PDF của bài giảng."),
    "slides.too_large": lambda d: _("Tệp quá lớn: tối đa %(mb)d MB.", mb=int(d["max_bytes"]) // (1024 * 1024)),
    "slides.not_pdf": lambda d: _("Tệp không phải là PDF. Hãy xuất bài trình chiếu ra PDF rồi tải lên lại."),
    "slides.corrupt": lambda d: _("Tệp PDF bị hỏng hoặc chưa tải lên hết, không đọc được."),
    "slides.encrypted": lambda d: _("Tệp PDF có đặt mật khẩu hoặc mã hoá. Hãy lưu lại bản không mật khẩu rồi tải lên."),
    "slides.no_pages": lambda d: _("Tệp PDF không có trang nào."),
    "slides.too_many_pages": lambda d: _("Tệp PDF có %(n)d trang, nhiều hơn mức cho phép (%(max)d trang).",
                                         n=d["n_pages"], max=d["max_pages"]),
}


def slides_root() -> Path:
    return Path(current_app.instance_path) / "slides"


def add_slides(lecture_id: int, filename: str, data: bytes) -> SlideDeck:
    """Render a PDF into the lecture's new deck and show its first page.

    The PDF is checked and drawn to PNGs in a scratch folder off the event loop, then
    moved into place; a refused file leaves nothing behind. Call it holding no database
    transaction: rendering 300 pages takes a while.
    """
    from ..realtime import run_blocking

    root = slides_root()
    folder = secrets.token_urlsafe(18)
    scratch = root / f".tmp-{folder}"
    scratch.mkdir(parents=True)
    try:
        with _pdfium:
            n_pages, refusal = run_blocking(
                _render, data, scratch,
                max_bytes=int(setting("WEBCAST_SLIDES_MAX_BYTES")), max_pages=int(setting("WEBCAST_SLIDES_MAX_PAGES")),
            )
        if refusal is not None:
            raise BadInput(refusal.code, SLIDE_MESSAGES[refusal.code](refusal.details))
        scratch.rename(root / folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        lecture = queries.lecture_or_refuse(lecture_id)
        if lecture.status == LectureStatus.ended:
            raise Conflict("lecture.ended", _("Buổi giảng đã kết thúc."))
        name = unicodedata.normalize("NFC", Path(filename or "").name).strip()[:300] or "slides.pdf"
        deck = SlideDeck(lecture_id=lecture.id, filename=name, folder=folder, n_pages=n_pages)
        db.session.add(deck)
        db.session.flush()
        lecture.current_deck_id, lecture.current_page = deck.id, 1
        db.session.flush()
    except Exception:
        shutil.rmtree(root / folder, ignore_errors=True)
        raise
    log.info("lecture %s: deck %s with %s pages", lecture_id, deck.id, n_pages)
    return deck


def _render(data: bytes, out_dir: Path, **limits: int) -> tuple[int, Optional[slides.SlideFileError]]:
    """A refusal comes back as a value: the thread pool would log a raised one as a crash."""
    try:
        return slides.render_pdf(data, out_dir, **limits), None
    except slides.SlideFileError as err:
        return 0, err


def flip_slide(lecture: Lecture, page: int, deck_id: Optional[int] = None) -> None:
    """Show page `page` (from 1) of the current deck, or of `deck_id` if given."""
    if lecture.status == LectureStatus.ended:
        raise Conflict("lecture.ended", _("Buổi giảng đã kết thúc."))
    deck_id = deck_id or lecture.current_deck_id
    if deck_id is None:
        raise BadInput("slide.no_deck", _("Buổi giảng chưa có tệp trình chiếu."))
    deck = db.session.get(SlideDeck, deck_id)
    if deck is None or deck.lecture_id != lecture.id:
        raise BadInput("slide.unknown_deck", _("Tệp trình chiếu không thuộc buổi giảng này."))
    if not 1 <= page <= deck.n_pages:
        raise BadInput("slide.bad_page", _("Không có trang %(page)d: tệp có %(n)d trang.", page=page, n=deck.n_pages),
                       page=page, n_pages=deck.n_pages)
    lecture.current_deck_id, lecture.current_page = deck.id, page
    db.session.flush()


# questions from the sites -------------------------------------------------------------------

def ask_question(lecture_id: Any, bridge_point_id: int, kind: Any, text: Any,
                 now: Optional[datetime] = None) -> tuple[SiteQuestion, bool]:
    """A written question or a raised hand from a bridge point; returns (item, created).

    A hand already raised and not yet answered is not raised twice. A site sending
    more than QUESTION_BURST items in QUESTION_WINDOW is asked to wait: one noisy room
    must not bury the others' questions.
    """
    now = now or now_utc()
    if kind not in ("question", "hand"):
        raise BadInput("question.bad_kind", _("Loại yêu cầu phải là câu hỏi hoặc giơ tay."))
    text = clean_text(text, field="text", required=kind == "question")
    lecture = queries.lecture_or_refuse(lecture_id)
    if lecture.status != LectureStatus.live:
        raise Conflict("lecture.not_live", _("Buổi giảng không đang phát."))
    if kind == "hand":
        raised = db.session.scalar(
            sa.select(SiteQuestion).where(SiteQuestion.lecture_id == lecture.id, SiteQuestion.bridge_point_id == bridge_point_id,
                                          SiteQuestion.kind == "hand", SiteQuestion.status == "open")
        )
        if raised is not None:
            return raised, False
    recent = db.session.scalar(
        sa.select(sa.func.count()).select_from(SiteQuestion)
        .where(SiteQuestion.bridge_point_id == bridge_point_id, SiteQuestion.created_at >= now - QUESTION_WINDOW)
    )
    if recent >= QUESTION_BURST:
        raise Conflict("question.too_fast", _("Điểm cầu gửi quá nhiều yêu cầu, vui lòng đợi ít phút."))
    item = SiteQuestion(lecture_id=lecture.id, bridge_point_id=bridge_point_id, kind=kind, text=text, created_at=now)
    db.session.add(item)
    db.session.flush()
    return item, True


def mark_question(question: SiteQuestion, status: Any, now: Optional[datetime] = None) -> None:
    if status not in ("answered", "dismissed"):
        raise BadInput("question.bad_status", _("Trạng thái phải là “đã trả lời” hoặc “bỏ qua”."))
    question.status = status
    question.answered_at = now or now_utc()
    db.session.flush()


def question_or_refuse(question_id: Any) -> SiteQuestion:
    item = db.session.get(SiteQuestion, question_id) if isinstance(question_id, int) else None
    if item is None:
        raise BadInput("question.unknown", _("Câu hỏi không tồn tại."))
    return item


# announcements and site modes -----------------------------------------------------------------

def announce(by: Any, target: Any, target_id: Optional[int], text: Any) -> tuple[Announcement, str]:
    """A message from the control room to one site, one district or all; returns it and its room.

    `by` is the organizer (a User or a socket Identity); the target must lie in their scope.
    """
    text = clean_text(text, field="text", required=True)
    item = Announcement(by_user_id=user_id_of(by), text=text)
    if target == "site":
        site = db.session.get(BridgePoint, target_id) if isinstance(target_id, int) else None
        if site is None:
            raise BadInput("announce.unknown_site", _("Điểm cầu không tồn tại."))
        _require_cover(by, site.district_id, site.id)
        item.bridge_point_id, item.district_id, room = site.id, site.district_id, f"bp:{site.id}"
    elif target == "district":
        district = db.session.get(District, target_id) if isinstance(target_id, int) else None
        if district is None:
            raise BadInput("announce.unknown_district", _("Huyện không tồn tại."))
        _require_cover(by, district.id, None)
        item.district_id, room = district.id, f"district:{district.id}"
    elif target == "all":
        if by.district_id is not None:
            raise Forbidden("scope.province_only", _("Chỉ Ban Tổ chức cấp tỉnh mới nhắn được cho mọi điểm cầu."))
        room = "all"
    else:
        raise BadInput("announce.bad_target", _("Hãy chọn nơi nhận: một điểm cầu, một huyện hoặc tất cả."))
    db.session.add(item)
    db.session.flush()
    return item, room


def _require_cover(who: Any, district_id: Optional[int], bridge_point_id: Optional[int]) -> None:
    if not covers(who, district_id, bridge_point_id):
        raise Forbidden("scope.outside", _("Điểm cầu này nằm ngoài phạm vi quản lý của bạn."))


def ensure_site_status(ids: Iterable[int]) -> None:
    """Create the missing SiteStatus rows; safe against another hub process doing the same."""
    ids = sorted(set(ids))
    if not ids:
        return
    have = set(db.session.scalars(sa.select(SiteStatus.bridge_point_id).where(SiteStatus.bridge_point_id.in_(ids))))
    missing = [{"bridge_point_id": i} for i in ids if i not in have]
    if not missing:
        return
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(SiteStatus).on_conflict_do_nothing(index_elements=["bridge_point_id"]), missing)


def set_site_mode(site_id: int, *, own: Optional[bool] = None, forced: Optional[bool] = None) -> SiteStatus:
    """Audio + slides only: the site's own choice (`own`) or the control room's (`forced`)."""
    ensure_site_status([site_id])
    status = db.session.get(SiteStatus, site_id)
    if own is not None:
        status.audio_only = own
    if forced is not None:
        status.forced_audio_only = forced
    db.session.flush()
    return status


def site_in_scope(who: Any, site_id: Any) -> BridgePoint:
    site = db.session.get(BridgePoint, site_id) if isinstance(site_id, int) else None
    if site is None:
        raise BadInput("site.unknown", _("Điểm cầu không tồn tại."))
    _require_cover(who, site.district_id, site.id)
    return site


# pushes: call after the commit --------------------------------------------------------------------

def push_lecture_state(lecture: Lecture) -> None:
    payload = queries.lecture_payload(lecture)
    socketio.emit("lecture.state", payload, to=["all", f"lecture:{lecture.id}", "control"], namespace=NS)


def push_slide(lecture: Lecture) -> dict[str, Any]:
    payload = queries.slide_payload(lecture) | {"at_ms": to_ms(now_utc())}
    socketio.emit("slide.changed", payload, to=f"lecture:{lecture.id}", namespace=NS)
    return payload


def push_question(question: SiteQuestion, event: str) -> dict[str, Any]:
    payload = queries.question_payload(question)
    socketio.emit(event, payload, to=[f"stage:{question.lecture_id}", f"bp:{question.bridge_point_id}"], namespace=NS)
    return payload


def push_announcement(item: Announcement, room: str) -> dict[str, Any]:
    payload = queries.announcement_payload(item)
    socketio.emit("announcement", payload, to=room, namespace=NS)
    socketio.emit("control.changed", {"announcement": payload["id"]}, to="control", namespace=NS)
    return payload


def push_site_mode(site_id: int, status: SiteStatus) -> dict[str, Any]:
    payload = queries.site_mode(status) | {"bridge_point_id": site_id}
    socketio.emit("site.mode", payload, to=f"bp:{site_id}", namespace=NS)
    socketio.emit("control.changed", {"bridge_point_id": site_id}, to="control", namespace=NS)
    return payload


def notify_exam_opened(exam: Any) -> None:
    """An exam opened: every kiosk shows its QR code and link for the learners' phones.

    Call after the commit that opened it (server/exam/notify.py::exam_started)."""
    socketio.emit("exam.opened", queries.exam_payload(exam), to="all", namespace=NS)


def notify_exam_closed(exam_id: int) -> None:
    """The exam closed: the kiosks take its QR code down (server/exam/notify.py::exam_closed)."""
    socketio.emit("exam.closed", {"exam_id": exam_id}, to="all", namespace=NS)
