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
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from ..core.driver_sql import driver_sql
from . import scoring
from .models import Answer, Attempt, AttemptStatus, Exam

CHUNK = 1000


_t = Attempt.__table__.c
_IDS = sa.bindparam("ids", expanding=True)
#: On PostgreSQL the ids travel as one array: `id = ANY(:ids)` is one fixed statement,
#: where an expanding IN is rendered again for every batch's number of ids.
ID_ARRAY = sa.bindparam("ids", type_=postgresql.ARRAY(sa.Integer))
# Built once, with bound parameters: the close at the deadline and every submission
# reuse them without SQLAlchemy building or keying a statement again.
_COUNT_CORRECT = (
    sa.update(Attempt.__table__)
    .where(_t.id.in_(_IDS))
    .values(n_correct=sa.select(sa.func.count())
            .where(Answer.__table__.c.attempt_id == _t.id, Answer.__table__.c.is_correct.is_(True))
            .scalar_subquery())
)
_EXAMS_OF = sa.select(Exam.__table__.c.id, Exam.__table__.c.n_questions, Exam.__table__.c.bands).where(
    Exam.__table__.c.id.in_(sa.select(_t.exam_id).where(_t.id.in_(_IDS)).distinct().scalar_subquery())
)
_score_statements: dict[tuple, Any] = {}
_submit_statements: dict[tuple, Any] = {}
_submit_driver_sql: dict[tuple, tuple[str, dict]] = {}


def _centi(n_correct: Any, n_questions: int) -> Any:
    """The score × 100 as an SQL integer expression (see the module's note)."""
    q = int(n_questions)
    return (sa.cast(n_correct, sa.Integer) * 2000 + q) // (2 * q)


def _band_case(centi: Any, bands: Sequence[Sequence]) -> Any:
    whens = [(centi >= int(Decimal(str(minimum)) * 100), str(label)) for label, minimum in bands[:-1]]
    last = str(bands[-1][0])
    return sa.case(*whens, else_=last) if whens else sa.literal(last)


def _score_statement(n_questions: int, bands: Sequence[Sequence]) -> Any:
    """UPDATE score and band of :ids in exam :of_exam, one statement per (length, bands)."""
    key = (int(n_questions), tuple((str(label), str(minimum)) for label, minimum in bands))
    stmt = _score_statements.get(key)
    if stmt is None:
        centi = _centi(_t.n_correct, n_questions)
        absent = sa.and_(_t.started_at.is_(None), _t.n_correct == 0)
        stmt = (
            sa.update(Attempt.__table__)
            .where(_t.id.in_(_IDS), _t.exam_id == sa.bindparam("of_exam"))
            .values(
                score=sa.case((absent, sa.null()), else_=centi / 100.0),
                band=sa.case((absent, sa.null()), else_=_band_case(centi, bands)),
            )
        )
        if len(_score_statements) < 256:
            _score_statements[key] = stmt
    return stmt


def score_attempts(conn: Connection, attempt_ids: Iterable[int]) -> None:
    """Store n_correct, score and band of these attempts from their answers.

    A learner who never started and answered nothing gets no score (absent, not 0).
    """
    ids = sorted(set(attempt_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        conn.execute(_COUNT_CORRECT, {"ids": chunk})
        for exam_id, n_questions, bands in conn.execute(_EXAMS_OF, {"ids": chunk}).all():
            stmt = _score_statement(n_questions, bands or scoring.DEFAULT_BANDS)
            conn.execute(stmt, {"ids": chunk, "of_exam": exam_id})


def submit_statement(n_questions: int, bands: Sequence[Sequence], *, id_array: bool = False) -> Any:
    """UPDATE … RETURNING that ends the attempts :ids as submitted at :now and scores them
    in the same statement (a submission has started by definition, so it always gets a
    score). Returns id, status, deadline_at, paused_at, n_correct, score, band.

    `id_array` (PostgreSQL only) takes :ids as one array instead of an expanding IN, which
    SQLAlchemy renders again for every execution's number of ids."""
    key = (int(n_questions), tuple((str(label), str(minimum)) for label, minimum in bands), id_array)
    stmt = _submit_statements.get(key)
    if stmt is None:
        stmt = _submit_update(n_questions, bands, id_array).returning(*SUBMITTED)
        if len(_submit_statements) < 256:
            _submit_statements[key] = stmt
    return stmt


def submit_driver_sql(dialect: Any, n_questions: int, bands: Sequence[Sequence], suffix: str) -> tuple[str, dict]:
    """The same UPDATE without RETURNING, as driver SQL (`server.core.driver_sql`), its ids
    an array bound as `ids<suffix>` and its time as the shared `now`: the answer writer
    sends it in one string with the batch's other writes, its COMMIT and the read of the
    results (`SUBMITTED`)."""
    key = (int(n_questions), tuple((str(label), str(minimum)) for label, minimum in bands), dialect.name, suffix)
    out = _submit_driver_sql.get(key)
    if out is None:
        out = driver_sql(_submit_update(n_questions, bands, True), dialect, suffix, shared=("now",))
        if len(_submit_driver_sql) < 256:
            _submit_driver_sql[key] = out
    return out


#: what a submission returns for its ack.
SUBMITTED = (_t.id, _t.status, _t.deadline_at, _t.paused_at, _t.n_correct, _t.score, _t.band)


def _submit_update(n_questions: int, bands: Sequence[Sequence], id_array: bool) -> Any:
    """The right answers are counted once per attempt, in a derived table: written inline,
    the count would run again for the score and for every band's comparison."""
    a = Answer.__table__.c
    correct = (sa.select(sa.func.count()).where(a.attempt_id == _t.id, a.is_correct.is_(True))
               .scalar_subquery())
    picked = _t.id == sa.any_(ID_ARRAY) if id_array else _t.id.in_(_IDS)
    # MATERIALIZED: PostgreSQL would otherwise pull the derived table up into the
    # UPDATE and run the count once per use of n (six times).
    counts = (sa.select(_t.id.label("aid"), correct.label("n")).where(picked)
              .cte("counted").prefix_with("MATERIALIZED", dialect="postgresql"))
    centi = _centi(counts.c.n, n_questions)
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    return (
        sa.update(Attempt.__table__)
        .where(_t.id == counts.c.aid)
        .values(status=AttemptStatus.submitted, ended_at=now, started_at=sa.func.coalesce(_t.started_at, now),
                n_correct=counts.c.n, score=centi / 100.0, band=_band_case(centi, bands))
    )
