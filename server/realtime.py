"""The one place that knows the async library.

The hub runs on gevent (default) or eventlet, chosen by `DIEMCAU_ASYNC_MODE`; tests
that use Flask's in-process clients run on "threading". Everything else in the code base
goes through Flask-SocketIO's own portable primitives (`start_background_task`,
`sleep`) or through the helpers below, so switching is one setting.

`patch()` must run before anything else imports sockets, threads or the database
driver: `wsgi.py` and `python -m server` call it first.
"""
from __future__ import annotations

import collections
import os
import resource
import time
from typing import Any, Callable

_patched: str | None = None


def mode() -> str:
    return os.environ.get("DIEMCAU_ASYNC_MODE", os.environ.get("ASYNC_MODE", "gevent"))


def patch() -> str:
    """Monkey-patch the standard library and the PostgreSQL driver for the chosen mode.

    psycogreen makes psycopg2 wait through the event loop, so a slow query suspends
    only the greenlet that asked for it, never every socket of the hub.
    """
    global _patched
    if _patched:
        return _patched
    chosen = mode()
    if chosen == "gevent":
        import gevent

        # every socket event runs in a greenlet of its own; recording who spawned it
        # (and that one's stack) costs each spawn and is read by nothing here.
        if "GEVENT_TRACK_GREENLET_TREE" not in os.environ:
            gevent.config.track_greenlet_tree = False
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
        _speed_up_gevent_websocket()
    elif chosen == "eventlet":
        import warnings

        with warnings.catch_warnings():  # "bugfix-only mode" is known: docs/benchmarks.md
            warnings.simplefilter("ignore")
            import eventlet

        eventlet.monkey_patch()
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
    if chosen in ("gevent", "eventlet"):
        one_ping_timer()
    _patched = chosen
    return chosen


# Engine.IO's pings ---------------------------------------------------------------------
# python-engineio gives each socket a task of its own that sleeps `ping_interval` and then
# sends the next ping: at 10,000 learners, 400 tasks spawned per second and 10,000 asleep
# at any moment, each a greenlet with its frames and timer. Each new one replaces an old
# one, so the collector's count of new objects stays flat while the young generation fills
# with them: ~280,000 objects, scanned by the next young pass in 230-300 ms with the loop
# stopped (docs/benchmarks.md, "The young generation that filled up"). One task per
# Engine.IO server sends every socket's ping instead, when due.

class PingTimer:
    """Every socket's next ping, in the order they are due: the interval is the same for
    all, so the order of scheduling is the order of due times and a deque keeps them."""

    #: pings sent between two yields to the loop, when many are due at once.
    BATCH = 200

    def __init__(self, server: Any) -> None:
        self.server = server
        self.due: Any = collections.deque()
        self.task: Any = None

    @classmethod
    def of(cls, server: Any) -> "PingTimer":
        timer = server.__dict__.get("_diemcau_ping_timer")
        if timer is None:
            timer = server._diemcau_ping_timer = cls(server)
        return timer

    def add(self, sock: Any) -> None:
        self.due.append((time.monotonic() + self.server.ping_interval, sock))
        if self.task is None:
            self.task = self.server.start_background_task(self._run)

    def send_due(self, now: float) -> int:
        """Ping every socket whose time has come (as engineio's `_send_ping` does); how many."""
        from engineio import packet

        sent = 0
        while self.due and self.due[0][0] <= now:
            _, sock = self.due.popleft()
            try:
                if not sock.closing and not sock.closed:
                    sock.last_ping = time.time()
                    sock.send(packet.Packet(packet.PING))
                    sent += 1
            except Exception:  # one broken socket must not stop everyone's pings
                import logging  # here, not at the top: it imports threading before the patching

                logging.getLogger(__name__).exception("ping to %s failed", getattr(sock, "sid", "?"))
            if sent and sent % self.BATCH == 0:
                self.server.sleep(0)
        return sent

    def _run(self) -> None:
        while True:
            self.send_due(time.monotonic())
            # anything scheduled from now on is due a whole interval later
            wait = self.due[0][0] - time.monotonic() if self.due else self.server.ping_interval
            self.server.sleep(min(max(wait, 0.005), self.server.ping_interval))


def one_ping_timer() -> None:
    """Route python-engineio's server sockets' pings through `PingTimer`."""
    from engineio import socket as eio_socket

    def schedule_ping(self: Any) -> None:
        # as the original: a new ping only once the previous one's cycle has completed
        if self.last_ping:
            self.last_ping = None
            PingTimer.of(self.server).add(self)

    eio_socket.Socket.schedule_ping = schedule_ping


def _speed_up_gevent_websocket() -> None:
    """gevent-websocket unmasks every client frame and checks its UTF-8 one byte at a time
    in Python (10 ms for one 94 KB lecture chunk). Do both in C: unmasking as one big-int
    XOR, the check with the codec's incremental decoder. Same results, same errors
    (tests/web/test_realtime.py compares them with the originals)."""
    from geventwebsocket import websocket as gws

    gws.Header.mask_payload = gws.Header.unmask_payload = fast_mask_payload
    gws.Utf8Validator = FastUtf8Validator


def fast_mask_payload(header: Any, payload: bytes) -> bytearray:
    n = len(payload)
    if not n:
        return bytearray()
    key = int.from_bytes((bytes(header.mask) * (n // 4 + 1))[:n], "big")
    return bytearray((int.from_bytes(payload, "big") ^ key).to_bytes(n, "big"))


class FastUtf8Validator:
    """geventwebsocket's validator interface: validate() → (valid, ends on a code point,
    index, position), incremental across the frames of one message until reset()."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        import codecs

        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._seen = 0

    def validate(self, payload: bytes) -> tuple[bool, bool, int, int]:
        try:
            self._decoder.decode(bytes(payload), final=False)
        except UnicodeDecodeError as err:
            return False, False, self._seen + err.start, self._seen + err.start
        self._seen += len(payload)
        return True, not self._decoder.getstate()[0], self._seen, self._seen


def raise_fd_limit() -> int:
    """Ten thousand learners need ten thousand sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def lower_priority(by: int) -> int:
    """Lower this process's CPU priority (PROCESS_NICE, 0-19); the new niceness.

    Only ever lowered: raising it needs privileges a hub does not have. Threads started
    afterwards inherit it (the analysis threads then go down to 19 from there)."""
    by = max(0, min(19, by))
    return os.nice(by) if by else os.nice(0)


def on_serve(app: Any, task: Callable[[Any], None]) -> None:
    """Register a background task (a ticker) that the hub starts when it serves.

    Domains register in their init_app; nothing runs until `serve`, so the factory
    stays free of side effects and CLI commands start no threads.
    """
    app.extensions.setdefault("diemcau_background", []).append(task)


def start_background(app: Any) -> None:
    from .extensions import socketio

    for task in app.extensions.get("diemcau_background", []):
        socketio.start_background_task(task, app)


def begin_serving(app: Any) -> None:
    """What a serving hub process does once, whichever server runs it (ours or gunicorn's
    worker, through wsgi.py): file limits, the collector's policy, the background tasks."""
    if app.extensions.get("diemcau_serving"):
        return
    app.extensions["diemcau_serving"] = True
    raise_fd_limit()
    lower_priority(int(app.config.get("PROCESS_NICE") or 0))
    collector_policy(app)
    start_background(app)


def serve(app: Any, host: str, port: int, log_output: bool = False) -> None:
    """Run the hub with the server that fits the async mode."""
    from .extensions import socketio

    begin_serving(app)
    kwargs: dict[str, Any] = {"host": host, "port": port, "log_output": log_output}
    if socketio.async_mode == "eventlet":
        # Flask-SocketIO listens with eventlet's backlog of 50 and lets eventlet.wsgi take
        # only 1,024 connections: a province reconnecting at once needs more of both.
        import eventlet
        import eventlet.wsgi

        listener = eventlet.listen((host, port), backlog=4096)
        eventlet.wsgi.server(listener, app, log_output=log_output, max_size=100_000)
        return
    if socketio.async_mode == "gevent":
        # a province reconnecting at once overflows the default backlog of 128, and the
        # refused SYNs come back 1-3 s later (docs/benchmarks.md).
        kwargs["backlog"] = 4096
    if socketio.async_mode == "threading":
        kwargs["allow_unsafe_werkzeug"] = True
    socketio.run(app, **kwargs)


# The cyclic garbage collector ------------------------------------------------------
# A full collection walks every tracked object, and with 10,000 learners connected the
# hub holds over a million of them: CPython then stops the loop for a second, every ten
# seconds or so under exam load (docs/benchmarks.md, "garbage collector"). So the hub
# runs the full collection itself: when it is quiet, or at the latest every
# GC_FULL_INTERVAL seconds.
#
# The young collections need care too. Each of 10,000 sockets holds the objects of its
# current wait (a timeout, its waiter and callbacks, the last packets, a decoder) until
# its next message, when new ones replace them: the count of new objects that triggers
# a young pass stays flat while the young generation fills with them (80,000-290,000
# objects measured at 10,000 learners, a 180-300 ms pass), and what survives is scanned
# again by the middle generation's pass. So a young pass runs at least every
# GC_YOUNG_INTERVAL seconds (0.25 s: under 26 ms each under a 10,000-learner exam's
# load; every 1 s they took 20-63 ms, for the same CPU in all; 180-300 ms when the
# generation had filled up), and what survives one is left to the full collection:
# objects that live seconds die by reference count, not by the collector
# (docs/benchmarks.md, "The young generation that filled up").

_activity = 0


def note_activity() -> None:
    """Count one handled socket event (the steward's measure of how busy the hub is)."""
    global _activity
    _activity += 1


def collector_policy(app: Any) -> None:
    import gc

    # what start-up loaded lives as long as the process: out of the collector's reach.
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    young = int(app.config.get("GC_YOUNG_THRESHOLD") or young)
    interval = float(app.config.get("GC_YOUNG_INTERVAL") or 0)
    if interval > 0:  # young passes paced by time; the middle generation by the steward
        middle = 2**31 - 1
    gc.set_threshold(young, middle, 2**31 - 1)  # no automatic full collection
    from .extensions import socketio

    socketio.start_background_task(_gc_steward, app)
    if interval > 0:
        socketio.start_background_task(_young_pacer, interval)


def _young_pacer(interval: float) -> None:
    """A young collection every `interval` seconds, so the young generation never holds
    more than that long's survivors (the count-based trigger still runs between)."""
    import gc

    from .extensions import socketio

    while True:
        socketio.sleep(interval)
        gc.collect(0)


def _gc_steward(app: Any) -> None:
    import gc
    import logging
    import time

    from .extensions import socketio

    log = logging.getLogger(__name__)
    every = float(app.config.get("GC_FULL_INTERVAL", 1800))
    quiet_rate = float(app.config.get("GC_QUIET_EVENTS_PER_S", 5))
    check = 15.0
    last_full, seen = time.monotonic(), _activity
    while True:
        socketio.sleep(check)
        rate, seen = (_activity - seen) / check, _activity
        since = time.monotonic() - last_full
        if (rate < quiet_rate and since >= 60) or since >= every:
            t0 = time.perf_counter()
            found = gc.collect()
            last_full = time.monotonic()
            log.info("full garbage collection: %d objects freed in %.0f ms (%.1f events/s)",
                     found, (time.perf_counter() - t0) * 1000, rate)


def mode_in_use() -> str:
    """The async library this process was patched for, or "threading" (tests, CLI)."""
    return _patched or "threading"


def raw_fd_ops() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """The unpatched `os.read`, `os.write` and `select.select`, for blocking pipe I/O in a
    real OS thread (`run_blocking`): the patched ones would wait on the event loop."""
    import select

    chosen = _patched or "threading"
    if chosen == "gevent":
        from gevent import monkey

        return (monkey.get_original("os", "read"), monkey.get_original("os", "write"),
                monkey.get_original("select", "select"))
    if chosen == "eventlet":
        from eventlet import patcher

        raw_os, raw_select = patcher.original("os"), patcher.original("select")
        return raw_os.read, raw_os.write, raw_select.select
    return os.read, os.write, select.select


def run_blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run CPU-bound or blocking C code in a real OS thread so the loop keeps serving."""
    chosen = _patched or "threading"
    if chosen == "gevent":
        import gevent

        return gevent.get_hub().threadpool.apply(fn, args, kwargs)
    if chosen == "eventlet":
        from eventlet import tpool

        return tpool.execute(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def run_in_background(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`run_blocking` for work that may wait (camera analysis): its OS thread runs at the
    lowest CPU priority, so on a busy machine the event loop, and with it every learner's
    ack, always comes first; the work takes the cores the loop leaves idle."""
    chosen = _patched or "threading"
    if chosen == "threading":
        return fn(*args, **kwargs)  # the caller's own thread: leave its priority alone
    if chosen == "gevent":  # threads of its own, so no other blocking work inherits the priority
        global _background_pool
        if _background_pool is None:
            from gevent.threadpool import ThreadPool

            _background_pool = ThreadPool(4)
        return _background_pool.apply(_at_low_priority, (fn, args, kwargs))
    return run_blocking(_at_low_priority, fn, args, kwargs)


_background_pool: Any = None


_low: Any = None  # a thread-local, made on first use (after the monkey-patching)


def _at_low_priority(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    import threading as _threading

    global _low
    if _low is None:
        _low = _threading.local()
    if not getattr(_low, "done", False):
        try:  # Linux: a thread is a task with its own nice value
            os.setpriority(os.PRIO_PROCESS, _threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        _low.done = True
    return fn(*args, **kwargs)
