"""The synchronized test over real python-socketio clients against a live hub."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import socketio
import sqlalchemy as sa

from conftest import socket_token_for
from factories import PASSWORD
from hub import csrf_of, staff_session
from server.core.timeutil import now_utc
from server.exam.models import Answer, Attempt, AttemptStatus, Exam, ExamStatus, TimeAdjustment
from server.exam.papers import unseal
from server.extensions import db


class Learner:
    """One learner's socket, recording what the hub pushes."""

    def __init__(self, hub, token: str):
        self.sio = socketio.Client(reconnection=False)
        self.pushed: list[tuple[str, dict]] = []
        self.got = threading.Condition()
        self.sio.on("*", self._record, namespace="/exam")
        self.sio.connect(hub.url, namespaces=["/exam"], auth={"token": token}, transports=["websocket"], wait_timeout=10)

    def _record(self, event, data):
        with self.got:
            self.pushed.append((event, data))
            self.got.notify_all()

    def call(self, event, data=None, timeout=10):
        return self.sio.call(event, data, namespace="/exam", timeout=timeout)

    def wait_for(self, event, timeout=10.0):
        end = time.time() + timeout
        with self.got:
            while True:
                for ev, data in self.pushed:
                    if ev == event:
                        return data
                left = end - time.time()
                if left <= 0:
                    raise AssertionError(f"no {event} in {self.pushed}")
                self.got.wait(left)

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def live(app, world, db_url, hub_factory):
    hub = hub_factory(db_url)
    learners: list[Learner] = []

    def connect(index: int) -> Learner:
        learner = Learner(hub, socket_token_for(app, world.learners[index].id))
        learners.append(learner)
        return learner

    yield hub, connect
    for learner in learners:
        try:
            learner.close()
        except Exception:
            pass


def open_exam(hub, exam_id):
    s = staff_session(hub.url, "btc", PASSWORD)
    r = s.post(f"{hub.url}/exams/{exam_id}/open", data={"csrf_token": csrf_of(s, f"{hub.url}/exams/{exam_id}")},
               allow_redirects=False, timeout=10)
    assert r.status_code == 302
    return s


def stored_answers(attempt_id):
    db.session.rollback()
    return {a.question_id: a for a in db.session.scalars(sa.select(Answer).where(Answer.attempt_id == attempt_id))}


def test_start_reaches_everyone_and_unseals_the_paper_sent_ahead(live, world):
    hub, connect = live
    a, b = connect(0), connect(1)
    ja, jb = a.call("attempt.join", {"exam_id": world.exam.id}), b.call("attempt.join", {"exam_id": world.exam.id})
    assert ja["ok"] and ja["exam"]["status"] == "scheduled" and "paper" not in ja and "sealed" in ja
    # neighbours at one bridge point hold different codes
    assert ja["code"]["id"] != jb["code"]["id"]
    open_exam(hub, world.exam.id)
    start = a.wait_for("exam.start")
    b.wait_for("exam.start")
    paper = unseal(ja["sealed"], __import__("base64").b64decode(start["keys"][str(ja["code"]["id"])]))
    again = a.call("attempt.join", {"exam_id": world.exam.id})
    assert again["paper"] == paper
    assert len(paper) == world.exam.n_questions
    assert again["attempt"]["status"] == "in_progress"
    assert abs(again["attempt"]["deadline_ms"] - start["deadline_ms"]) < 1000


def test_answers_are_acked_after_commit_and_restored_on_another_device(live, world):
    hub, connect = live
    a = connect(0)
    open_exam(hub, world.exam.id)
    join = a.call("attempt.join", {"exam_id": world.exam.id})
    aid, paper = join["attempt"]["attempt_id"], join["paper"]
    for seq, q in enumerate(paper[:4], start=1):
        ack = a.call("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": q["choices"][1]["id"],
                                     "flagged": seq == 2, "seq": seq})
        assert ack["ok"] and ack["seq"] == seq
        # the ack means the row is committed: another connection sees it at once
        assert stored_answers(aid)[q["id"]].choice_id == q["choices"][1]["id"]
    # an older resend never overwrites a newer answer
    q0 = paper[0]
    assert a.call("answer.save", {"attempt_id": aid, "question_id": q0["id"], "choice_id": q0["choices"][2]["id"], "seq": 10})["ok"]
    assert a.call("answer.save", {"attempt_id": aid, "question_id": q0["id"], "choice_id": q0["choices"][3]["id"], "seq": 3})["ok"]
    assert stored_answers(aid)[q0["id"]].choice_id == q0["choices"][2]["id"]
    # a new login on another device gets every answer and the same deadline
    other = connect(0)
    join2 = other.call("attempt.join", {"exam_id": world.exam.id})
    assert join2["answers"][str(q0["id"])]["choice"] == q0["choices"][2]["id"]
    assert join2["answers"][str(paper[1]["id"])]["flagged"] is True
    assert len(join2["answers"]) == 4
    assert join2["attempt"]["deadline_ms"] == join["attempt"]["deadline_ms"]


def test_bad_input_gets_a_stable_code_and_changes_nothing(live, world, app):
    hub, connect = live
    a, b = connect(0), connect(1)
    open_exam(hub, world.exam.id)
    ja = a.call("attempt.join", {"exam_id": world.exam.id})
    jb = b.call("attempt.join", {"exam_id": world.exam.id})
    aid, paper = ja["attempt"]["attempt_id"], ja["paper"]
    q = paper[0]
    cases = [
        ("no.such.event", {}, "event.unknown"),
        ("answer.save", "not a dict", "payload.malformed"),
        ("answer.save", {"attempt_id": aid}, "payload.missing_field"),
        ("answer.save", {"attempt_id": aid, "question_id": "1", "seq": 1}, "payload.bad_field"),
        ("answer.save", {"attempt_id": aid, "question_id": 999999, "choice_id": None, "seq": 1}, "answer.unknown_question"),
        ("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": 999999, "seq": 1}, "answer.unknown_choice"),
        ("answer.save", {"attempt_id": jb["attempt"]["attempt_id"], "question_id": q["id"], "choice_id": None, "seq": 1}, "attempt.not_yours"),
        ("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": None, "seq": 1, "pad": "x" * 10000}, "payload.too_large"),
        ("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": None, "flagged": "yes", "seq": 1}, "payload.bad_field"),
        ("attempt.join", {"exam_id": 424242}, "attempt.not_registered"),
        ("attempt.submit", {"attempt_id": aid}, "submit.not_confirmed"),
    ]
    for event, payload, code in cases:
        ack = a.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
        assert ack["error"]["message"]
    assert stored_answers(aid) == {}
    assert stored_answers(jb["attempt"]["attempt_id"]) == {}
    # the socket survived every refusal
    assert a.call("time.sync", {"t0": 1})["ok"]
    # a double submit: the second is refused and the first stands
    assert a.call("attempt.submit", {"attempt_id": aid, "confirm": True})["ok"]
    again = a.call("attempt.submit", {"attempt_id": aid, "confirm": True})
    assert again["error"]["code"] == "attempt.already_submitted"
    late = a.call("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": q["choices"][0]["id"], "seq": 5})
    assert late["error"]["code"] == "attempt.closed"
    assert stored_answers(aid) == {}


def test_unauthenticated_and_staff_sockets_are_refused(live, world, app):
    hub, _ = live
    for auth in (None, {"token": "forged"}, {"token": socket_token_for(app, world.staff["organizer"].id)}):
        sio = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            sio.connect(hub.url, namespaces=["/exam"], auth=auth, transports=["websocket"], wait_timeout=5)


def test_pause_and_extend_touch_only_that_bridge_point(live, world):
    hub, connect = live
    here, there = connect(0), connect(len(world.learners) - 1)  # first and last bridge point
    s = open_exam(hub, world.exam.id)
    jh = here.call("attempt.join", {"exam_id": world.exam.id})
    jt = there.call("attempt.join", {"exam_id": world.exam.id})
    bp = world.learners[0].bridge_point_id
    token = csrf_of(s, f"{hub.url}/exams/{world.exam.id}")
    post = lambda **form: s.post(f"{hub.url}/exams/{world.exam.id}/adjust", data={"csrf_token": token, **form}, allow_redirects=False)
    assert post(kind="pause", bridge_point_id=bp, reason="").status_code == 400  # a reason is required
    assert post(kind="pause", bridge_point_id=bp, reason="Mất điện tại điểm cầu").status_code == 302
    paused = here.wait_for("attempt.time")
    assert paused["paused"] is True
    q = jh["paper"][0]
    ack = here.call("answer.save", {"attempt_id": jh["attempt"]["attempt_id"], "question_id": q["id"], "choice_id": None, "seq": 1})
    assert ack["error"]["code"] == "attempt.paused"
    time.sleep(1.2)
    assert post(kind="resume", bridge_point_id=bp, reason="Có điện trở lại").status_code == 302
    assert post(kind="extend", bridge_point_id=bp, minutes="5", reason="Bù giờ sự cố").status_code == 302
    time.sleep(0.5)
    db.session.rollback()
    mine = db.session.get(Attempt, jh["attempt"]["attempt_id"])
    theirs = db.session.get(Attempt, jt["attempt"]["attempt_id"])
    shift = (mine.deadline_at - theirs.deadline_at).total_seconds()
    assert 300 + 1.0 <= shift <= 300 + 4, shift  # 5 minutes plus the paused time
    assert theirs.deadline_at.timestamp() * 1000 == pytest.approx(jt["attempt"]["deadline_ms"], abs=2)
    assert [e for e, _ in there.pushed if e == "attempt.time"] == []
    kinds = [t.kind for t in db.session.scalars(sa.select(TimeAdjustment).order_by(TimeAdjustment.id))]
    assert kinds == ["pause", "resume", "extend"]
    assert here.call("answer.save", {"attempt_id": jh["attempt"]["attempt_id"], "question_id": q["id"], "choice_id": None, "seq": 2})["ok"]


def test_the_hub_closes_attempts_at_the_deadline_and_scores_them(live, world):
    hub, connect = live
    a, b = connect(0), connect(1)
    open_exam(hub, world.exam.id)
    ja = a.call("attempt.join", {"exam_id": world.exam.id})
    assert b.call("attempt.join", {"exam_id": world.exam.id})["ok"]
    aid = ja["attempt"]["attempt_id"]
    # answer every question right on a's paper, using the stored key
    from server.exam.papers import load_code

    code = load_code(ja["code"]["id"])
    for seq, q in enumerate(ja["paper"], start=1):
        assert a.call("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": code.key[q["id"]], "seq": seq})["ok"]
    # bring the deadline close: the hub's clock must close it by itself
    soon = now_utc() + timedelta(seconds=1)
    db.session.execute(sa.update(Attempt).where(Attempt.exam_id == world.exam.id).values(deadline_at=soon))
    db.session.execute(sa.update(Exam).where(Exam.id == world.exam.id).values(ends_at=soon))
    db.session.commit()
    closed = a.wait_for("attempt.closed", timeout=15)
    assert closed["status"] == "closed" and closed["score"] == 10.0 and closed["band"] == "Xuất sắc"
    late = a.call("answer.save", {"attempt_id": aid, "question_id": ja["paper"][0]["id"], "choice_id": None, "seq": 999})
    assert late["error"]["code"] == "attempt.closed"
    end = time.time() + 10
    while time.time() < end:
        db.session.rollback()
        if db.session.get(Exam, world.exam.id).status == ExamStatus.closed:
            break
        time.sleep(0.2)
    exam = db.session.get(Exam, world.exam.id)
    assert exam.status == ExamStatus.closed
    statuses = set(db.session.scalars(sa.select(Attempt.status).where(Attempt.exam_id == exam.id)))
    assert statuses == {AttemptStatus.closed}
    # b joined but never answered: took part, scored 0; the rest never came: no score
    scores = dict(db.session.execute(sa.select(Attempt.user_id, Attempt.score).where(Attempt.exam_id == exam.id)).all())
    assert scores[world.learners[0].id] == 10.0
    assert scores[world.learners[1].id] == 0.0
    assert scores[world.learners[2].id] is None


@pytest.mark.parametrize("mode", ["gevent", "eventlet"])
def test_both_async_modes_serve_a_synchronized_exam(app, world, db_url, hub_factory, mode):
    hub = hub_factory(db_url, mode=mode)
    assert f"({mode})" in hub.log()
    a = Learner(hub, socket_token_for(app, world.learners[0].id))
    join = a.call("attempt.join", {"exam_id": world.exam.id})
    open_exam(hub, world.exam.id)
    start = a.wait_for("exam.start")
    assert str(join["code"]["id"]) in start["keys"]
    join = a.call("attempt.join", {"exam_id": world.exam.id})
    q = join["paper"][0]
    ack = a.call("answer.save", {"attempt_id": join["attempt"]["attempt_id"], "question_id": q["id"],
                                 "choice_id": q["choices"][0]["id"], "seq": 1})
    assert ack["ok"]
    assert stored_answers(join["attempt"]["attempt_id"])[q["id"]].choice_id == q["choices"][0]["id"]
    a.close()


def test_the_hub_opens_at_the_set_time_and_a_late_learner_gets_what_is_left(live, world):
    hub, connect = live
    early = connect(0)
    assert early.call("attempt.join", {"exam_id": world.exam.id})["exam"]["status"] == "scheduled"
    db.session.execute(sa.update(Exam).where(Exam.id == world.exam.id).values(opens_at=now_utc() + timedelta(seconds=1)))
    db.session.commit()
    start = early.wait_for("exam.start", timeout=10)
    time.sleep(1.5)
    late = connect(1)
    join = late.call("attempt.join", {"exam_id": world.exam.id})
    assert join["exam"]["status"] == "open" and join["paper"]
    assert join["attempt"]["deadline_ms"] == start["deadline_ms"]
    full = world.exam.duration_minutes * 60_000
    assert full - 10_000 < join["attempt"]["remaining_ms"] <= full - 1_400


def _board_connected(board, exam_id, want, timeout=10.0):
    end = time.time() + timeout
    while True:
        stats = board.call("board.stats", {"exam_id": exam_id}, namespace="/board", timeout=10)
        assert stats["ok"]
        if stats["total"]["connected"] == want or time.time() > end:
            return stats["total"]["connected"]
        time.sleep(0.2)


def test_the_board_counts_connected_learners_and_forgets_a_dead_hub(app, world, db_url, hub_factory):
    """Presence lives beside the attempts, refreshed by each hub's heartbeat."""
    watched = hub_factory(db_url, DIEMCAU_PRESENCE_TTL=2)
    doomed = hub_factory(db_url, DIEMCAU_PRESENCE_TTL=2)
    board = socketio.Client(reconnection=False)
    board.connect(watched.url, namespaces=["/board"], transports=["websocket"],
                  auth={"token": socket_token_for(app, world.staff["organizer"].id)}, wait_timeout=10)
    learners = [Learner(watched, socket_token_for(app, world.learners[i].id)) for i in range(2)]
    learners.append(Learner(doomed, socket_token_for(app, world.learners[2].id)))
    try:
        assert _board_connected(board, world.exam.id, 0) == 0  # sockets, but nobody has joined the exam
        for learner in learners:
            assert learner.call("attempt.join", {"exam_id": world.exam.id})["ok"]
        assert _board_connected(board, world.exam.id, 3) == 3
        learners[0].close()
        assert _board_connected(board, world.exam.id, 2) == 2
        doomed.kill()  # its learner's row stays behind; the missing heartbeat retires it
        assert _board_connected(board, world.exam.id, 1) == 1
    finally:
        board.disconnect()
        for learner in learners[1:2]:
            learner.close()
