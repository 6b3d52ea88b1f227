"""The hub's clock: opens exams at their set time, closes attempts at their deadline.

Every hub process runs it; the conditional UPDATEs in `operations` make sure each exam
is opened and each attempt closed exactly once, by whichever process gets there first.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import Flask

from ..core.timeutil import now_utc
from ..extensions import db, socketio
from . import notify, operations, presence

log = logging.getLogger(__name__)


def tick(app: Flask) -> None:
    grace = timedelta(seconds=app.config["EXAM_GRACE_SECONDS"])
    now = now_utc()
    for exam_id in operations.due_exams(now):
        exam = operations.open_exam(exam_id, now)
        db.session.commit()
        if exam is not None:
            notify.exam_started(exam)
    closed = operations.close_due_attempts(now, grace)
    db.session.commit()
    # the exam (and its statistics) is closed before 10,000 learners are told one by one.
    finished = operations.close_finished_exams(now)
    db.session.commit()
    if closed:
        notify.attempts_closed(closed)
    for exam_id in finished:
        notify.exam_closed(exam_id)


def run(app: Flask) -> None:
    interval = app.config["SCHEDULER_INTERVAL"]
    flush_every = app.config["PRESENCE_FLUSH_SECONDS"]
    forget_after = timedelta(seconds=app.config["PRESENCE_TTL"] * 10)
    last_flush = 0.0
    while True:
        socketio.sleep(interval)
        try:
            with app.app_context():
                tick(app)
                if time.monotonic() - last_flush >= flush_every:
                    held = presence.flush(now_utc(), forget_after)
                    db.session.commit()
                    presence.written(held)
                    last_flush = time.monotonic()
        except Exception:
            log.exception("exam ticker failed; trying again next tick")
            with app.app_context():
                db.session.rollback()
                db.session.remove()
