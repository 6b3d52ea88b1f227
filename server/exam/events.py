"""Socket.IO: `/exam` for learners, `/board` for the organizers' live board.

Thin handlers: parse → check who → operation → commit → ack. An answer's ack comes
from the answer writer, after its batch is committed.
"""
from __future__ import annotations

from flask_socketio import join_room

from ..accounts.auth import socket_user
from ..accounts.models import Role
from ..core.errors import BadInput, Conflict, Forbidden
from ..core.sockets import Identity, SafeNamespace, require_dict, require_int
from ..core.timeutil import now_utc, to_ms
from ..extensions import db
from . import notify, operations, presence, queries
from .delivery import ANSWER, SUBMIT, Pending, writer
from .models import Attempt, Exam, ExamStatus
from .papers import load_code
from flask_babel import gettext as _


class ExamNamespace(SafeNamespace):
    events = ("time.sync", "attempt.join", "attempt.sync", "answer.save", "attempt.submit")
    light_events = ("time.sync", "answer.save", "attempt.submit")

    def on_connect(self, auth=None):
        user = socket_user(auth)
        if user.role != Role.learner:
            raise Forbidden("auth.not_learner", _("Chỉ học viên mới vào phòng thi."))
        self.set_identity(Identity(user.id, user.role.value, user.district_id, user.bridge_point_id))
        db.session.rollback()
        return True

    def on_disconnect(self, reason=None):
        joined = self.session_get("attempt")
        if joined:
            presence.disconnected(joined["attempt_id"])

    def on_time_sync(self, data=None):
        t0 = data.get("t0") if isinstance(data, dict) else None
        return {"ok": True, "server_ms": to_ms(now_utc()), "t0": t0 if isinstance(t0, (int, float)) else None}

    def on_attempt_join(self, data):
        ident = self.identity()
        exam_id = require_int(require_dict(data, "exam_id"), "exam_id")
        attempt = operations.join_attempt(ident.user_id, exam_id)
        # join the rooms before reading the state: a start pushed in between then
        # reaches this socket instead of falling into the gap.
        self._remember(attempt)
        db.session.commit()
        return self._describe(attempt, attempt.exam)

    def on_attempt_sync(self, data):
        attempt = self._own_attempt(data)
        return self._describe(attempt, attempt.exam)

    def on_answer_save(self, data):
        data = require_dict(data, "attempt_id", "question_id", "seq")
        joined = self._joined(require_int(data, "attempt_id"))
        qid = require_int(data, "question_id")
        choice = require_int(data, "choice_id", allow_none=True)
        seq = require_int(data, "seq")
        flagged = data.get("flagged", False)
        if not isinstance(flagged, bool):
            raise BadInput("payload.bad_field", _("Trường “flagged” phải là true/false."), field="flagged")
        code = load_code(joined["code_id"])
        if qid not in code.allowed:
            raise BadInput("answer.unknown_question", _("Câu hỏi này không có trong mã đề của bạn."))
        if choice is not None and choice not in code.allowed[qid]:
            raise BadInput("answer.unknown_choice", _("Phương án trả lời không hợp lệ."))
        if seq < 0:
            raise BadInput("payload.bad_field", _("Số thứ tự không hợp lệ."), field="seq")
        item = Pending(
            ANSWER,
            attempt_id=joined["attempt_id"],
            user_id=self.identity().user_id,
            code_id=code.code_id,
            question_id=qid,
            choice_id=choice,
            flagged=flagged,
            seq=seq,
            is_correct=choice is not None and code.key[qid] == choice,
        )
        return writer().save(item)

    def on_attempt_submit(self, data):
        data = require_dict(data, "attempt_id")
        if data.get("confirm") is not True:
            raise BadInput("submit.not_confirmed", _("Cần xác nhận trước khi nộp bài."))
        joined = self._joined(require_int(data, "attempt_id"))
        load_code(joined["code_id"])  # in this process's cache before the writer needs it
        item = Pending(SUBMIT, joined["attempt_id"], self.identity().user_id, joined["code_id"])
        # through the answer writer: the answers queued before it are in the score.
        ack = writer().save(item, timeout=30.0)
        if ack.get("ok"):
            # the learner's other devices learn it too.
            result = {k: v for k, v in ack.items() if k != "ok"}
            self.socketio.emit("attempt.closed", result, to=f"attempt:{item.attempt_id}", namespace=self.namespace,
                               skip_sid=self.sid())
        return ack

    # helpers ----------------------------------------------------------------
    def _joined(self, attempt_id: int) -> dict:
        joined = self.session_get("attempt")
        if not joined:
            raise Conflict("attempt.not_joined", _("Hãy vào phòng thi trước khi trả lời."))
        if joined["attempt_id"] != attempt_id:
            raise Forbidden("attempt.not_yours", _("Bài làm này không phải của bạn."))
        return joined

    def _own_attempt(self, data) -> Attempt:
        attempt_id = require_int(require_dict(data, "attempt_id"), "attempt_id")
        self._joined(attempt_id)
        q = db.select(Attempt).where(Attempt.id == attempt_id, Attempt.user_id == self.identity().user_id)
        attempt = db.session.scalar(q)
        if attempt is None:
            raise Forbidden("attempt.not_yours", _("Bài làm này không phải của bạn."))
        return attempt

    def _remember(self, attempt: Attempt) -> None:
        previous = self.session_get("attempt")
        if previous and previous["attempt_id"] == attempt.id:
            return
        if previous:
            presence.disconnected(previous["attempt_id"])
        join_room(f"exam:{attempt.exam_id}")
        join_room(f"attempt:{attempt.id}")
        self.session_set("attempt", {"attempt_id": attempt.id, "code_id": attempt.code_id, "exam_id": attempt.exam_id})
        presence.connected(attempt.id)

    def _describe(self, attempt: Attempt, exam: Exam) -> dict:
        code = load_code(attempt.code_id)
        out = {
            "ok": True,
            "server_ms": to_ms(now_utc()),
            "exam": {
                "id": exam.id,
                "title": exam.title,
                "status": exam.status.value,
                "n_questions": exam.n_questions,
                "duration_minutes": exam.duration_minutes,
                "opens_ms": to_ms(exam.opens_at),
                "show_score": exam.show_score,
            },
            "code": {"id": code.code_id, "label": code.label},
            "attempt": notify.result_payload(attempt, exam.show_score, exam.n_questions),
        }
        if attempt.is_open and exam.status == ExamStatus.scheduled:
            out["sealed"] = code.sealed
        elif attempt.is_open and exam.status == ExamStatus.open:
            out["paper"] = code.paper
            out["answers"] = {str(k): v for k, v in operations.answers_of(attempt.id).items()}
        return out


class BoardNamespace(SafeNamespace):
    """The organizers' live board: counts per district, in the viewer's scope."""

    events = ("board.watch", "board.stats")

    def on_connect(self, auth=None):
        user = socket_user(auth)
        if user.role not in (Role.organizer, Role.proctor, Role.operator):
            raise Forbidden("auth.not_staff", _("Chỉ cán bộ tổ chức, giám thị mới xem được bảng theo dõi."))
        self.set_identity(Identity(user.id, user.role.value, user.district_id, user.bridge_point_id))
        db.session.rollback()
        return True

    def on_board_watch(self, data):
        exam_id = require_int(require_dict(data, "exam_id"), "exam_id")
        join_room(f"board:{exam_id}")
        return self.on_board_stats(data)

    def on_board_stats(self, data):
        exam_id = require_int(require_dict(data, "exam_id"), "exam_id")
        ident = self.identity()
        exam = db.session.get(Exam, exam_id)
        if exam is None:
            raise BadInput("exam.unknown", _("Bài thi không tồn tại."))
        stats = queries.live_board(exam, ident, self.config("PRESENCE_TTL"))
        db.session.rollback()
        return {"ok": True, **stats}


