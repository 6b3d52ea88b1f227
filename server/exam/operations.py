"""Changes to exams and attempts. They flush and return; the caller commits once.

Updates that several hub processes might race on (opening an exam, closing attempts at
the deadline) are written as conditional UPDATEs, so exactly one process wins each.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Iterable, Optional

import sqlalchemy as sa

from ..accounts.models import Role, User
from ..core.errors import BadInput, Conflict, NotFound
from ..core.timeutil import now_utc
from ..extensions import db
from ..questions.models import Choice, Question
from . import codes as codegen
from . import grading, scoring
from .models import (
    OPEN_ATTEMPT,
    Answer,
    Attempt,
    AttemptStatus,
    Exam,
    ExamCode,
    ExamQuota,
    ExamStatus,
    TimeAdjustment,
)
from .papers import new_seal_key
from flask_babel import gettext as _


def create_exam(
    title: str,
    quotas: dict[int, int],
    *,
    duration_minutes: int = 120,
    n_codes: int = 2,
    opens_at: Optional[datetime] = None,
    show_score: bool = True,
    bands: Optional[list] = None,
    seed: Optional[int] = None,
) -> Exam:
    """A draft exam drawing `quotas[topic_id]` questions per topic."""
    title = (title or "").strip()
    if not title:
        raise BadInput("exam.no_title", _("Bài thi cần có tên."))
    if not 1 <= duration_minutes <= 600:
        raise BadInput("exam.bad_duration", _("Thời gian làm bài phải từ 1 đến 600 phút."))
    if not 1 <= n_codes <= 26:
        raise BadInput("exam.bad_codes", _("Số mã đề phải từ 1 đến 26."))
    quotas = {int(t): int(n) for t, n in quotas.items() if int(n) > 0}
    if not quotas:
        raise BadInput("exam.no_questions", _("Bài thi cần ít nhất một câu hỏi."))
    if bands is not None:
        try:
            bands = [list(b) for b in scoring.validate_bands(bands)]
        except scoring.BandError as err:
            raise BadInput("exam.bad_bands", str(err)) from None
    exam = Exam(
        title=title,
        n_questions=sum(quotas.values()),
        duration_minutes=duration_minutes,
        n_codes=n_codes,
        opens_at=opens_at,
        show_score=show_score,
        bands=bands,
        seed=seed if seed is not None else random.SystemRandom().randrange(1, 2**31),
    )
    exam.quotas = [ExamQuota(topic_id=t, count=n) for t, n in quotas.items()]
    db.session.add(exam)
    db.session.flush()
    return exam


def _pool() -> dict[int, list[int]]:
    rows = db.session.execute(sa.select(Question.topic_id, Question.id).where(Question.active))
    pool: dict[int, list[int]] = {}
    for topic_id, qid in rows:
        pool.setdefault(topic_id, []).append(qid)
    return pool


def _choices_of(qids: list[int]) -> dict[int, list[codegen.ChoiceInfo]]:
    out: dict[int, list[codegen.ChoiceInfo]] = {q: [] for q in qids}
    rows = db.session.scalars(
        sa.select(Choice).where(Choice.question_id.in_(qids)).order_by(Choice.question_id, Choice.position)
    )
    for c in rows:
        out[c.question_id].append(codegen.ChoiceInfo(c.id, c.text, c.is_correct))
    for qid, items in out.items():
        if sum(1 for c in items if c.is_correct) != 1 or len(items) < 2:
            raise Conflict("exam.bad_question", _("Câu hỏi #%(qid)s không có đúng một đáp án đúng.", qid=qid))
    return out


def schedule_exam(exam: Exam, learners: Optional[Iterable[User]] = None) -> int:
    """Draw the questions, store the codes and create one attempt per learner.

    Codes alternate along each bridge point's seat order, so neighbours get different
    codes. Returns the number of attempts created.
    """
    exam.schedule()
    try:
        qids = codegen.draw_questions(_pool(), {q.topic_id: q.count for q in exam.quotas}, exam.seed)
    except codegen.QuotaError as err:
        from ..questions.models import Topic

        topic = db.session.get(Topic, err.topic_id)
        raise Conflict(
            "exam.quota_too_large",
            _("Chuyên đề “%(topic)s” chỉ có %(have)d câu hỏi, bài thi cần %(need)d.",
              topic=topic.name if topic else err.topic_id, have=err.have, need=err.need),
        ) from None
    layouts = codegen.generate_codes(qids, _choices_of(qids), exam.n_codes, exam.seed)
    labels = codegen.code_labels(exam.n_codes)
    exam.codes = [
        ExamCode(index=i, label=labels[i], layout=layout, seal_key=new_seal_key())
        for i, layout in enumerate(layouts)
    ]
    db.session.flush()
    if learners is None:
        learners = db.session.scalars(
            sa.select(User)
            .where(User.role == Role.learner, User.active)
            .order_by(User.bridge_point_id, User.seat, User.id)
        ).all()
    learners = list(learners)
    assigned = codegen.assign_codes(
        [(u.bridge_point_id, u.seat if u.seat is not None else u.id) for u in learners], exam.n_codes
    )
    rows = [
        {
            "exam_id": exam.id,
            "user_id": u.id,
            "code_id": exam.codes[k].id,
            "bridge_point_id": u.bridge_point_id,
            "district_id": u.district_id,
            "status": AttemptStatus.pending,
        }
        for u, k in zip(learners, assigned)
    ]
    if rows:
        db.session.execute(sa.insert(Attempt), rows)
    return len(rows)


def open_exam(exam_id: int, now: Optional[datetime] = None) -> Optional[Exam]:
    """Open a scheduled exam now and set every attempt's deadline.

    A compare-and-set UPDATE: if two hub processes (or the scheduler and the organizer's
    button) try at once, one wins and the other gets None.
    """
    now = now or now_utc()
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise NotFound("exam.unknown", _("Bài thi không tồn tại."))
    ends_at = now + exam.duration
    won = db.session.execute(
        sa.update(Exam)
        .where(Exam.id == exam_id, Exam.status == ExamStatus.scheduled)
        .values(status=ExamStatus.open, started_at=now, ends_at=ends_at)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        return None
    db.session.execute(
        sa.update(Attempt)
        .where(Attempt.exam_id == exam_id, Attempt.status.in_(OPEN_ATTEMPT))
        .values(deadline_at=ends_at)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(exam)
    return exam


def due_exams(now: datetime) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(Exam.id).where(Exam.status == ExamStatus.scheduled, Exam.opens_at <= now)
        )
    )


def attempt_for(user_id: int, exam_id: int) -> Attempt:
    attempt = db.session.scalar(
        sa.select(Attempt).where(Attempt.exam_id == exam_id, Attempt.user_id == user_id)
    )
    if attempt is None:
        raise NotFound("attempt.not_registered", _("Bạn không có tên trong danh sách dự thi của bài này."))
    return attempt


def join_attempt(user_id: int, exam_id: int, now: Optional[datetime] = None) -> Attempt:
    """The learner opens the exam: start the clock's record if the exam is open."""
    now = now or now_utc()
    attempt = attempt_for(user_id, exam_id)
    exam = attempt.exam
    if exam.status == ExamStatus.draft:
        raise Conflict("exam.not_scheduled", _("Bài thi chưa được lên lịch."))
    if exam.status == ExamStatus.open and attempt.deadline_at is not None:
        attempt.start(now)
    return attempt


def answers_of(attempt_id: int) -> dict[int, dict]:
    rows = db.session.execute(
        sa.select(Answer.question_id, Answer.choice_id, Answer.flagged, Answer.seq).where(
            Answer.attempt_id == attempt_id
        )
    )
    return {q: {"choice": c, "flagged": f, "seq": s} for q, c, f, s in rows}


def close_due_attempts(now: datetime, grace: timedelta) -> list[int]:
    """Close every attempt whose deadline (plus grace) has passed and score it."""
    limit = now - grace
    ids = list(
        db.session.scalars(
            sa.update(Attempt)
            .where(
                Attempt.status.in_(OPEN_ATTEMPT),
                Attempt.deadline_at.is_not(None),
                Attempt.paused_at.is_(None),
                Attempt.deadline_at < limit,
            )
            .values(status=AttemptStatus.closed, ended_at=now)
            .returning(Attempt.id)
            .execution_options(synchronize_session=False)
        )
    )
    if ids:
        score_attempts(ids)
    return ids


def score_attempts(attempt_ids: list[int]) -> None:
    """Score these attempts from their answers (set-based: see `grading`)."""
    grading.score_attempts(db.session.connection(), attempt_ids)
    db.session.expire_all()


def close_finished_exams(now: datetime) -> list[int]:
    """Close open exams that have no open attempt left."""
    still_open = sa.select(Attempt.id).where(Attempt.exam_id == Exam.id, Attempt.status.in_(OPEN_ATTEMPT)).exists()
    ids = list(
        db.session.scalars(
            sa.update(Exam)
            .where(Exam.status == ExamStatus.open, Exam.ends_at <= now, ~still_open)
            .values(status=ExamStatus.closed, closed_at=now)
            .returning(Exam.id)
            .execution_options(synchronize_session=False)
        )
    )
    return ids


# incidents ------------------------------------------------------------------

def _target_attempts(exam: Exam, bridge_point_id: Optional[int], attempt_id: Optional[int]) -> list[Attempt]:
    if exam.status != ExamStatus.open:
        raise Conflict("exam.not_open", _("Chỉ điều chỉnh thời gian khi bài thi đang diễn ra."))
    q = sa.select(Attempt).where(Attempt.exam_id == exam.id, Attempt.status.in_(OPEN_ATTEMPT))
    if attempt_id is not None:
        q = q.where(Attempt.id == attempt_id)
    elif bridge_point_id is not None:
        q = q.where(Attempt.bridge_point_id == bridge_point_id)
    else:
        raise BadInput("adjust.no_target", _("Cần chọn một điểm cầu hoặc một học viên."))
    return list(db.session.scalars(q.with_for_update()))


def adjust_time(
    exam: Exam,
    kind: str,
    *,
    by: User,
    reason: str,
    bridge_point_id: Optional[int] = None,
    attempt_id: Optional[int] = None,
    seconds: int = 0,
    now: Optional[datetime] = None,
) -> tuple[TimeAdjustment, list[Attempt]]:
    """Pause, resume or extend the clock of one bridge point's learners or of one learner.

    Everyone else's clock is untouched. The reason is required and recorded.
    """
    now = now or now_utc()
    reason = (reason or "").strip()
    if not reason:
        raise BadInput("adjust.no_reason", _("Cần ghi rõ lý do điều chỉnh thời gian."))
    if kind not in ("pause", "resume", "extend"):
        raise BadInput("adjust.bad_kind", _("Loại điều chỉnh không hợp lệ."))
    if kind == "extend" and not 0 < seconds <= 4 * 3600:
        raise BadInput("adjust.bad_seconds", _("Thời gian cộng thêm phải từ 1 giây đến 4 giờ."))
    targets = _target_attempts(exam, bridge_point_id, attempt_id)
    changed = []
    for attempt in targets:
        if kind == "pause" and attempt.pause(now):
            changed.append(attempt)
        elif kind == "resume" and attempt.resume(now):
            changed.append(attempt)
        elif kind == "extend":
            attempt.extend(seconds)
            changed.append(attempt)
    record = TimeAdjustment(
        exam_id=exam.id,
        bridge_point_id=bridge_point_id,
        attempt_id=attempt_id,
        kind=kind,
        seconds=seconds,
        reason=reason,
        n_attempts=len(changed),
        by_user_id=by.id,
        at=now,
    )
    db.session.add(record)
    db.session.flush()
    return record, changed


def attempt_state(attempt, now: Optional[datetime] = None) -> dict:
    """What a learner's page needs of its attempt; `attempt` is a model or a row with its columns."""
    from ..core.timeutil import to_ms
    from .models import remaining_time

    remaining = remaining_time(attempt.deadline_at, attempt.paused_at, now)
    status = attempt.status
    return {
        "attempt_id": attempt.id,
        "status": getattr(status, "value", status),
        "deadline_ms": to_ms(attempt.deadline_at),
        "paused": attempt.paused_at is not None,
        "remaining_ms": None if remaining is None else int(remaining.total_seconds() * 1000),
    }
