"""The answer writer: group commit, and the ack only after the commit.

Each `answer.save` handler hands its answer to the writer and waits. The writer gathers
what arrives within a few milliseconds, checks every attempt against the database under
a row lock (status, deadline, pause), upserts the answers in one transaction, commits,
and only then wakes the handlers, whose return value is the ack. A failed commit wakes
them with an error, so the client keeps the answer in its queue and sends it again:
nothing is acknowledged that is not on disk.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Session
from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core.timeutil import now_utc
from ..extensions import db, socketio
from .models import OPEN_ATTEMPT, Answer, Attempt, AttemptStatus

log = logging.getLogger(__name__)


@dataclass
class PendingAnswer:
    attempt_id: int
    user_id: int
    code_id: int
    question_id: int
    choice_id: Optional[int]
    flagged: bool
    seq: int
    is_correct: bool
    done: Any = None
    result: Optional[dict] = None
    #: the handler stopped waiting (and told the client to resend): don't write it.
    cancelled: bool = False
    queued_at: float = field(default_factory=time.monotonic)


class AnswerWriter:
    def __init__(self, app: Flask) -> None:
        self._queue: Any = None
        self._app = app
        self._engine: Any = None
        self.batches = 0

    def _ensure_started(self) -> None:
        if self._queue is None:
            # The writer has its own connection: request handlers waiting on row locks
            # can empty the shared pool, and every learner's acks would wait with them.
            with self._app.app_context():
                url = db.engine.url
            self._engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_recycle=3600)
            self._queue = socketio.server.eio.create_queue()
            self._empty = socketio.server.eio.get_queue_empty_exception()
            socketio.start_background_task(self._run)

    def save(self, item: PendingAnswer, timeout: float = 15.0) -> dict:
        """Queue one answer and wait until its batch is committed (or refused)."""
        self._ensure_started()
        busy = {"ok": False, "error": {"code": "server.busy", "message": _("Máy chủ đang bận, câu trả lời sẽ được gửi lại.")}}
        if self._queue.qsize() >= self._app.config.get("ANSWER_QUEUE_MAX", 5000):
            return busy  # shed load at once rather than ack seconds late
        item.done = socketio.server.eio.create_event()
        self._queue.put(item)
        if not item.done.wait(timeout):
            item.cancelled = True
            return {"ok": False, "error": {"code": "server.busy", "message": _("Máy chủ đang bận, câu trả lời sẽ được gửi lại.")}}
        return item.result or {"ok": False, "error": {"code": "server.error", "message": _("Có lỗi ở máy chủ.")}}

    def _gather(self) -> list[PendingAnswer]:
        cfg = self._app.config
        batch = [self._queue.get()]
        window = cfg["ANSWER_BATCH_WINDOW_MS"] / 1000.0
        limit = cfg["ANSWER_BATCH_MAX"]
        end = time.monotonic() + window
        while len(batch) < limit:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=left))
            except self._empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._gather()
            try:
                with self._app.app_context(), Session(self._engine) as session:
                    self._write(session, batch)
                self.batches += 1
            except Exception:
                log.exception("answer batch of %d failed", len(batch))
                for item in batch:
                    item.result = {"ok": False, "error": {"code": "server.retry", "message": _("Chưa lưu được, đang gửi lại.")}}
            for item in batch:
                item.done.set()

    def _write(self, session: Session, batch: list[PendingAnswer]) -> None:
        grace = timedelta(seconds=self._app.config["EXAM_GRACE_SECONDS"])
        for it in batch:
            if it.cancelled:
                it.result = {"ok": False, "error": {"code": "server.retry", "message": _("Chưa lưu được, đang gửi lại.")}}
        batch = [it for it in batch if not it.cancelled]
        if not batch:
            return
        if session.get_bind().dialect.name == "postgresql":
            # never let one held row lock stall every learner's acks for long.
            session.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
        ids = sorted({it.attempt_id for it in batch})
        attempts = {
            a.id: a
            for a in session.scalars(
                sa.select(Attempt).where(Attempt.id.in_(ids)).order_by(Attempt.id).with_for_update()
            )
        }
        now = now_utc()
        latest: dict[tuple[int, int], PendingAnswer] = {}
        for it in batch:
            attempt = attempts.get(it.attempt_id)
            refusal = _refusal(attempt, it, now, grace)
            if refusal:
                it.result = {"ok": False, "error": refusal}
                continue
            key = (it.attempt_id, it.question_id)
            if key not in latest or latest[key].seq <= it.seq:
                latest[key] = it
        if latest:
            _upsert(session, [latest[k] for k in latest], now)
            starting = [a.id for a in attempts.values() if a.status == AttemptStatus.pending and any(k[0] == a.id for k in latest)]
            if starting:
                session.execute(
                    sa.update(Attempt)
                    .where(Attempt.id.in_(starting), Attempt.status == AttemptStatus.pending)
                    .values(status=AttemptStatus.in_progress, started_at=now)
                    .execution_options(synchronize_session=False)
                )
        session.commit()
        saved_ms = int(now.timestamp() * 1000)
        for it in batch:
            if it.result is None:
                it.result = {"ok": True, "question_id": it.question_id, "seq": it.seq, "saved_ms": saved_ms}


_REFUSALS = {
    "attempt.closed": _l("Bài làm đã kết thúc, không nhận thêm câu trả lời."),
    "exam.not_started": _l("Bài thi chưa bắt đầu."),
    "attempt.paused": _l("Thời gian làm bài của bạn đang tạm dừng."),
    "attempt.deadline_passed": _l("Đã hết giờ làm bài, câu trả lời không được ghi nhận."),
}


def _refusal(attempt: Optional[Attempt], it: PendingAnswer, now, grace) -> Optional[dict]:
    if attempt is None or attempt.user_id != it.user_id:
        return {"code": "attempt.not_yours", "message": _("Bài làm này không phải của bạn.")}
    if attempt.code_id != it.code_id:
        return {"code": "exam.unknown_code", "message": _("Mã đề không khớp với bài làm.")}
    code = attempt.accepts_answers(now, grace)
    if code:
        return {"code": code, "message": str(_REFUSALS[code])}
    return None


def _upsert(session: Session, items: list[PendingAnswer], now) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    rows = [
        {
            "attempt_id": it.attempt_id,
            "question_id": it.question_id,
            "choice_id": it.choice_id,
            "flagged": it.flagged,
            "seq": it.seq,
            "is_correct": it.is_correct,
            "saved_at": now,
        }
        for it in items
    ]
    # executemany form: compiled once and cached, whatever the batch size.
    stmt = insert(Answer)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Answer.attempt_id, Answer.question_id],
        set_={
            "choice_id": stmt.excluded.choice_id,
            "flagged": stmt.excluded.flagged,
            "seq": stmt.excluded.seq,
            "is_correct": stmt.excluded.is_correct,
            "saved_at": stmt.excluded.saved_at,
        },
        # a resent older answer never overwrites a newer one.
        where=Answer.seq <= stmt.excluded.seq,
    )
    session.execute(stmt, rows)


def writer() -> AnswerWriter:
    """This app's writer (one per app, so tests that build several apps stay apart)."""
    from flask import current_app

    app = current_app._get_current_object()
    if "answer_writer" not in app.extensions:
        app.extensions["answer_writer"] = AnswerWriter(app)
    return app.extensions["answer_writer"]
