"""One snapshot file analysed, here or in a worker process of its own.

`analyse_file` is the whole job: read the file, decode, count faces, check the camera
against its history, and for a selfie the one-face check. It never raises: bad data
comes back as `error_code` / `error`.

`python -m proctor.worker` runs it in a process of its own, at the lowest CPU priority:
requests on stdin, answers on stdout, each a 4-byte big-endian length and a pickle, one
at a time. `WorkerProcess` is the caller's side. Why a process and not a thread of the
caller: a thread shares the caller's GIL, and a thread at the lowest priority on a busy
machine can hold the GIL while the kernel runs everything else, stalling the caller's
other threads for as long (2.4 s measured in the hub, docs/benchmarks.md). A process at
nice 19 under SCHED_IDLE takes only idle CPU and holds nothing the caller needs.

Pickles cross only between a caller and the worker it started: never feed this
process's stdin from anywhere else.
"""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .analysis import analyse, one_face_check
from .decoding import MAX_PIXELS, ImageError
from .detectors import make_detector
from .history import SiteHistory

HEADER = struct.Struct(">I")
#: the largest message either side accepts (an answer holds a history thumbnail and boxes).
MAX_MESSAGE = 16 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


class Detectors:
    """Detectors by (model path, input size), built once each (they are not thread-safe:
    one `Detectors` per thread or per process)."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, int], Any] = {}
        self._threads_set = False

    def get(self, model_path: str, input_size: int):
        if not self._threads_set:
            import cv2

            cv2.setNumThreads(1)  # one core per frame: the workers are the parallelism
            self._threads_set = True
        key = (model_path, input_size)
        if key not in self._made:
            self._made[key] = make_detector(model_path, input_size=input_size)
        return self._made[key]


def analyse_file(path: str, history: Optional[bytes], model_path: str, input_size: int, *, now: float,
                 selfie: bool = False, max_pixels: Optional[int] = None,
                 detectors: Optional[Detectors] = None) -> dict[str, Any]:
    """{"analysis", "history", "selfie", "error_code", "error"}; never raises."""
    out: dict[str, Any] = {"analysis": None, "history": None, "selfie": None, "error_code": None, "error": None}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return out | {"error_code": "file_missing", "error": str(exc)[:200]}
    past = None
    if history:
        try:
            past = SiteHistory.from_bytes(history)
        except ValueError:
            past = None  # a damaged history: start again rather than fail every frame
    limit = max_pixels or MAX_PIXELS
    try:
        detector = (detectors or Detectors()).get(model_path, input_size)
        result = analyse(data, detector, past, now=now, max_pixels=limit)
        check = one_face_check(data, detector, max_pixels=limit) if selfie else None
    except ImageError as exc:
        return out | {"error_code": exc.code, "error": exc.message[:200]}
    except Exception as exc:  # noqa: BLE001 - hostile bytes must not take the worker down
        return out | {"error_code": "analysis_failed", "error": f"{type(exc).__name__}: {exc}"[:200]}
    summary = result.to_dict()
    summary.update(frozen_streak=result.history.frozen_streak, moved_streak=result.history.moved_streak,
                   still_streak=result.history.still_streak)
    return out | {"analysis": summary, "history": result.history.to_bytes(), "selfie": check}


# the worker process --------------------------------------------------------------------------

def _read_exactly(read: Callable[[int, int], bytes], fd: int, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = read(fd, left)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _write_all(write: Callable[[int, bytes], int], fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


def serve(fd_in: int, fd_out: int) -> None:
    """Answer requests until stdin closes."""
    detectors = Detectors()
    while True:
        try:
            (size,) = HEADER.unpack(_read_exactly(os.read, fd_in, HEADER.size))
        except EOFError:
            return
        if size > MAX_MESSAGE:
            return
        request = pickle.loads(_read_exactly(os.read, fd_in, size))
        if request.get("warm"):
            try:
                detectors.get(request["model_path"], request["input_size"])
                answer: dict[str, Any] = {"warm": True}
            except Exception as exc:  # noqa: BLE001 - a broken model shows on each snapshot, with its error
                answer = {"warm": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        else:
            answer = analyse_file(request["path"], request.get("history"), request["model_path"],
                                  request["input_size"], now=request["now"], selfie=request.get("selfie", False),
                                  max_pixels=request.get("max_pixels"), detectors=detectors)
        body = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(os.write, fd_out, HEADER.pack(len(body)) + body)


def main() -> None:
    # the channel is the original stdout; anything printed by a library goes to stderr
    fd_out = os.dup(1)
    os.dup2(2, 1)
    lowest_priority()
    serve(0, fd_out)


def lowest_priority() -> None:
    """Take only the CPU nothing else wants: nice 19, and on Linux the SCHED_IDLE policy.

    At nice 19 a process still has a weight (15 against a normal task's 1,024) and,
    once it runs, keeps the core for the scheduler's minimum slice: on 2 cores, the two
    analysis processes starting together took the machine to 0.1-0.2 core idle in the
    first second of 164 cameras' uploads, and the exam's acks waited (docs/benchmarks.md).
    A SCHED_IDLE task is preempted as soon as any other task wants its core. An
    unprivileged process may always lower its own policy."""
    try:
        os.nice(max(0, 19 - os.nice(0)))
    except OSError:
        pass
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass


class WorkerGone(RuntimeError):
    """The worker process died, hung past the timeout or answered garbage (it is killed)."""


class WorkerProcess:
    """The caller's side of one worker process.

    `start` (where the caller may start processes: the hub's event loop) and `call`
    (blocking: the hub runs it in an OS thread) are separate, so that the caller can use
    its async library's process handling for the one and a plain thread for the other.
    `fd_ops` are the unpatched `os.read`, `os.write` and `select.select`.
    """

    def __init__(self, popen: Callable[..., Any] = subprocess.Popen,
                 fd_ops: tuple[Callable, Callable, Callable] | None = None) -> None:
        import select

        self.popen = popen
        self.read, self.write, self.select = fd_ops or (os.read, os.write, select.select)
        self.proc: Any = None
        self.to_child = self.from_child = -1

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.stop()
        child_in, self.to_child = os.pipe()
        self.from_child, child_out = os.pipe()
        try:
            self.proc = self.popen([sys.executable, "-m", "proctor.worker"], stdin=child_in, stdout=child_out,
                                   cwd=str(ROOT), close_fds=True)
        finally:
            os.close(child_in)
            os.close(child_out)

    def call(self, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Send one request and wait for its answer (blocking). Raises WorkerGone."""
        if self.proc is None:
            raise WorkerGone("not started")
        body = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        end = time.monotonic() + timeout
        try:
            _write_all(self.write, self.to_child, HEADER.pack(len(body)) + body)
            (size,) = HEADER.unpack(self._read(HEADER.size, end))
            if size > MAX_MESSAGE:
                raise WorkerGone(f"answer of {size} bytes")
            return pickle.loads(self._read(size, end))
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise WorkerGone(f"{type(exc).__name__}: {exc}") from None

    def _read(self, n: int, end: float) -> bytes:
        parts, left = [], n
        while left:
            wait = end - time.monotonic()
            if wait <= 0 or not self.select([self.from_child], [], [], wait)[0]:
                raise WorkerGone("no answer in time")
            chunk = self.read(self.from_child, left)
            if not chunk:
                raise EOFError("the worker closed its pipe")
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def stop(self) -> None:
        """Kill the process (if any) and close the pipes; call where `start` is called."""
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.to_child = self.from_child = -1
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


if __name__ == "__main__":
    main()
