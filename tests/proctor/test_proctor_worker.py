"""proctor.worker: the analysis in a process of its own gives what it gives in a thread,
and a dead, hung or garbage-answering process is reported, never waited on forever."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from proctor.worker import Detectors, WorkerGone, WorkerProcess, analyse_file
from proctor_fixtures import FACES, MODELS, need

MODEL = MODELS / "yunet_s_640_640.onnx"


@pytest.fixture
def worker():
    need(MODEL.is_file(), f"{MODEL} is missing")
    w = WorkerProcess()
    w.start()
    yield w
    w.stop()


def request(path, history=None, **extra):
    return {"path": str(path), "history": history, "model_path": str(MODEL), "input_size": 640,
            "now": 1_000.0, **extra}


def test_the_worker_process_answers_as_the_thread_does_and_runs_at_the_lowest_priority(worker):
    need((FACES / "ulfd_16.jpg").is_file(), "photographs are missing")
    assert worker.call({"warm": True, "model_path": str(MODEL), "input_size": 640}) == {"warm": True}
    here = analyse_file(str(FACES / "ulfd_16.jpg"), None, str(MODEL), 640, now=1_000.0, detectors=Detectors())
    there = worker.call(request(FACES / "ulfd_16.jpg"))
    assert there["error_code"] is None and there["analysis"]["headcount"] == here["analysis"]["headcount"] == 9
    assert there["analysis"]["faces"] == here["analysis"]["faces"] and there["history"] == here["history"]
    # the history it returns is what the next frame of the camera is compared with: the same frame is frozen
    again = worker.call(request(FACES / "ulfd_16.jpg", history=there["history"], now=1_030.0))
    assert again["analysis"]["frozen"] is True
    selfie = worker.call(request(FACES / "fr_obama.jpg", selfie=True))
    assert selfie["selfie"] == (True, "ok")
    assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) == 19
    if sys.platform.startswith("linux"):  # only idle CPU: preempted by any other task
        assert os.sched_getscheduler(worker.proc.pid) == os.SCHED_IDLE


def test_bad_data_comes_back_as_an_error_and_the_process_goes_on(worker, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    assert worker.call(request(junk))["error_code"] in ("corrupt", "truncated", "not_image")
    assert worker.call(request(tmp_path / "missing.jpg"))["error_code"] == "file_missing"
    assert worker.call(request(junk, history=b"garbage history"))["error_code"] is not None
    # no model file: the approximate Haar detector, as in the hub
    assert worker.call({"warm": True, "model_path": str(tmp_path / "no-model.onnx"), "input_size": 640})["warm"]
    haar = worker.call({**request(FACES / "fr_obama.jpg"), "model_path": str(tmp_path / "no-model.onnx")})
    assert haar["error_code"] is None and haar["analysis"]["detector"].startswith("haar")
    assert worker.running


def test_a_dead_process_is_reported_and_a_new_one_started(worker):
    need((FACES / "fr_obama.jpg").is_file(), "photographs are missing")
    worker.proc.kill()
    worker.proc.wait()
    with pytest.raises(WorkerGone):
        worker.call(request(FACES / "fr_obama.jpg"), timeout=10)
    worker.start()
    assert worker.call(request(FACES / "fr_obama.jpg"))["analysis"]["headcount"] == 1


def test_a_hung_process_is_given_up_after_the_timeout():
    def silent(argv, **kwargs):  # a worker that reads nothing and never answers
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)

    w = WorkerProcess(popen=silent)
    w.start()
    try:
        t = time.monotonic()
        with pytest.raises(WorkerGone, match="in time"):
            w.call({"warm": True, "model_path": "x", "input_size": 640}, timeout=1.0)
        assert time.monotonic() - t < 5
    finally:
        w.stop()
    assert not w.running and w.proc is None
