"""Attendance by check-in and camera snapshots."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from ..core.timeutil import now_utc
from ..extensions import db


class CheckIn(db.Model):
    """A learner present at a bridge point for a lecture: QR scan, code, or the operator's tick."""

    __tablename__ = "check_in"
    __table_args__ = (sa.UniqueConstraint("lecture_id", "user_id"),)
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    lecture_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("lecture.id"), index=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"), index=True)
    bridge_point_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("bridge_point.id"), index=True)
    #: "qr", "code" or "operator".
    method: so.Mapped[str] = so.mapped_column(sa.String(10))
    by_user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"))
    at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)


class Snapshot(db.Model):
    """A camera image: the file lives under the instance folder, named by a random token."""

    __tablename__ = "snapshot"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    #: random, unguessable; the file name and the handle in URLs (which still check scope).
    token: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    bridge_point_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bridge_point.id"), index=True)
    attempt_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("attempt.id"), index=True)
    lecture_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("lecture.id"), index=True)
    #: "room", "requested", "selfie" or "random".
    kind: so.Mapped[str] = so.mapped_column(sa.String(10))
    taken_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc, index=True)
    size_bytes: so.Mapped[int] = so.mapped_column()
    width: so.Mapped[Optional[int]] = so.mapped_column()
    height: so.Mapped[Optional[int]] = so.mapped_column()
    #: "pending", "analysed" or "failed".
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="pending")
    headcount: so.Mapped[Optional[int]] = so.mapped_column()
    faces: so.Mapped[Optional[list]] = so.mapped_column(sa.JSON)
    health: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
    detector: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))
    error: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))


class CameraHistory(db.Model):
    """A camera's recent history (hashes, reference frame) for frozen/moved/replayed checks.

    Kept in the database, not in a process, so any hub process can analyse the next frame.
    """

    __tablename__ = "camera_history"
    #: "bp:<id>" for a room camera, "attempt:<id>" for a learner's webcam.
    camera: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    data: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary)
    updated_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)
