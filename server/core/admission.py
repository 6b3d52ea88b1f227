"""At most a few requests of one kind at a time (a WSGI middleware, pure Python).

164 bridge points' cameras upload at the same moment; each upload costs the event loop a
few milliseconds (the multipart body, the session, the CSRF check, the database). Let in
together, their greenlets take turns with every learner's `answer.save`, and the acks
wait for all of them (2-3 s measured, docs/benchmarks.md). Through this gate only
`slots` of them run at once and the rest wait their turn, cooperatively, so an ack waits
for at most a couple of uploads' steps. One that waits longer than `wait_s` goes on with
`environ[BUSY]` set, and the view refuses it with "server.busy" (the camera sends again
at its next interval).

Create it after the monkey-patching: its semaphore is then the async library's.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

BUSY = "diemcau.admission_busy"


class Gate:
    """`slots` at a time and, with `rate` > 0, at most `rate` admitted per second: a burst
    is spread out instead of taking the loop in one go (the camera's upload waits; an
    exam's ack would have)."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], paths: Iterable[str], slots: int, wait_s: float,
                 rate: float = 0.0):
        self.wsgi_app = wsgi_app
        self.paths = frozenset(paths)
        self.slots = threading.BoundedSemaphore(max(1, int(slots)))
        self.wait_s = float(wait_s)
        self.spacing = 1.0 / float(rate) if float(rate or 0) > 0 else 0.0
        self._next = 0.0  # monotonic time of the next admission

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in self.paths:
            return self.wsgi_app(environ, start_response)
        if not self.slots.acquire(timeout=self.wait_s):
            environ[BUSY] = True
            return self.wsgi_app(environ, start_response)
        try:
            if self.spacing:
                now = time.monotonic()
                start = max(now, self._next)
                self._next = start + self.spacing
                if start > now:
                    time.sleep(start - now)  # patched: only this request waits
            # the views of these paths answer with a body already built (jsonify), so the
            # work is done when the call returns.
            return self.wsgi_app(environ, start_response)
        finally:
            self.slots.release()
