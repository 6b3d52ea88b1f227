"""Exams, their codes, the learners' attempts and answers.

An exam moves draft → scheduled → open → closed. Scheduling draws the questions,
generates and stores the codes and creates one attempt per registered learner with a
code assigned; opening fixes the common deadline; the hub closes every attempt itself.
"""
from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from ..core.errors import Conflict
from ..core.timeutil import as_utc, now_utc
from ..extensions import db
from flask_babel import gettext as _


class ExamStatus(str, enum.Enum):
    draft = "draft"
    scheduled = "scheduled"
    open = "open"
    closed = "closed"


class AttemptStatus(str, enum.Enum):
    #: created at scheduling; the learner has not joined yet.
    pending = "pending"
    in_progress = "in_progress"
    #: the learner submitted before the deadline.
    submitted = "submitted"
    #: the hub closed it at the deadline.
    closed = "closed"


OPEN_ATTEMPT = (AttemptStatus.pending, AttemptStatus.in_progress)


class Exam(db.Model):
    __tablename__ = "exam"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    status: so.Mapped[ExamStatus] = so.mapped_column(
        sa.Enum(ExamStatus, native_enum=False, length=20), default=ExamStatus.draft, index=True
    )
    n_questions: so.Mapped[int] = so.mapped_column(default=50)
    duration_minutes: so.Mapped[int] = so.mapped_column(default=120)
    n_codes: so.Mapped[int] = so.mapped_column(default=2)
    #: seed of the draw and of the codes: the same seed gives the same exam.
    seed: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    #: planned opening (UTC); the scheduler opens the exam then, or the organizer's button.
    opens_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    started_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    #: the common deadline; attempts may carry their own extensions on top.
    ends_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    closed_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    #: whether a learner sees the score when the attempt ends.
    show_score: so.Mapped[bool] = so.mapped_column(default=True)
    #: grade bands as [[label, min_score], ...] from the highest; None means the default.
    bands: so.Mapped[Optional[list]] = so.mapped_column(sa.JSON)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)

    quotas: so.Mapped[list["ExamQuota"]] = so.relationship(
        back_populates="exam", cascade="all, delete-orphan"
    )
    codes: so.Mapped[list["ExamCode"]] = so.relationship(
        back_populates="exam", order_by="ExamCode.index", cascade="all, delete-orphan"
    )

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    def schedule(self) -> None:
        if self.status != ExamStatus.draft:
            raise Conflict("exam.not_draft", _("Chỉ lên lịch được bài thi đang ở trạng thái nháp."))
        self.status = ExamStatus.scheduled

    def open(self, now: datetime | None = None) -> None:
        if self.status != ExamStatus.scheduled:
            raise Conflict("exam.not_scheduled", _("Bài thi chưa sẵn sàng để mở hoặc đã mở."))
        now = now or now_utc()
        self.status = ExamStatus.open
        self.started_at = now
        self.ends_at = now + self.duration

    def close(self, now: datetime | None = None) -> None:
        if self.status != ExamStatus.open:
            raise Conflict("exam.not_open", _("Bài thi không ở trạng thái đang thi."))
        self.status = ExamStatus.closed
        self.closed_at = now or now_utc()


class ExamQuota(db.Model):
    """How many questions of one topic the exam draws."""

    __tablename__ = "exam_quota"
    exam_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("exam.id"), primary_key=True)
    topic_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("topic.id"), primary_key=True)
    count: so.Mapped[int] = so.mapped_column()

    exam: so.Mapped[Exam] = so.relationship(back_populates="quotas")


class ExamCode(db.Model):
    """One variant of an exam: the same questions in another order, choices shuffled."""

    __tablename__ = "exam_code"
    __table_args__ = (sa.UniqueConstraint("exam_id", "label"),)
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    exam_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("exam.id"), index=True)
    index: so.Mapped[int] = so.mapped_column()
    #: printed label, e.g. "101".
    label: so.Mapped[str] = so.mapped_column(sa.String(20))
    #: [{"q": question_id, "c": [choice_id, ...]}, ...] in the code's order.
    layout: so.Mapped[list] = so.mapped_column(sa.JSON)
    #: AES key that unseals the paper sent ahead of the start; released at the start.
    seal_key: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary(32))

    exam: so.Mapped[Exam] = so.relationship(back_populates="codes")


def remaining_time(deadline_at: Optional[datetime], paused_at: Optional[datetime],
                   now: Optional[datetime] = None) -> Optional[timedelta]:
    """Time left on an attempt's clock; a paused clock stands at the pause."""
    if deadline_at is None:
        return None
    now = as_utc(paused_at) or now or now_utc()
    return max(timedelta(0), as_utc(deadline_at) - now)


def answer_refusal(status: "AttemptStatus", deadline_at: Optional[datetime], paused_at: Optional[datetime],
                   now: datetime, grace: timedelta) -> Optional[str]:
    """None if an attempt in this state may record an answer now, else the refusal's code.

    A function of the row's columns, so the answer writer can apply it to plain rows.
    """
    if status not in OPEN_ATTEMPT:
        return "attempt.closed"
    if deadline_at is None:
        return "exam.not_started"
    if paused_at is not None:
        return "attempt.paused"
    if now > as_utc(deadline_at) + grace:
        return "attempt.deadline_passed"
    return None


class Attempt(db.Model):
    __tablename__ = "attempt"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    exam_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("exam.id"), index=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"), index=True)
    code_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("exam_code.id"))
    #: copied from the learner at scheduling so that statistics group without joins.
    bridge_point_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bridge_point.id"))
    district_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("district.id"))
    status: so.Mapped[AttemptStatus] = so.mapped_column(
        sa.Enum(AttemptStatus, native_enum=False, length=20), default=AttemptStatus.pending
    )
    started_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    #: the server's deadline for this attempt (exam end + extensions + pauses).
    deadline_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    #: set while the attempt's clock is stopped (an incident at its bridge point).
    paused_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    ended_at: so.Mapped[Optional[datetime]] = so.mapped_column(sa.DateTime(timezone=True))
    n_correct: so.Mapped[Optional[int]] = so.mapped_column()
    score: so.Mapped[Optional[float]] = so.mapped_column(sa.Float)
    band: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40))

    code: so.Mapped[ExamCode] = so.relationship()
    exam: so.Mapped[Exam] = so.relationship()

    __table_args__ = (
        sa.UniqueConstraint("exam_id", "user_id"),
        sa.Index("ix_attempt_exam_status", "exam_id", "status"),
        sa.Index("ix_attempt_exam_bp", "exam_id", "bridge_point_id"),
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ATTEMPT

    def remaining(self, now: datetime | None = None) -> Optional[timedelta]:
        return remaining_time(self.deadline_at, self.paused_at, now)

    def accepts_answers(self, now: datetime, grace: timedelta) -> Optional[str]:
        """None if an answer may be recorded now, else the refusal's error code."""
        return answer_refusal(self.status, self.deadline_at, self.paused_at, now, grace)

    def start(self, now: datetime) -> None:
        if self.status == AttemptStatus.pending:
            self.status = AttemptStatus.in_progress
            self.started_at = now

    def pause(self, now: datetime) -> bool:
        if not self.is_open or self.paused_at is not None or self.deadline_at is None:
            return False
        self.paused_at = now
        return True

    def resume(self, now: datetime) -> bool:
        if self.paused_at is None:
            return False
        self.deadline_at = as_utc(self.deadline_at) + (now - as_utc(self.paused_at))
        self.paused_at = None
        return True

    def extend(self, seconds: int) -> None:
        self.deadline_at = as_utc(self.deadline_at) + timedelta(seconds=seconds)


class Answer(db.Model):
    __tablename__ = "answer"
    attempt_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("attempt.id"), primary_key=True)
    question_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("question.id"), primary_key=True)
    #: None means the learner cleared the answer (the row may still carry a review mark).
    choice_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("choice.id"))
    #: marked for review.
    flagged: so.Mapped[bool] = so.mapped_column(default=False)
    #: the client's revision counter: a resent older answer never overwrites a newer one.
    seq: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    is_correct: so.Mapped[bool] = so.mapped_column(default=False)
    saved_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)


class HubProcess(db.Model):
    """A running hub process. Its heartbeat vouches for the sockets it reports: when a
    process dies, its learners stop counting as connected one TTL later."""

    __tablename__ = "hub_process"
    #: random, new at every start.
    id: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    beat_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))


class AttemptPresence(db.Model):
    """A learner's exam page holds a socket on this hub process.

    Kept off the `attempt` row on purpose: presence is written every few seconds and must
    never wait on, or hold, the row locks of the answer writer.
    """

    __tablename__ = "attempt_presence"
    attempt_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("attempt.id", ondelete="CASCADE"), primary_key=True)
    hub_id: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True, index=True)
    since: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True))


class TimeAdjustment(db.Model):
    """A pause, resume or extension for a bridge point or one learner, with its reason."""

    __tablename__ = "time_adjustment"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    exam_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("exam.id"), index=True)
    bridge_point_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bridge_point.id"))
    attempt_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("attempt.id"))
    #: "pause", "resume" or "extend".
    kind: so.Mapped[str] = so.mapped_column(sa.String(10))
    seconds: so.Mapped[int] = so.mapped_column(default=0)
    reason: so.Mapped[str] = so.mapped_column(sa.Text)
    n_attempts: so.Mapped[int] = so.mapped_column(default=0)
    by_user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("user.id"))
    at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)


def default_bands() -> list[list[Any]]:
    from .scoring import DEFAULT_BANDS

    return [list(b) for b in DEFAULT_BANDS]
