"""What the hub pushes to learners and boards. Rooms: `exam:<id>`, `attempt:<id>`,
`board:<id>`. Emits go through Socket.IO's message queue, so they reach sockets held by
any hub process."""
from __future__ import annotations

import sqlalchemy as sa

from ..core.timeutil import now_utc, to_ms
from ..extensions import db, socketio
from .models import Attempt, Exam
from .operations import attempt_state
from .papers import b64

NS = "/exam"


def exam_started(exam: Exam) -> None:
    """The start: a tiny broadcast with the keys that unseal the papers sent ahead."""
    payload = {
        "exam_id": exam.id,
        "server_ms": to_ms(now_utc()),
        "deadline_ms": to_ms(exam.ends_at),
        "keys": {str(c.id): b64(c.seal_key) for c in exam.codes},
    }
    socketio.emit("exam.start", payload, to=f"exam:{exam.id}", namespace=NS)
    socketio.emit("board.changed", {"exam_id": exam.id}, to=f"board:{exam.id}", namespace="/board")
    from ..webcast.operations import notify_exam_opened  # the kiosks show the exam's QR code

    notify_exam_opened(exam)


def result_payload(attempt, show_score: bool, n_questions: int) -> dict:
    """The attempt's state for the learner's page, with the score if the exam shows it.
    `attempt` is a model or a row with its columns."""
    out = attempt_state(attempt)
    if show_score and attempt.score is not None:
        out.update(score=attempt.score, band=attempt.band, n_correct=attempt.n_correct, n_questions=n_questions)
    return out


def attempts_closed(ids: list[int]) -> None:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = db.session.execute(sa.select(Attempt, Exam).join(Exam).where(Attempt.id.in_(chunk))).all()
        for attempt, exam in rows:
            socketio.emit("attempt.closed", result_payload(attempt, exam.show_score, exam.n_questions), to=f"attempt:{attempt.id}", namespace=NS)
        socketio.sleep(0)  # let the answers and acks in flight through between chunks


def attempt_time(attempts: list[Attempt]) -> None:
    for attempt in attempts:
        socketio.emit("attempt.time", attempt_state(attempt) | {"server_ms": to_ms(now_utc())}, to=f"attempt:{attempt.id}", namespace=NS)


def exam_closed(exam_id: int) -> None:
    socketio.emit("exam.closed", {"exam_id": exam_id}, to=f"exam:{exam_id}", namespace=NS)
    socketio.emit("board.changed", {"exam_id": exam_id, "closed": True}, to=f"board:{exam_id}", namespace="/board")
    from ..webcast.operations import notify_exam_closed

    notify_exam_closed(exam_id)
