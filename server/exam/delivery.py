"""The answer writer: group commit, and the ack only after the commit.

Each `answer.save` and `attempt.submit` handler hands its item to the writer and waits.
The writer takes what has arrived (waiting a few milliseconds when it was idle), locks
the attempts concerned in id order, checks each item against its attempt's row (status,
deadline, pause), upserts the answers, marks and scores the submitted attempts, commits,
and only then wakes the handlers, whose return value is the ack. A failed commit wakes
them with an error, so the client keeps the item in its queue and sends it again:
nothing is acknowledged that is not on disk.

The writer has its own database connection and uses SQLAlchemy Core (rows, not ORM
objects): it is the hub's hottest path, ten thousand learners go through it.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

import sqlalchemy as sa
from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.engine import Connection, Engine

from ..core.driver_sql import driver_sql
from ..core.timeutil import now_utc
from ..extensions import db, socketio
from . import grading
from .models import Attempt, AttemptStatus, answer_refusal
from .notify import result_payload
from .papers import load_code

log = logging.getLogger(__name__)

ANSWER, SUBMIT = "answer", "submit"


@dataclass(eq=False)
class Pending:
    """One learner's answer or submission, waiting for its batch."""

    kind: str
    attempt_id: int
    user_id: int
    code_id: int
    question_id: int = 0
    choice_id: Optional[int] = None
    flagged: bool = False
    seq: int = 0
    is_correct: bool = False
    done: Any = None
    result: Optional[dict] = None
    #: the handler stopped waiting (and told the client to resend): don't write it.
    cancelled: bool = False
    queued_at: float = field(default_factory=time.monotonic)


def _error(code: str, message: Any) -> dict:
    return {"ok": False, "error": {"code": code, "message": str(message)}}


_REFUSALS = {
    "attempt.closed": _l("Bài làm đã kết thúc, không nhận thêm câu trả lời."),
    "exam.not_started": _l("Bài thi chưa bắt đầu."),
    "attempt.paused": _l("Thời gian làm bài của bạn đang tạm dừng."),
    "attempt.deadline_passed": _l("Đã hết giờ làm bài, câu trả lời không được ghi nhận."),
}
_SUBMIT_REFUSALS = {
    "attempt.closed": ("attempt.already_submitted", _l("Bài làm đã được nộp.")),
    "exam.not_started": ("exam.not_started", _l("Bài thi chưa bắt đầu.")),
    "attempt.paused": ("attempt.paused", _l("Thời gian làm bài đang tạm dừng, chưa thể nộp bài.")),
}
_BUSY = _l("Máy chủ đang bận, câu trả lời sẽ được gửi lại.")
_RETRY = _l("Chưa lưu được, đang gửi lại.")


class AnswerWriter:
    """Lanes of group commit: each lane is one greenlet with its own connection, and an
    attempt always goes through the same lane (attempt id modulo the number of lanes),
    so its answers and its submission keep their order while the lanes' round trips to
    the database overlap. SQLite, which has one writer at a time anyway, gets one lane."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._lanes: list[Any] = []
        self._starting = threading.Lock()
        self._engine: Optional[Engine] = None
        #: process-local counters for diagnosis (bench/hub_debug.py prints them).
        self.batches = 0
        self.items = 0
        self.slowest_batch_ms = 0.0
        #: seconds from queued to committed, of recent items (the diagnosis swaps it out).
        self.waits: list[float] = []

    # the handlers' side -------------------------------------------------------
    def save(self, item: Pending, timeout: float = 15.0) -> dict:
        """Queue one item and wait until its batch is committed (or refused)."""
        if not self._lanes:
            with self._starting:
                if not self._lanes:
                    self._start()
        lane = self._lanes[item.attempt_id % len(self._lanes)]
        if lane.qsize() >= self._app.config["ANSWER_QUEUE_MAX"]:
            return _error("server.busy", _BUSY)  # shed load at once rather than ack seconds late
        item.done = socketio.server.eio.create_event()
        lane.put(item)
        if not item.done.wait(timeout):
            item.cancelled = True
            return _error("server.busy", _BUSY)
        return item.result or _error("server.error", _("Có lỗi ở máy chủ."))

    def backlog(self) -> int:
        return sum(lane.qsize() for lane in self._lanes)

    def _start(self) -> None:
        self._engine, n = _writer_engine(self._app)
        self._empty = socketio.server.eio.get_queue_empty_exception()
        lanes = [socketio.server.eio.create_queue() for _ in range(n)]
        for lane in lanes:
            socketio.start_background_task(self._run, lane)
        self._lanes = lanes

    # the writer's side --------------------------------------------------------
    def _gather(self, lane: Any, last_start: float) -> list[Pending]:
        """The next batch: the first item, then whatever arrives until one window has
        passed since the previous batch began. An idle lane writes at once; a busy one
        commits at most once per window, in ever larger batches, which is what lets it
        keep up (each commit costs the hub the same whatever its size)."""
        cfg = self._app.config
        batch = [lane.get()]
        limit = cfg["ANSWER_BATCH_MAX"]
        end = last_start + cfg["ANSWER_BATCH_WINDOW_MS"] / 1000.0
        while len(batch) < limit:
            try:
                batch.append(lane.get_nowait())
                continue
            except self._empty:
                pass
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(lane.get(timeout=left))
            except self._empty:
                break
        return batch

    def _run(self, lane: Any) -> None:
        grace = timedelta(seconds=self._app.config["EXAM_GRACE_SECONDS"])
        with self._app.app_context():  # for the messages' translations
            last_start = 0.0
            while True:
                batch = self._gather(lane, last_start)
                last_start = time.monotonic()
                t0 = time.perf_counter()
                try:
                    self._write(batch, grace)
                except Exception:
                    log.exception("answer batch of %d failed", len(batch))
                    for item in batch:
                        item.result = _error("server.retry", _RETRY)
                finally:
                    db.session.remove()  # a code loaded on a cache miss holds no connection
                done = time.monotonic()
                for item in batch:
                    item.done.set()
                if len(self.waits) < 20_000:
                    self.waits.extend(done - item.queued_at for item in batch)
                self.batches += 1
                self.items += len(batch)
                self.slowest_batch_ms = max(self.slowest_batch_ms, (time.perf_counter() - t0) * 1000)

    def _write(self, batch: list[Pending], grace: timedelta) -> None:
        if self._engine.dialect.name != "postgresql":
            with self._engine.begin() as conn:
                write_batch(conn, batch, now_utc(), grace)
            return
        # autocommit connections: write_batch sends BEGIN and COMMIT inside its own
        # statements (see `own_transaction`), so a failure must end the transaction here.
        with self._engine.connect() as conn:
            try:
                write_batch(conn, batch, now_utc(), grace, own_transaction=True)
            except Exception:
                try:
                    conn.exec_driver_sql("ROLLBACK")
                except Exception:
                    conn.invalidate()  # a connection in an unknown state is not reused
                raise


def _writer_engine(app: Flask) -> tuple[Engine, int]:
    """The writer's own connections (one per lane): request handlers waiting on row locks
    can empty the shared pool, and every learner's acks would wait with them."""
    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() == "postgresql":
        lanes = max(1, int(app.config["ANSWER_WRITER_LANES"]))
        # AUTOCOMMIT: psycopg2 would otherwise send BEGIN as a round trip of its own
        # before each batch; write_batch begins and commits inside its statements.
        engine = sa.create_engine(url, pool_size=lanes, max_overflow=0, pool_recycle=1800,
                                  isolation_level="AUTOCOMMIT")

        @sa.event.listens_for(engine, "connect")
        def _lock_timeout(dbapi_conn, _record) -> None:
            # one held row lock costs one batch a retry, never everyone's acks for long.
            with dbapi_conn.cursor() as cur:
                cur.execute("SET lock_timeout = '2s'")
    else:
        engine = sa.create_engine(url, pool_size=1, max_overflow=0)

        @sa.event.listens_for(engine, "connect")
        def _manual_begin(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            # take SQLite's write lock first: a read that must later upgrade can fail.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        lanes = 1
    return engine, lanes


# one batch, one transaction -------------------------------------------------------
# The statements are built once, on table columns, with bound parameters: SQLAlchemy then
# neither rebuilds nor re-keys them per batch (that was a fifth of the hub's CPU).
_t = Attempt.__table__.c
_IDS = sa.bindparam("ids", expanding=True)
_NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
_LOCKED = (_t.id, _t.user_id, _t.code_id, _t.exam_id, _t.status, _t.deadline_at, _t.paused_at)
_LOCK_ATTEMPTS = sa.select(*_LOCKED).where(_t.id.in_(_IDS)).order_by(_t.id).with_for_update()
# The same, opening the transaction in the same round trip (write_batch's own_transaction).
_BEGIN_LOCK_ATTEMPTS = sa.text(
    "BEGIN; SELECT " + ", ".join(c.name for c in _LOCKED) + " FROM attempt"
    " WHERE id = ANY(CAST(:ids AS integer[])) ORDER BY id FOR UPDATE"
).columns(*_LOCKED)


def _start_update(picked: Any) -> Any:
    return (sa.update(Attempt.__table__).where(picked, _t.status == AttemptStatus.pending)
            .values(status=AttemptStatus.in_progress, started_at=_NOW))


_START = _start_update(_t.id.in_(_IDS))


@dataclass
class _Row:
    id: int
    user_id: int
    code_id: int
    exam_id: int
    status: AttemptStatus
    deadline_at: Optional[datetime]
    paused_at: Optional[datetime]


def write_batch(conn: Connection, batch: list[Pending], now: datetime, grace: timedelta, *,
                own_transaction: bool = False) -> None:
    """Check, write and score one batch; set each item's result.

    In the caller's transaction, or with `own_transaction` (PostgreSQL, an autocommit
    connection) in one it opens and commits itself, inside the statements it sends
    anyway: BEGIN goes with the row locks, and everything after them with COMMIT in one
    string (`_finish_in_one_round_trip`), so any batch is two round trips (psycopg2
    would send BEGIN on its own, and each round trip of a lane waits for a turn of the
    busy event loop). If this raises, the caller must send ROLLBACK."""
    live = []
    for it in batch:
        if it.cancelled:
            it.result = _error("server.retry", _RETRY)
        else:
            live.append(it)
    if not live:
        return
    ids = sorted({it.attempt_id for it in live})
    rows = {
        r.id: _Row(*r)
        for r in conn.execute(_BEGIN_LOCK_ATTEMPTS if own_transaction else _LOCK_ATTEMPTS, {"ids": ids})
    }
    latest: dict[tuple[int, int], Pending] = {}
    starting: set[int] = set()
    submitted: list[Pending] = []
    for it in live:  # in arrival order: an answer queued after its attempt's submit is refused
        row = rows.get(it.attempt_id)
        refusal = _check(row, it, now, grace)
        if refusal:
            it.result = refusal
            continue
        if row.status == AttemptStatus.pending:
            starting.add(row.id)
        if it.kind == SUBMIT:
            row.status = AttemptStatus.submitted
            submitted.append(it)
            continue
        key = (it.attempt_id, it.question_id)
        if key not in latest or latest[key].seq <= it.seq:
            latest[key] = it
    if own_transaction:
        results = _finish_in_one_round_trip(conn, starting, list(latest.values()), submitted, now)
    else:
        if starting:
            conn.execute(_START, {"ids": sorted(starting), "now": now})
        if latest:
            _upsert(conn, list(latest.values()), now)
        results = _submit(conn, submitted, now) if submitted else {}
    saved_ms = int(now.timestamp() * 1000)
    for it in live:
        if it.result is None:
            if it.kind == SUBMIT:
                it.result = {"ok": True, **results[it.attempt_id]}
            else:
                it.result = {"ok": True, "question_id": it.question_id, "seq": it.seq, "saved_ms": saved_ms}


def _check(row: Optional[_Row], it: Pending, now: datetime, grace: timedelta) -> Optional[dict]:
    if row is None or row.user_id != it.user_id:
        return _error("attempt.not_yours", _("Bài làm này không phải của bạn."))
    if row.code_id != it.code_id:
        return _error("exam.unknown_code", _("Mã đề không khớp với bài làm."))
    code = answer_refusal(row.status, row.deadline_at, row.paused_at, now, grace)
    if it.kind == SUBMIT:
        # after the deadline a submission still ends the attempt with the answers it has.
        if code in _SUBMIT_REFUSALS:
            return _error(*_SUBMIT_REFUSALS[code])
        return None
    if code:
        return _error(code, _REFUSALS[code])
    return None


_COLUMNS = ("attempt_id", "question_id", "choice_id", "flagged", "seq", "is_correct")
_ON_CONFLICT = (
    " ON CONFLICT (attempt_id, question_id) DO UPDATE SET choice_id = excluded.choice_id,"
    " flagged = excluded.flagged, seq = excluded.seq, is_correct = excluded.is_correct,"
    " saved_at = excluded.saved_at"
    # a resent older answer never overwrites a newer one.
    " WHERE answer.seq <= excluded.seq"
)
# Written out because SQLAlchemy does not cache the dialects' INSERT … ON CONFLICT
# constructs: built with them, every batch would be compiled again (a tenth of the hub's
# CPU under exam load). On PostgreSQL the rows travel as arrays: one statement whatever
# the batch size, in the driver's own SQL (pyformat) to share a round trip with others.
_UPSERT_PG_SQL = (
    "INSERT INTO answer (attempt_id, question_id, choice_id, flagged, seq, is_correct, saved_at)"
    " SELECT u.*, CAST(%(now)s AS timestamptz) FROM unnest(CAST(%(attempt_id)s AS integer[]),"
    " CAST(%(question_id)s AS integer[]), CAST(%(choice_id)s AS integer[]), CAST(%(flagged)s AS boolean[]),"
    " CAST(%(seq)s AS bigint[]), CAST(%(is_correct)s AS boolean[])) AS u" + _ON_CONFLICT
)
_UPSERT_ROWS = sa.text(
    "INSERT INTO answer (attempt_id, question_id, choice_id, flagged, seq, is_correct, saved_at)"
    " VALUES (:attempt_id, :question_id, :choice_id, :flagged, :seq, :is_correct, :saved_at)" + _ON_CONFLICT
).bindparams(sa.bindparam("saved_at", type_=sa.DateTime(timezone=True)))


def _upsert(conn: Connection, items: list[Pending], now: datetime) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_UPSERT_PG_SQL, _answer_arrays(items, now))
    else:
        conn.execute(_UPSERT_ROWS, [{**{name: getattr(it, name) for name in _COLUMNS}, "saved_at": now} for it in items])


def _answer_arrays(items: list[Pending], now: datetime) -> dict:
    return {**{name: [getattr(it, name) for it in items] for name in _COLUMNS}, "now": now}


def _by_rule(items: list[Pending]) -> tuple[dict[tuple, list[int]], dict[int, Any]]:
    """The submitted attempts by scoring rule (length and bands), not by code: the codes
    of one exam share one statement, and at the deadline, when thousands submit, each
    statement is more work in a batch every learner behind it waits for."""
    by_rule: dict[tuple, list[int]] = {}
    code_of: dict[int, Any] = {}
    for it in items:
        code = code_of[it.attempt_id] = load_code(it.code_id)
        by_rule.setdefault((code.n_questions, code.bands), []).append(it.attempt_id)
    return by_rule, code_of


def _submit(conn: Connection, items: list[Pending], now: datetime) -> dict[int, dict]:
    """End the submitted attempts and score them; return each one's result for its ack."""
    by_rule, code_of = _by_rule(items)
    out: dict[int, dict] = {}
    id_array = conn.dialect.name == "postgresql"
    for (n_questions, bands), ids in by_rule.items():
        stmt = grading.submit_statement(n_questions, bands, id_array=id_array)
        for r in conn.execute(stmt, {"ids": sorted(ids), "now": now}):
            code = code_of[r.id]
            out[r.id] = result_payload(r, code.show_score, code.n_questions)
    return out


# PostgreSQL, the writer's own transaction: after the row locks, the rest of the batch in
# ONE round trip. psycopg2 sends the statements as one string and returns the rows of the
# last: [START;] [upsert;] [scoring per rule;] COMMIT [; the submitted attempts' state].
# That state is read after the COMMIT, in its own statement, which is what lets the
# scoring's results come back in the same round trip: a submitted attempt's row changes
# no more (an organizer's later pause or extension leaves ended attempts alone).
_START_ANY = _start_update(_t.id == sa.any_(grading.ID_ARRAY))
_SUBMITTED_OF = sa.select(*grading.SUBMITTED).where(_t.id == sa.any_(grading.ID_ARRAY))
_pg_sql: dict[str, tuple[str, dict]] = {}


def _pg(name: str, stmt: Any, dialect: Any) -> tuple[str, dict]:
    if name not in _pg_sql:
        _pg_sql[name] = driver_sql(stmt, dialect, "_" + name, shared=("now",))
    return _pg_sql[name]


def _finish_in_one_round_trip(conn: Connection, starting: set[int], answers: list[Pending],
                              submitted: list[Pending], now: datetime) -> dict[int, dict]:
    sql: list[str] = []
    params: dict[str, Any] = {"now": now}
    if starting:
        text, constants = _pg("start", _START_ANY, conn.dialect)
        sql.append(text)
        params.update(constants, ids_start=sorted(starting))
    if answers:
        sql.append(_UPSERT_PG_SQL)
        params.update(_answer_arrays(answers, now))
    by_rule, code_of = _by_rule(submitted)
    for i, ((n_questions, bands), ids) in enumerate(by_rule.items()):
        text, constants = grading.submit_driver_sql(conn.dialect, n_questions, bands, f"_r{i}")
        sql.append(text)
        params.update(constants)
        params[f"ids_r{i}"] = sorted(ids)
    sql.append("COMMIT")
    if not submitted:
        conn.exec_driver_sql("; ".join(sql), params)
        return {}
    text, constants = _pg("submitted", _SUBMITTED_OF, conn.dialect)
    sql.append(text)
    params.update(constants, ids_submitted=sorted(code_of))
    out: dict[int, dict] = {}
    for r in conn.exec_driver_sql("; ".join(sql), params):
        code = code_of[r.id]
        out[r.id] = result_payload(r, code.show_score, code.n_questions)
    return out


def writer() -> AnswerWriter:
    """This app's writer (one per app, so tests that build several apps stay apart)."""
    from flask import current_app

    app = current_app._get_current_object()
    if "answer_writer" not in app.extensions:
        app.extensions["answer_writer"] = AnswerWriter(app)
    return app.extensions["answer_writer"]
