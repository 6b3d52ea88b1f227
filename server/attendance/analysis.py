"""The analysis pool: OpenCV off the event loop, a bounded number at a time.

A snapshot is analysed after its row is committed (status "pending"). The hub keeps a
queue of snapshot ids in each process and ANALYSIS_WORKERS workers (greenlets under
gevent) that take one id at a time and hand the OpenCV part to
`realtime.run_in_background`, a real OS thread at the lowest CPU priority: OpenCV releases
the GIL, so Socket.IO keeps serving while a frame is decoded and searched for faces, and
on a busy machine the analysis gets only the CPU the event loop leaves idle. Only `detect_in_thread` runs in that thread; it touches
no database and no Flask, only the file and the history bytes it is given.

The queue is a convenience, not the record: the record is the snapshot rows with status
"pending". On start, and every tick after, the pool re-queues pending snapshots that
nobody finished within STALE_PENDING_SECONDS (a hub restart, a crash, another process
that died), so an acknowledged snapshot is always analysed in the end. Finishing is a
conditional update, so a snapshot queued twice (by two processes) is written once.

Camera work can live in a process of its own: a hub process with ANALYSIS_WORKERS = 0
analyses nothing and checks no cameras, and a reverse proxy sends the cameras' uploads to
another hub process (same database, same Redis, lower CPU priority with PROCESS_NICE),
which stores, analyses and pushes to the proctors through Redis. The exam's process then
never spends a moment on a camera (README, "Camera work in a process of its own").
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from flask import Flask

from .. import realtime
from ..extensions import db, socketio

log = logging.getLogger(__name__)

EXTENSION_KEY = "diemcau_snapshot_analysis"
#: how often the pool's ticker looks for offline cameras and forgotten pending snapshots.
TICK_SECONDS = 10.0
#: a pending snapshot older than this is re-queued (its first queue entry was lost).
STALE_PENDING_SECONDS = 120.0
#: queue bound: beyond it new ids wait in the database for the next re-queue.
QUEUE_MAX = 10_000
#: a snapshot whose analysis crashed this many times in a process is marked failed.
MAX_CRASHES = 3
#: an analysis process that has not answered in this long is killed (the snapshot is retried).
CALL_TIMEOUT_S = 60.0
#: where the analyses run (ANALYSIS_ISOLATION): "process", worker processes of their own
#: (default), or "thread", OS threads of the hub process (they share its GIL: at the
#: lowest priority on a busy machine they stalled the event loop for 2.4 s, docs/benchmarks.md).
ISOLATIONS = ("process", "thread")

_local = threading.local()
#: this serving process's analysis processes (None: threads, or not serving)
_processes: Optional["WorkerProcesses"] = None


# the OpenCV side: runs in a worker OS thread ------------------------------------------------

@dataclass(frozen=True)
class DetectorSpec:
    """What a worker thread needs to build its own detector (detectors are not thread-safe)."""

    model_path: str
    input_size: int = 640


@dataclass
class Verdict:
    """What `detect_in_thread` returns: plain data the worker greenlet writes to the database."""

    analysis: Optional[dict[str, Any]] = None  #: `Analysis.to_dict()` plus the history's streaks
    history: Optional[bytes] = None  #: the camera's updated `SiteHistory`
    selfie: Optional[tuple[bool, str]] = None  #: `one_face_check` for a selfie
    error_code: Optional[str] = None
    error: Optional[str] = None


def _detectors():
    """This thread's detectors (`proctor.worker.Detectors`), made on first use."""
    made = getattr(_local, "detectors", None)
    if made is None:
        from proctor.worker import Detectors

        made = _local.detectors = Detectors()
    return made


def detector_for(spec: DetectorSpec):
    """This thread's detector for `spec`, loaded once per thread."""
    return _detectors().get(spec.model_path, spec.input_size)


def detect_in_thread(path: str, history: Optional[bytes], spec: DetectorSpec, *, now: float,
                     selfie: bool = False, max_pixels: Optional[int] = None) -> Verdict:
    """Decode, count faces and check the camera against its history, in this thread.
    Never raises: bad data gives a Verdict with `error_code` (`proctor.worker.analyse_file`)."""
    from proctor.worker import analyse_file

    answer = analyse_file(path, history, spec.model_path, spec.input_size, now=now, selfie=selfie,
                          max_pixels=max_pixels, detectors=_detectors())
    if answer["error_code"] == "analysis_failed":
        log.error("snapshot analysis failed on %s: %s", path, answer["error"])
    return Verdict(**answer)


class WorkerProcesses:
    """ANALYSIS_WORKERS analysis processes (`python -m proctor.worker`, nice 19 and SCHED_IDLE), lent out
    one at a time. A process that dies or hangs is killed, the snapshot stays pending for
    the pool's retry, and the next request starts a fresh process."""

    def __init__(self, n: int):
        from proctor.worker import WorkerProcess

        self.free = socketio.server.eio.create_queue()
        for _ in range(max(1, n)):
            self.free.put(WorkerProcess(fd_ops=realtime.raw_fd_ops()))

    def warm(self, spec: DetectorSpec) -> None:
        """Start one process and load its detector, now rather than in the first snapshot's time."""
        self._call({"warm": True, "model_path": spec.model_path, "input_size": spec.input_size})

    def analyse(self, path: str, history: Optional[bytes], spec: DetectorSpec, *, now: float,
                selfie: bool = False, max_pixels: Optional[int] = None) -> Verdict:
        answer = self._call({"path": path, "history": history, "model_path": spec.model_path,
                             "input_size": spec.input_size, "now": now, "selfie": selfie, "max_pixels": max_pixels})
        if answer["error_code"] == "analysis_failed":
            log.error("snapshot analysis failed on %s: %s", path, answer["error"])
        return Verdict(**answer)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        from proctor.worker import WorkerGone

        worker = self.free.get()
        try:
            if not worker.running:
                worker.start()
            return realtime.run_blocking(worker.call, request, CALL_TIMEOUT_S)
        except WorkerGone:
            worker.stop()
            raise
        finally:
            self.free.put(worker)


# the hub side: a queue and workers per process ------------------------------------------------

class AnalysisPool:
    """ANALYSIS_WORKERS workers fed by an in-process queue of snapshot ids."""

    def __init__(self, app: Flask, workers: int):
        self.app = app
        self.workers = max(1, workers)
        self.queue = socketio.server.eio.create_queue()
        self.queued: set[int] = set()
        #: snapshots whose analysis raised (not bad data: a bug or the database), per id.
        self.crashes: dict[int, int] = {}

    def submit(self, snapshot_id: int) -> bool:
        """Queue a committed snapshot for analysis; False if it must wait for a re-queue."""
        if snapshot_id in self.queued:
            return True
        if len(self.queued) >= QUEUE_MAX:
            return False
        self.queued.add(snapshot_id)
        self.queue.put(snapshot_id)
        return True

    def start(self) -> None:
        for _ in range(self.workers):
            socketio.start_background_task(self._work)

    def _work(self) -> None:
        from . import snapshots

        while True:
            snapshot_id = self.queue.get()
            self.queued.discard(snapshot_id)
            try:
                with self.app.app_context():
                    snapshots.process(snapshot_id)
                self.crashes.pop(snapshot_id, None)
            except Exception:  # the worker outlives any snapshot
                self.crashes[snapshot_id] = self.crashes.get(snapshot_id, 0) + 1
                give_up = self.crashes[snapshot_id] >= MAX_CRASHES
                log.exception("snapshot %s: analysis crashed (%s)", snapshot_id,
                              "given up" if give_up else "stays pending for a retry")
                with self.app.app_context():
                    db.session.rollback()
                    if give_up:
                        self.crashes.pop(snapshot_id, None)
                        snapshots.give_up(snapshot_id, "crashed")
                        db.session.commit()
                    db.session.remove()
                socketio.sleep(1)


def pool(app: Flask) -> Optional[AnalysisPool]:
    """This process's pool, or None when it is not serving (CLI, tests with Flask's client)."""
    return app.extensions.get(EXTENSION_KEY)


def submit(app: Flask, snapshot_id: int) -> bool:
    """Hand a committed snapshot to this process's pool, if it has one.

    Without a pool (tests, CLI) the snapshot stays pending: a serving hub picks it up,
    and tests call `snapshots.process` themselves, the function the workers call.
    """
    running = pool(app)
    return running.submit(snapshot_id) if running is not None else False


def run(app: Flask) -> None:
    """The background task `realtime.on_serve` starts: the workers, then the ticker."""
    from . import snapshots

    with app.app_context():
        workers = int(snapshots.setting("ANALYSIS_WORKERS"))
        spec = snapshots.detector_spec()
    if workers <= 0:
        # a hub process for the exam and the lectures only: the snapshots it is sent wait
        # in the table, where a camera process's ticker finds them (module docstring).
        log.info("ANALYSIS_WORKERS=%s: this process analyses no snapshots and checks no cameras", workers)
        return
    # now, not in the first snapshots' time: importing OpenCV and numpy blocks the loop
    # (~0.5 s), and each analysis thread or process loads its own detector.
    import proctor  # noqa: F401

    global _processes
    isolation = str(app.config.get("ANALYSIS_ISOLATION") or "process")
    if isolation not in ISOLATIONS:
        log.error("ANALYSIS_ISOLATION=%r is not one of %s; using process", isolation, ISOLATIONS)
        isolation = "process"
    if isolation == "process" and realtime.mode_in_use() != "threading":
        _processes = WorkerProcesses(workers)
    for _ in range(workers):
        socketio.start_background_task(_warm_up, spec)
    running = AnalysisPool(app, workers)
    app.extensions[EXTENSION_KEY] = running
    running.start()
    stale_after = 0.0  # at start every pending snapshot is someone's unfinished work
    while True:
        try:
            with app.app_context():
                for snapshot_id in snapshots.pending_ids(older_than_s=stale_after):
                    running.submit(snapshot_id)
                raised = snapshots.flag_offline_cameras()
                db.session.commit()
                for item in raised:
                    snapshots.push_flag(item)
        except Exception:
            log.exception("snapshot ticker failed; trying again next tick")
            with app.app_context():
                db.session.rollback()
                db.session.remove()
        stale_after = STALE_PENDING_SECONDS
        socketio.sleep(TICK_SECONDS)


def _warm_up(spec: DetectorSpec) -> None:
    try:
        if _processes is not None:
            _processes.warm(spec)
        else:
            realtime.run_in_background(detector_for, spec)
    except Exception:  # a broken model shows on the first snapshot, with its own error
        log.exception("analysis warm-up failed")


def run_detection(path: str, history: Optional[bytes], spec: DetectorSpec, **kwargs: Any) -> Verdict:
    """The analysis in one of this process's worker processes; or `detect_in_thread` in a
    low-priority OS thread (ANALYSIS_ISOLATION=thread), or right here (threading mode)."""
    started = time.perf_counter()
    if _processes is not None:
        verdict = _processes.analyse(path, history, spec, **kwargs)
    else:
        verdict = realtime.run_in_background(detect_in_thread, path, history, spec, **kwargs)
    log.debug("snapshot analysed in %.0f ms", (time.perf_counter() - started) * 1000)
    return verdict
