"""The hub on the production stack: SIGKILL mid-test, PostgreSQL, Redis, two processes."""
from __future__ import annotations

import threading
import time

import pytest

from conftest import migrate, socket_token_for
from factories import make_world
from hub import csrf_of, staff_session
from test_socket_live import Learner, open_exam, stored_answers
from server import create_app
from server.extensions import db


def answer_some(learner, join, n):
    aid = join["attempt"]["attempt_id"]
    acked = {}
    for seq, q in enumerate(join["paper"][:n], start=1):
        choice = q["choices"][seq % len(q["choices"])]["id"]
        ack = learner.call("answer.save", {"attempt_id": aid, "question_id": q["id"], "choice_id": choice, "seq": seq})
        assert ack["ok"], ack
        acked[q["id"]] = choice
    return acked


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path):
    """The same world on the embedded SQLite file or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = request.getfixturevalue("db_url")
    else:
        url = request.getfixturevalue("pg_url")
        migrate(url, tmp_path)
    from conftest import base_config
    from server.exam import papers

    papers.forget()
    app = create_app(base_config(url, tmp_path))
    with app.app_context():
        world = make_world()
        yield app, world, url
        db.session.remove()


def test_sigkill_mid_test_loses_no_acknowledged_answer(any_db, hub_factory):
    app, world, url = any_db
    from conftest import free_port

    port = free_port()
    hub = hub_factory(url, port=port)
    learner = Learner(hub, socket_token_for(app, world.learners[0].id))
    open_exam(hub, world.exam.id)
    join = learner.call("attempt.join", {"exam_id": world.exam.id})
    acked = answer_some(learner, join, 5)
    hub.kill()  # SIGKILL right after the last ack
    hub2 = hub_factory(url, port=port)
    again = Learner(hub2, socket_token_for(app, world.learners[0].id))
    rejoin = again.call("attempt.join", {"exam_id": world.exam.id})
    assert rejoin["attempt"]["status"] == "in_progress"
    assert rejoin["attempt"]["deadline_ms"] == join["attempt"]["deadline_ms"]
    assert {int(k): v["choice"] for k, v in rejoin["answers"].items()} == acked
    # the attempt goes on
    q = rejoin["paper"][-1]
    assert again.call("answer.save", {"attempt_id": join["attempt"]["attempt_id"], "question_id": q["id"],
                                      "choice_id": q["choices"][0]["id"], "seq": 100})["ok"]
    assert len(stored_answers(join["attempt"]["attempt_id"])) == 6
    again.close()


def test_a_slow_query_does_not_stall_other_sockets(pg_url, tmp_path, hub_factory):
    """A learner's answer waits on a row lock held for 3 s; others keep being served."""
    import psycopg2

    from conftest import base_config

    migrate(pg_url, tmp_path)
    app = create_app(base_config(pg_url, tmp_path))
    with app.app_context():
        world = make_world()
        hub = hub_factory(pg_url)
        a = Learner(hub, socket_token_for(app, world.learners[0].id))
        b = Learner(hub, socket_token_for(app, world.learners[1].id))
        open_exam(hub, world.exam.id)
        ja = a.call("attempt.join", {"exam_id": world.exam.id})
        assert b.call("attempt.join", {"exam_id": world.exam.id})["ok"]
        locker = psycopg2.connect(pg_url)
        cur = locker.cursor()
        cur.execute("SELECT id FROM attempt WHERE id = %s FOR UPDATE", (ja["attempt"]["attempt_id"],))
        result = {}

        def slow_answer():
            q = ja["paper"][0]
            t = time.time()
            result["ack"] = a.call("answer.save", {"attempt_id": ja["attempt"]["attempt_id"], "question_id": q["id"],
                                                   "choice_id": q["choices"][0]["id"], "seq": 1}, timeout=20)
            result["took"] = time.time() - t

        worker = threading.Thread(target=slow_answer)
        worker.start()
        time.sleep(0.3)
        round_trips = []
        end = time.time() + 2.5
        while time.time() < end:
            t = time.time()
            assert b.call("time.sync", {"t0": 0})["ok"]
            round_trips.append(time.time() - t)
            time.sleep(0.05)
        locker.rollback()  # release after ~3 s
        worker.join(20)
        locker.close()
        # the writer gives up on a held lock after 2 s (lock_timeout) and says "resend"
        assert result["ack"]["ok"] or result["ack"]["error"]["code"] == "server.retry"
        assert result["took"] >= 1.5
        q = ja["paper"][0]
        assert a.call("answer.save", {"attempt_id": ja["attempt"]["attempt_id"], "question_id": q["id"],
                                      "choice_id": q["choices"][0]["id"], "seq": 2})["ok"]
        assert max(round_trips) < 0.5, round_trips
        assert len(round_trips) > 20
        a.close(), b.close()
        db.session.remove()


def test_two_hub_processes_share_one_exam_through_redis(pg_url, redis_url, tmp_path, hub_factory):
    from conftest import base_config

    migrate(pg_url, tmp_path)
    app = create_app(base_config(pg_url, tmp_path))
    with app.app_context():
        world = make_world()
        hub_a = hub_factory(pg_url, REDIS_URL=redis_url)
        hub_b = hub_factory(pg_url, REDIS_URL=redis_url)
        on_a = Learner(hub_a, socket_token_for(app, world.learners[0].id))
        on_b = Learner(hub_b, socket_token_for(app, world.learners[1].id))
        ja = on_a.call("attempt.join", {"exam_id": world.exam.id})
        assert on_b.call("attempt.join", {"exam_id": world.exam.id})["ok"]
        open_exam(hub_b, world.exam.id)  # the organizer is on hub B
        assert on_a.wait_for("exam.start")["exam_id"] == world.exam.id
        assert on_b.wait_for("exam.start")["exam_id"] == world.exam.id
        # the same learner on both hubs: answers through A, then B sees them
        again_on_b = Learner(hub_b, socket_token_for(app, world.learners[0].id))
        acked = answer_some(on_a, on_a.call("attempt.join", {"exam_id": world.exam.id}), 3)
        rejoin = again_on_b.call("attempt.join", {"exam_id": world.exam.id})
        assert {int(k): v["choice"] for k, v in rejoin["answers"].items()} == acked
        # submitting on B tells the device on A
        assert again_on_b.call("attempt.submit", {"attempt_id": ja["attempt"]["attempt_id"], "confirm": True})["ok"]
        assert on_a.wait_for("attempt.closed")["status"] == "submitted"
        # a pause decided on hub A reaches the learner on hub B
        s = staff_session(hub_a.url, "btc", "mat-khau-thu")
        token = csrf_of(s, f"{hub_a.url}/exams/{world.exam.id}")
        bp = world.learners[1].bridge_point_id
        r = s.post(f"{hub_a.url}/exams/{world.exam.id}/adjust",
                   data={"csrf_token": token, "kind": "pause", "bridge_point_id": bp, "reason": "Mất mạng"}, allow_redirects=False)
        assert r.status_code == 302
        assert on_b.wait_for("attempt.time")["paused"] is True
        for learner in (on_a, on_b, again_on_b):
            learner.close()
        db.session.remove()
