"""Flags for proctors to review, and every decision taken on them."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from ..core.timeutil import now_utc
from ..extensions import db

#: kind → severity (higher is reviewed first).
SEVERITY = {
    "replayed": 90,
    "multiple_faces": 80,
    "headcount_low": 70,
    "checkin_invalid": 70,
    "empty_room": 70,
    "camera_refused": 65,
    "camera_lost": 60,
    "camera_offline": 60,
    "no_face": 55,
    "selfie_failed": 55,
    "covered": 50,
    "frozen": 50,
    "moved": 40,
    "page_hidden": 35,
    "dark": 30,
    "blurred": 20,
}


class Flag(db.Model):
    __tablename__ = "flag"
    __table_args__ = (sa.Index("ix_flag_status_severity", "status", "severity"),)
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(30))
    severity: so.Mapped[int] = so.mapped_column()
    lecture_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("lecture.id"), index=True)
    exam_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("exam.id"), index=True)
    bridge_point_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bridge_point.id"), index=True)
    attempt_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("attempt.id"), index=True)
    snapshot_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("snapshot.id"))
    detail: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)
    #: "open", "confirmed" or "dismissed".
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="open")


class FlagDecision(db.Model):
    """Who decided what on a flag, when, and why. Never updated, only added."""

    __tablename__ = "flag_decision"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    flag_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("flag.id"), index=True)
    #: "confirmed" or "dismissed".
    decision: so.Mapped[str] = so.mapped_column(sa.String(10))
    note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    by_user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"))
    at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)
