"""One batch of the answer writer, in one transaction: what it writes, what it refuses,
and in which order answers and submissions of the same attempt take effect."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.core.timeutil import as_utc, now_utc
from server.exam import operations as exam_ops
from server.exam import scoring
from server.exam.delivery import ANSWER, SUBMIT, Pending, write_batch
from server.exam.models import Answer, Attempt, AttemptStatus
from server.exam.papers import load_code
from server.extensions import db

GRACE = timedelta(seconds=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def opened(request):
    return _opened(request, request.param)


@pytest.fixture
def opened_pg(request):
    return _opened(request, "postgresql")


def _opened(request, backend):
    from factories import make_world

    request.getfixturevalue("app" if backend == "sqlite" else "pg_app")
    world = make_world()
    exam_ops.open_exam(world.exam.id)
    db.session.commit()
    attempts = db.session.scalars(sa.select(Attempt).where(Attempt.exam_id == world.exam.id).order_by(Attempt.id)).all()
    return world, attempts


def _answer(attempt: Attempt, k: int, seq: int, right: bool = True) -> Pending:
    code = load_code(attempt.code_id)
    qid = code.paper[k]["id"]
    choice = code.key[qid] if right else next(c for c in code.allowed[qid] if c != code.key[qid])
    return Pending(ANSWER, attempt.id, attempt.user_id, attempt.code_id, qid, choice, False, seq, right)


def _run(batch, now=None):
    with db.engine.begin() as conn:
        write_batch(conn, batch, now or now_utc(), GRACE)
    db.session.expire_all()
    return [it.result for it in batch]


def _stored(attempt_id):
    return {q: (c, s) for q, c, s in db.session.execute(
        sa.select(Answer.question_id, Answer.choice_id, Answer.seq).where(Answer.attempt_id == attempt_id))}


def test_answers_are_written_and_the_newest_revision_wins(opened):
    _, (a, b, *_) = opened
    first, newer, older = _answer(a, 0, 1, right=False), _answer(a, 0, 3), _answer(a, 0, 2, right=False)
    other = _answer(b, 1, 1)
    results = _run([first, newer, older, other])
    assert all(r["ok"] for r in results)
    assert _stored(a.id) == {newer.question_id: (newer.choice_id, 3)}
    assert _stored(b.id) == {other.question_id: (other.choice_id, 1)}
    # a later batch resending an older revision does not overwrite the newer one
    assert _run([_answer(a, 0, 2, right=False)])[0]["ok"]
    assert _stored(a.id)[newer.question_id] == (newer.choice_id, 3)
    assert db.session.get(Attempt, a.id).status == AttemptStatus.in_progress


def test_a_submission_scores_what_came_before_it_and_refuses_what_came_after(opened):
    _, (a, *_) = opened
    before = [_answer(a, k, 1) for k in range(3)]
    submit = Pending(SUBMIT, a.id, a.user_id, a.code_id)
    after = _answer(a, 3, 1)
    results = _run(before + [submit, after])
    assert all(r["ok"] for r in results[:3])
    n = load_code(a.code_id).n_questions
    assert results[3]["ok"] and results[3]["status"] == "submitted" and results[3]["n_correct"] == 3
    assert results[3]["n_questions"] == n and results[3]["score"] == round(10 * 3 / n, 2)
    assert results[4] == {"ok": False, "error": {"code": "attempt.closed", "message": results[4]["error"]["message"]}}
    assert len(_stored(a.id)) == 3
    again = _run([Pending(SUBMIT, a.id, a.user_id, a.code_id)])[0]
    assert again["error"]["code"] == "attempt.already_submitted"


def test_refusals_change_nothing(opened):
    world, (a, b, *_) = opened
    stranger = _answer(a, 0, 1)
    stranger.user_id = b.user_id  # someone else's attempt
    wrong_code = _answer(a, 1, 1)
    wrong_code.code_id = b.code_id if b.code_id != a.code_id else -1
    cancelled = _answer(a, 2, 1)
    cancelled.cancelled = True  # its handler gave up waiting and told the client to resend
    late = _answer(b, 0, 1)
    results = _run([stranger, wrong_code, cancelled])
    assert [r["error"]["code"] for r in results] == ["attempt.not_yours", "exam.unknown_code", "server.retry"]
    after_deadline = as_utc(db.session.get(Attempt, b.id).deadline_at) + GRACE + timedelta(seconds=1)
    assert _run([late], now=after_deadline)[0]["error"]["code"] == "attempt.deadline_passed"
    assert _stored(a.id) == {} and _stored(b.id) == {}
    assert db.session.get(Attempt, a.id).status == AttemptStatus.pending


def test_a_paused_attempt_takes_no_answer_and_cannot_be_submitted(opened):
    world, (a, *_) = opened
    exam_ops.adjust_time(world.exam, "pause", by=world.staff["organizer"], reason="Mất điện", attempt_id=a.id)
    db.session.commit()
    results = _run([_answer(a, 0, 1), Pending(SUBMIT, a.id, a.user_id, a.code_id)])
    assert [r["error"]["code"] for r in results] == ["attempt.paused", "attempt.paused"]
    assert _stored(a.id) == {}


def test_submissions_of_both_codes_are_scored_in_one_statement(opened):
    """The codes of one exam share their scoring rule: one UPDATE for all of a batch's
    submissions, each still scored from its own answers and code."""
    _, attempts = opened
    a = attempts[0]
    b = next(x for x in attempts if x.code_id != a.code_id)
    batch = [_answer(a, 0, 1), _answer(a, 1, 1, right=False), _answer(b, 0, 1), _answer(b, 1, 1), _answer(b, 2, 1)]
    batch += [Pending(SUBMIT, a.id, a.user_id, a.code_id), Pending(SUBMIT, b.id, b.user_id, b.code_id)]
    scored = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("WITH", "UPDATE")) and "counted" in statement:
            scored.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        results = _run(batch)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert len(scored) == 1
    assert [results[5]["n_correct"], results[6]["n_correct"]] == [1, 3]
    n = load_code(a.code_id).n_questions
    assert results[6]["score"] == round(10 * 3 / n, 2) and results[6]["status"] == "submitted"
    assert {x.id: x.status for x in map(lambda x: db.session.get(Attempt, x.id), (a, b))} == {
        a.id: AttemptStatus.submitted, b.id: AttemptStatus.submitted}


#: true outside a transaction: now() is then this statement's own start.
_PROBE = "SELECT now() = statement_timestamp()"


@pytest.fixture
def own_tx(opened_pg):
    """The writer's PostgreSQL lane: an autocommit connection on which write_batch opens
    and commits its transaction inside its own statements; round trips counted."""
    world, attempts = opened_pg
    engine = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    sent = []

    def seen(conn, cursor, statement, *args):
        if statement != _PROBE:  # the test's own look at the transaction state
            sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    yield world, attempts, engine, sent
    engine.dispose()


@pytest.fixture
def app_ctx_writer(own_tx):
    """An answer writer of the test's app with its lanes' engine (as the hub makes it)."""
    from flask import current_app

    from server.exam.delivery import AnswerWriter, _writer_engine

    writer = AnswerWriter(current_app._get_current_object())
    writer._engine, _ = _writer_engine(writer._app)
    yield writer, writer._engine
    writer._engine.dispose()


def _run_own(engine, batch, now=None):
    with engine.connect() as conn:
        write_batch(conn, batch, now or now_utc(), GRACE, own_transaction=True)
        outside_tx = conn.exec_driver_sql(_PROBE).scalar()
    db.session.expire_all()
    return [it.result for it in batch], outside_tx


def test_own_transaction_answers_in_two_round_trips_and_committed(own_tx):
    _, (a, b, *_), engine, sent = own_tx
    batch = [_answer(a, 0, 1), _answer(a, 1, 1), _answer(b, 0, 1)]
    results, outside_tx = _run_own(engine, batch)
    assert all(r["ok"] for r in results)
    # BEGIN with the row locks; START of the pending attempts, the upsert and COMMIT together
    assert len(sent) == 2 and sent[0].startswith("BEGIN;")
    assert sent[1].startswith("UPDATE attempt SET status") and "INSERT INTO answer" in sent[1]
    assert sent[1].rstrip().endswith("; COMMIT")
    assert outside_tx  # no transaction left open: now() is this statement's own time
    # committed: another connection sees the answers
    assert _stored(a.id) == {batch[0].question_id: (batch[0].choice_id, 1), batch[1].question_id: (batch[1].choice_id, 1)}
    assert db.session.get(Attempt, a.id).status == AttemptStatus.in_progress
    sent.clear()
    results, _ = _run_own(engine, [_answer(a, 2, 1)])
    assert results[0]["ok"] and len(sent) == 2  # an attempt already started: lock + upsert
    assert sent[1].startswith("INSERT INTO answer")


def test_own_transaction_submission_and_refusals_end_their_transaction(own_tx):
    _, (a, b, *_), engine, sent = own_tx
    results, outside_tx = _run_own(engine, [_answer(a, 0, 1), Pending(SUBMIT, a.id, a.user_id, a.code_id)])
    assert results[1]["ok"] and results[1]["n_correct"] == 1 and outside_tx
    # two round trips: the locks, then the upsert, the scoring, COMMIT and the read of the
    # result after it (psycopg2 returns the last statement's rows)
    assert len(sent) == 2
    head, tail = sent[1].split("; COMMIT; ")
    assert "INSERT INTO answer" in head and "counted" in head and tail.startswith("SELECT attempt.id")
    assert db.session.get(Attempt, a.id).status == AttemptStatus.submitted
    stranger = _answer(b, 0, 1)
    stranger.user_id = a.user_id
    results, outside_tx = _run_own(engine, [stranger])
    assert results[0]["error"]["code"] == "attempt.not_yours" and outside_tx and _stored(b.id) == {}


def test_own_transaction_two_scoring_rules_in_one_round_trip(own_tx):
    """Submissions of two exams with other lengths and bands in one batch: each scored by
    its own exam's rule, in the same round trip, with no parameter of one taken for the
    other's."""
    world, (a, *_), engine, sent = own_tx
    other = exam_ops.create_exam("Bài thi thứ hai", {world.topics[0].id: 2}, duration_minutes=30, n_codes=1, seed=7)
    other.bands = [["Đạt", 5], ["Chưa đạt", 0]]
    exam_ops.schedule_exam(other)
    exam_ops.open_exam(other.id)
    db.session.commit()
    b = db.session.scalars(sa.select(Attempt).where(Attempt.exam_id == other.id).order_by(Attempt.id)).first()
    batch = [_answer(a, 0, 1), _answer(a, 1, 1, right=False), _answer(b, 0, 1), _answer(b, 1, 1, right=False),
             Pending(SUBMIT, a.id, a.user_id, a.code_id), Pending(SUBMIT, b.id, b.user_id, b.code_id)]
    results, outside_tx = _run_own(engine, batch)
    assert outside_tx and len(sent) == 2 and sent[1].count("counted") >= 4
    n_a = load_code(a.code_id).n_questions
    assert n_a != 2
    score_a = scoring.score(1, n_a)
    assert (results[4]["n_correct"], results[4]["score"], results[4]["band"]) == (
        1, score_a, scoring.band(score_a, scoring.DEFAULT_BANDS))
    assert (results[5]["n_correct"], results[5]["score"], results[5]["band"], results[5]["n_questions"]) == (
        1, 5.0, "Đạt", 2)
    stored = {r.id: (r.status, r.score, r.band) for r in db.session.execute(
        sa.select(Attempt.id, Attempt.status, Attempt.score, Attempt.band).where(Attempt.id.in_([a.id, b.id])))}
    assert stored == {a.id: (AttemptStatus.submitted, score_a, scoring.band(score_a, scoring.DEFAULT_BANDS)),
                      b.id: (AttemptStatus.submitted, 5.0, "Đạt")}


def test_own_transaction_failure_writes_nothing_and_the_lane_goes_on(own_tx, app_ctx_writer):
    """A statement that fails mid-batch: the lane's ROLLBACK leaves nothing written and its
    connection usable; every item of the batch is told to resend."""
    _, (a, *_), engine, _ = own_tx
    writer, lanes_engine = app_ctx_writer
    good = _answer(a, 0, 1)
    bad = _answer(a, 1, 1)
    bad.choice_id = 2**40  # out of the integer column's range: the upsert fails after BEGIN
    with pytest.raises(sa.exc.DBAPIError):
        writer._write([good, bad], GRACE)
    db.session.expire_all()
    assert _stored(a.id) == {} and db.session.get(Attempt, a.id).status == AttemptStatus.pending
    with lanes_engine.connect() as conn:  # the pooled connection is back, outside any transaction
        assert conn.exec_driver_sql(_PROBE).scalar()
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "2s"  # set on connect, kept
    writer._write([good], GRACE)
    assert good.result["ok"] and _stored(a.id) == {good.question_id: (good.choice_id, 1)}


def test_driver_sql_renames_binds_and_processes_constants():
    """A construct as psycopg2's own SQL: its constants under suffixed names with their
    stored values (an enum member becomes its string), the caller's binds renamed too
    unless shared, and a driver of another parameter style refused."""
    from sqlalchemy.dialects import postgresql, sqlite

    from server.core.driver_sql import driver_sql

    t = Attempt.__table__.c
    stmt = (sa.update(Attempt.__table__).where(t.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.Integer))))
            .values(status=AttemptStatus.closed, ended_at=sa.bindparam("now"), n_correct=7))
    sql, constants = driver_sql(stmt, postgresql.psycopg2.dialect(), "_x", shared=("now",))
    assert "%(ids_x)s" in sql and "%(now)s" in sql and "%(ids)s" not in sql
    assert sorted(constants.values(), key=str) == [7, "closed"]
    assert all(name.endswith("_x") and f"%({name})s" in sql for name in constants)
    with pytest.raises(ValueError):
        driver_sql(stmt, sqlite.pysqlite.dialect(), "_x")
