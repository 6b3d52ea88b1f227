"""Scoring in the database, set-based: one pass over thousands of attempts at the deadline.

`scoring` says what a score and a band are (pure Python, the reference); this module
writes the same rules as SQL so that closing 10,000 attempts is two statements per
chunk instead of 10,000 round trips. It takes a SQLAlchemy Connection and no Flask, so
the answer writer (its own connection) and the ticker (the request session's) share it.

Exactness: a score is 10 × n / q rounded half-up to 2 decimals. In integers that is
centi = (2000·n + q) div (2·q), and a band's minimum m is reached when
centi ≥ round(100·m): no floating point anywhere, on PostgreSQL and SQLite alike.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import scoring
from .models import Answer, Attempt, Exam

CHUNK = 1000


def _centi(n_correct: Any, n_questions: int) -> Any:
    """The score × 100 as an SQL integer expression (see the module's note)."""
    q = int(n_questions)
    return (sa.cast(n_correct, sa.Integer) * 2000 + q) // (2 * q)


def _band_case(centi: Any, bands: Sequence[Sequence]) -> Any:
    whens = [(centi >= int(Decimal(str(minimum)) * 100), str(label)) for label, minimum in bands[:-1]]
    last = str(bands[-1][0])
    return sa.case(*whens, else_=last) if whens else sa.literal(last)


def score_attempts(conn: Connection, attempt_ids: Iterable[int]) -> None:
    """Store n_correct, score and band of these attempts from their answers.

    A learner who never started and answered nothing gets no score (absent, not 0).
    """
    ids = sorted(set(attempt_ids))
    if not ids:
        return
    correct = (
        sa.select(sa.func.count())
        .where(Answer.attempt_id == Attempt.id, Answer.is_correct.is_(True))
        .scalar_subquery()
    )
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        conn.execute(sa.update(Attempt).where(Attempt.id.in_(chunk)).values(n_correct=correct))
        exams = conn.execute(
            sa.select(Exam.id, Exam.n_questions, Exam.bands)
            .where(Exam.id.in_(sa.select(Attempt.exam_id).where(Attempt.id.in_(chunk)).distinct()))
        ).all()
        for exam_id, n_questions, bands in exams:
            bands = bands or scoring.DEFAULT_BANDS
            centi = _centi(Attempt.n_correct, n_questions)
            absent = sa.and_(Attempt.started_at.is_(None), Attempt.n_correct == 0)
            conn.execute(
                sa.update(Attempt)
                .where(Attempt.id.in_(chunk), Attempt.exam_id == exam_id)
                .values(
                    score=sa.case((absent, sa.null()), else_=centi / 100.0),
                    band=sa.case((absent, sa.null()), else_=_band_case(centi, bands)),
                )
            )
