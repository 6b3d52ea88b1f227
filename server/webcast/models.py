"""Live lectures: one rapporteur to every bridge point, slides, questions from the sites."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from ..core.errors import Conflict
from ..core.timeutil import now_utc
from ..extensions import db


class LectureStatus(str, enum.Enum):
    planned = "planned"
    live = "live"
    ended = "ended"


class Lecture(db.Model):
    """A lecture on one topic, tied to a class schedule; the webcast's session."""

    __tablename__ = "lecture"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    topic_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("topic.id"))
    rapporteur_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"), index=True)
    status: so.Mapped[LectureStatus] = so.mapped_column(
        sa.Enum(LectureStatus, native_enum=False, length=20), default=LectureStatus.planned, index=True
    )
    #: when the class schedule has it (UTC).
    scheduled_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    started_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    ended_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    current_deck_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("slide_deck.id", use_alter=True))
    current_page: so.Mapped[int] = so.mapped_column(default=1)
    #: recording file name under the instance folder's recordings/ (random, not guessable).
    recording_file: so.Mapped[Optional[str]] = so.mapped_column(sa.String(100))
    recording_bytes: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    duration_ms: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)

    def start(self, now: datetime) -> None:
        if self.status != LectureStatus.planned:
            raise Conflict("lecture.not_planned", "Buổi giảng đã bắt đầu hoặc đã kết thúc.")
        self.status, self.started_at = LectureStatus.live, now

    def end(self, now: datetime) -> None:
        if self.status != LectureStatus.live:
            raise Conflict("lecture.not_live", "Buổi giảng không đang phát.")
        self.status, self.ended_at = LectureStatus.ended, now


class SlideDeck(db.Model):
    __tablename__ = "slide_deck"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    lecture_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("lecture.id"), index=True)
    filename: so.Mapped[str] = so.mapped_column(sa.String(300))
    #: folder name under the instance folder's slides/ (random, not guessable).
    folder: so.Mapped[str] = so.mapped_column(sa.String(100), unique=True)
    n_pages: so.Mapped[int] = so.mapped_column()
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)


class SiteQuestion(db.Model):
    """A written question or a raised hand from a bridge point, kept with the lecture."""

    __tablename__ = "site_question"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    lecture_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("lecture.id"), index=True)
    bridge_point_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("bridge_point.id"))
    #: "question" or "hand".
    kind: so.Mapped[str] = so.mapped_column(sa.String(10))
    text: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    #: "open", "answered" or "dismissed".
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="open")
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)
    answered_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))


class Announcement(db.Model):
    """A message from the control room to one site, a district, or all (both ids None)."""

    __tablename__ = "announcement"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    by_user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"))
    district_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("district.id"))
    bridge_point_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bridge_point.id"))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)


class SiteStatus(db.Model):
    """What the control room knows of a bridge point's kiosk, written in batches."""

    __tablename__ = "site_status"
    bridge_point_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("bridge_point.id"), primary_key=True)
    last_seen_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    lecture_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("lecture.id"))
    #: the site chose audio + slides only.
    audio_only: so.Mapped[bool] = so.mapped_column(default=False)
    #: the control room switched the site to audio + slides only.
    forced_audio_only: so.Mapped[bool] = so.mapped_column(default=False)
    #: last health report: buffer_s, bitrate_kbps, dropped, rtt_ms, state.
    health: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
