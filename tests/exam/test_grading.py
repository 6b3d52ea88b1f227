"""The set-based scoring in SQL gives exactly what the pure `scoring` module says,
for every possible count, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.exam import grading, scoring
from server.exam.delivery import SUBMIT, Pending, write_batch
from server.exam import operations as exam_ops
from server.exam.models import Answer, Attempt, AttemptStatus
from server.core.timeutil import now_utc
from server.extensions import db


def _grade_everyone(n_questions: int, bands, *, by_submission: bool = False, by_writer: bool = False) -> list[tuple]:
    from factories import make_world

    # one learner per possible count, plus one who never started
    world = make_world(n_districts=1, bps_per_district=1, learners_per_bp=n_questions + 2,
                       n_topics=1, per_topic=16, quota=n_questions, schedule=False)
    exam = world.exam
    exam.bands = bands
    exam_ops.schedule_exam(exam)
    exam_ops.open_exam(exam.id)
    db.session.commit()
    attempts = db.session.scalars(sa.select(Attempt).where(Attempt.exam_id == exam.id).order_by(Attempt.id)).all()
    qids = [item["q"] for item in attempts[0].code.layout]
    expected = {}
    for i, attempt in enumerate(attempts[:-1]):  # attempt i answers i questions right, the rest wrong
        attempt.status, attempt.started_at = AttemptStatus.in_progress, exam.started_at
        for k, qid in enumerate(qids):
            db.session.add(Answer(attempt_id=attempt.id, question_id=qid, seq=1, is_correct=k < i))
        value = scoring.score(i, n_questions)
        expected[attempt.id] = (i, value, scoring.band(value, bands or scoring.DEFAULT_BANDS))
    expected[attempts[-1].id] = (0, None, None)  # absent: no score at all, not zero
    db.session.flush()
    if by_writer:  # the answer writer's PostgreSQL lane: the scoring in its one round trip
        del expected[attempts[-1].id]
        db.session.commit()
        items = [Pending(SUBMIT, a.id, a.user_id, a.code_id) for a in attempts[:-1]]
        engine = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                write_batch(conn, items, now_utc(), timedelta(seconds=5), own_transaction=True)
        finally:
            engine.dispose()
        assert {(it.attempt_id, it.result.get("n_correct"), it.result.get("score"), it.result.get("band"),
                 it.result.get("status")) for it in items} == {
            (aid, *want, "submitted") for aid, want in expected.items()}
    elif by_submission:  # what a submission stores and returns, in one statement
        del expected[attempts[-1].id]
        stmt = grading.submit_statement(n_questions, bands or scoring.DEFAULT_BANDS)
        returned = db.session.connection().execute(stmt, {"ids": list(expected), "now": now_utc()}).all()
        assert {(r.id, r.n_correct, r.score, r.band, r.status) for r in returned} == {
            (aid, *want, AttemptStatus.submitted) for aid, want in expected.items()}
    else:
        grading.score_attempts(db.session.connection(), [a.id for a in attempts])
    db.session.commit()
    got = db.session.execute(sa.select(Attempt.id, Attempt.n_correct, Attempt.score, Attempt.band)
                             .where(Attempt.exam_id == exam.id, Attempt.id.in_(expected))).all()
    return [(expected[aid], (n, s, b)) for aid, n, s, b in got]


CASES = [
    (3, None),  # thirds: 3.33 / 6.67
    (7, None),
    (16, [["Cao", 6.88], ["Vừa", 0.63], ["Thấp", 0]]),  # 0.625 → 0.63 half-up, edges hit exactly
    (3, [["Đạt", 3.33], ["Chưa đạt", 0]]),
]


@pytest.mark.parametrize("n_questions,bands", CASES)
def test_sql_scores_equal_pure_scores_sqlite(app, n_questions, bands):
    pairs = _grade_everyone(n_questions, bands)
    assert len(pairs) == n_questions + 2
    for want, got in pairs:
        assert got == want


@pytest.mark.parametrize("n_questions,bands", CASES)
def test_sql_scores_equal_pure_scores_postgresql(pg_app, n_questions, bands):
    for want, got in _grade_everyone(n_questions, bands):
        assert got == want


@pytest.mark.parametrize("path", ["statement-sqlite", "writer-postgresql"])
@pytest.mark.parametrize("n_questions,bands", CASES)
def test_a_submission_is_scored_as_it_is_stored(request, path, n_questions, bands):
    """The submission's own statement on SQLite; on PostgreSQL the answer writer's lane,
    whose scoring and read of the result share one round trip with its COMMIT."""
    request.getfixturevalue("app" if path == "statement-sqlite" else "pg_app")
    pairs = _grade_everyone(n_questions, bands, by_submission=path == "statement-sqlite",
                            by_writer=path == "writer-postgresql")
    assert len(pairs) == n_questions + 1
    for want, got in pairs:
        assert got == want
