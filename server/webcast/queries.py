"""Webcast reads and the payloads the pages and pushes carry."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for

from ..accounts.models import User
from ..core.errors import BadInput
from ..core.permissions import scope_clause
from ..core.timeutil import as_utc, to_ms
from ..extensions import db
from ..places.models import BridgePoint, District
from flask_babel import gettext as _
from .models import Announcement, Lecture, LectureStatus, SiteQuestion, SiteStatus, SlideDeck

#: how far back a (re)connecting kiosk is shown the organizers' announcements.
ANNOUNCEMENTS_WINDOW = timedelta(hours=6)
ANNOUNCEMENTS_SHOWN = 5


def path_for(endpoint: str, **values: Any) -> str:
    """A URL path, also outside a request (the exam ticker pushes without one)."""
    if has_request_context():
        return url_for(endpoint, **values)
    adapter = current_app.url_map.bind("localhost", script_name=current_app.config.get("APPLICATION_ROOT") or "/")
    return adapter.build(endpoint, values)


# lectures ------------------------------------------------------------------------

def lecture_or_refuse(lecture_id: Any) -> Lecture:
    lecture = db.session.get(Lecture, lecture_id) if isinstance(lecture_id, int) else None
    if lecture is None:
        raise BadInput("lecture.unknown", _("Buổi giảng không tồn tại."))
    return lecture


def _live(*columns: Any) -> Any:
    """SELECT of the live lecture, the most recently started if several."""
    return (sa.select(*columns).where(Lecture.status == LectureStatus.live)
            .order_by(Lecture.started_at.desc(), Lecture.id.desc()).limit(1))


def current_lecture() -> Optional[Lecture]:
    """What every kiosk shows: the live lecture, the most recently started if several."""
    return db.session.scalar(_live(Lecture))


def current_lecture_id_subquery() -> Any:
    """`current_lecture`'s id as a scalar subquery, to be looked up inside an INSERT."""
    return _live(Lecture.id).scalar_subquery()


def lecture_payload(lecture: Lecture) -> dict[str, Any]:
    rapporteur = db.session.get(User, lecture.rapporteur_id)
    return {
        "id": lecture.id,
        "title": lecture.title,
        "status": lecture.status.value,
        "rapporteur": rapporteur.full_name if rapporteur else "",
        "scheduled_ms": to_ms(lecture.scheduled_at),
        "started_ms": to_ms(lecture.started_at),
        "ended_ms": to_ms(lecture.ended_at),
    }


def slide_payload(lecture: Lecture) -> dict[str, Any]:
    """The current slide: the `slide.changed` push, and what a late joiner opens on."""
    deck = db.session.get(SlideDeck, lecture.current_deck_id) if lecture.current_deck_id else None
    if deck is None:
        return {"lecture_id": lecture.id, "deck_id": None, "page": None, "url": None, "n_pages": 0}
    page = min(max(lecture.current_page or 1, 1), deck.n_pages)
    return {
        "lecture_id": lecture.id,
        "deck_id": deck.id,
        "page": page,
        "url": path_for("webcast.slide_image", folder=deck.folder, page=page),
        "n_pages": deck.n_pages,
    }


def decks_of(lecture_id: int) -> list[dict[str, Any]]:
    decks = db.session.scalars(
        sa.select(SlideDeck).where(SlideDeck.lecture_id == lecture_id).order_by(SlideDeck.created_at, SlideDeck.id)
    )
    return [{"id": d.id, "filename": d.filename, "n_pages": d.n_pages, "created_ms": to_ms(d.created_at)} for d in decks]


# questions ------------------------------------------------------------------------

def question_payload(question: SiteQuestion, site: Optional[BridgePoint] = None) -> dict[str, Any]:
    site = site or db.session.get(BridgePoint, question.bridge_point_id)
    return {
        "id": question.id,
        "lecture_id": question.lecture_id,
        "kind": question.kind,
        "text": question.text,
        "status": question.status,
        "bridge_point_id": question.bridge_point_id,
        "site_code": site.code if site else "",
        "site_name": site.name if site else "",
        "created_ms": to_ms(question.created_at),
        "answered_ms": to_ms(question.answered_at),
    }


def transcript(lecture_id: int, viewer: Any = None) -> list[dict[str, Any]]:
    """Every question and raised hand of a lecture, oldest first (in the viewer's scope)."""
    q = (
        sa.select(SiteQuestion, BridgePoint)
        .join(BridgePoint, BridgePoint.id == SiteQuestion.bridge_point_id)
        .where(SiteQuestion.lecture_id == lecture_id)
        .order_by(SiteQuestion.created_at, SiteQuestion.id)
    )
    if viewer is not None:
        q = q.where(scope_clause(viewer, BridgePoint.district_id, BridgePoint.id))
    return [question_payload(question, site) for question, site in db.session.execute(q)]


# sites -----------------------------------------------------------------------------

def _site_row(bp: BridgePoint, district: str, status: Optional[SiteStatus], lecture_title: Optional[str],
              now: datetime, online_s: float, alert_s: float) -> dict[str, Any]:
    seen = as_utc(status.last_seen_at) if status else None
    silent = (now - seen).total_seconds() if seen else None
    online = silent is not None and silent <= online_s
    return {
        "id": bp.id,
        "code": bp.code,
        "name": bp.name,
        "district_id": bp.district_id,
        "district": district,
        "online": online,
        "last_seen_ms": to_ms(seen),
        "silent_s": None if silent is None else round(max(silent, 0.0), 1),
        # an alert is for a site that was up and dropped, not for one never switched on.
        "alert": silent is not None and not online and silent > alert_s,
        "lecture_id": status.lecture_id if status and online else None,
        "lecture_title": lecture_title if online else None,
        "health": (status.health or None) if status and online else None,
        "audio_only": bool(status and status.audio_only),
        "forced_audio_only": bool(status and status.forced_audio_only),
    }


def site_grid(viewer: Any, district_id: Optional[int], now: datetime, online_s: float, alert_s: float) -> dict[str, Any]:
    """The control room's grid: every bridge point in the viewer's scope (and district filter)."""
    q = (
        sa.select(BridgePoint, District.name, SiteStatus, Lecture.title)
        .join(District, District.id == BridgePoint.district_id)
        .outerjoin(SiteStatus, SiteStatus.bridge_point_id == BridgePoint.id)
        .outerjoin(Lecture, Lecture.id == SiteStatus.lecture_id)
        .where(scope_clause(viewer, BridgePoint.district_id, BridgePoint.id))
        .order_by(District.name, BridgePoint.code)
    )
    if district_id is not None:
        q = q.where(BridgePoint.district_id == district_id)
    sites = [_site_row(bp, name, status, title, now, online_s, alert_s) for bp, name, status, title in db.session.execute(q)]
    in_scope = sa.select(District.id, District.name).order_by(District.name)
    if viewer.district_id is not None:
        in_scope = in_scope.where(District.id == viewer.district_id)
    districts = db.session.execute(in_scope).all()
    return {
        "server_ms": to_ms(now),
        "sites": sites,
        "districts": [{"id": d_id, "name": name} for d_id, name in districts],
        "total": {
            "sites": len(sites),
            "online": sum(s["online"] for s in sites),
            "watching": sum(s["lecture_id"] is not None for s in sites),
            "alerts": sum(s["alert"] for s in sites),
            "audio_only": sum(s["online"] and (s["audio_only"] or s["forced_audio_only"]) for s in sites),
        },
        "alert_after_s": alert_s,
    }


def lecture_sites(lecture_id: int, now: datetime, online_s: float) -> dict[str, Any]:
    """The bridge points watching a lecture now, for the stage page."""
    since = now - timedelta(seconds=online_s)
    rows = db.session.execute(
        sa.select(BridgePoint, District.name, SiteStatus)
        .join(District, District.id == BridgePoint.district_id)
        .join(SiteStatus, SiteStatus.bridge_point_id == BridgePoint.id)
        .where(SiteStatus.lecture_id == lecture_id, SiteStatus.last_seen_at >= since)
        .order_by(District.name, BridgePoint.code)
    ).all()
    sites = [_site_row(bp, name, status, None, now, online_s, float("inf")) for bp, name, status in rows]
    return {"lecture_id": lecture_id, "watching": len(sites), "sites": sites, "server_ms": to_ms(now)}


def site_mode(status: Optional[SiteStatus]) -> dict[str, Any]:
    own = bool(status and status.audio_only)
    forced = bool(status and status.forced_audio_only)
    return {"audio_only": own or forced, "own_audio_only": own, "forced_audio_only": forced,
            "track": "audio" if own or forced else "av"}


# what a kiosk shows -------------------------------------------------------------------

def announcement_payload(item: Announcement) -> dict[str, Any]:
    if item.bridge_point_id is not None:
        target = "site"
    elif item.district_id is not None:
        target = "district"
    else:
        target = "all"
    return {"id": item.id, "text": item.text, "target": target, "created_ms": to_ms(item.created_at)}


def announcements_for(site: BridgePoint, now: datetime) -> list[dict[str, Any]]:
    items = db.session.scalars(
        sa.select(Announcement)
        .where(
            Announcement.created_at >= now - ANNOUNCEMENTS_WINDOW,
            sa.or_(
                Announcement.bridge_point_id == site.id,
                sa.and_(Announcement.bridge_point_id.is_(None), Announcement.district_id == site.district_id),
                sa.and_(Announcement.bridge_point_id.is_(None), Announcement.district_id.is_(None)),
            ),
        )
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
        .limit(ANNOUNCEMENTS_SHOWN)
    )
    return [announcement_payload(a) for a in items]


def exam_payload(exam: Any) -> dict[str, Any]:
    return {
        "exam_id": exam.id,
        "title": exam.title,
        "path": path_for("exam.take", exam_id=exam.id),
        "qr_url": path_for("webcast.exam_qr", exam_id=exam.id),
        "deadline_ms": to_ms(exam.ends_at),
    }


def open_exam() -> Optional[Any]:
    from ..exam.models import Exam, ExamStatus

    return db.session.scalar(
        sa.select(Exam).where(Exam.status == ExamStatus.open).order_by(Exam.started_at.desc(), Exam.id.desc()).limit(1)
    )


def kiosk_state(site: BridgePoint, lecture: Optional[Lecture], now: datetime) -> dict[str, Any]:
    """Everything a (re)connecting kiosk needs to show the room the right thing."""
    exam = open_exam()
    return {
        "server_ms": to_ms(now),
        "bridge_point": {"id": site.id, "code": site.code, "name": site.name, "district_id": site.district_id},
        "lecture": lecture_payload(lecture) if lecture else None,
        "slide": slide_payload(lecture) if lecture else None,
        "mode": site_mode(db.session.get(SiteStatus, site.id)),
        "announcements": announcements_for(site, now),
        "exam": exam_payload(exam) if exam else None,
        "questions": [
            question_payload(q, site) for q in db.session.scalars(
                sa.select(SiteQuestion).where(SiteQuestion.lecture_id == lecture.id, SiteQuestion.bridge_point_id == site.id)
                .order_by(SiteQuestion.created_at.desc()).limit(10)
            )
        ] if lecture else [],
    }
