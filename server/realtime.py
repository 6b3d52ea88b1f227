"""The one place that knows the async library.

The hub runs on gevent (default) or eventlet, chosen by `DIEMCAU_ASYNC_MODE`; tests
that use Flask's in-process clients run on "threading". Everything else in the code base
goes through Flask-SocketIO's own portable primitives (`start_background_task`,
`sleep`) or through the helpers below, so switching is one setting.

`patch()` must run before anything else imports sockets, threads or the database
driver: `wsgi.py` and `python -m server` call it first.
"""
from __future__ import annotations

import os
import resource
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
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
    elif chosen == "eventlet":
        import warnings

        with warnings.catch_warnings():  # "bugfix-only mode" is known: docs/benchmarks.md
            warnings.simplefilter("ignore")
            import eventlet

        eventlet.monkey_patch()
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
    _patched = chosen
    return chosen


def raise_fd_limit() -> int:
    """Ten thousand learners need ten thousand sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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


def serve(app: Any, host: str, port: int, log_output: bool = False) -> None:
    """Run the hub with the server that fits the async mode."""
    from .extensions import socketio

    raise_fd_limit()
    # Move everything loaded at start-up out of the collector's reach: a full collection
    # over it otherwise stalls the loop for 100+ ms in the middle of a lecture or an exam.
    import gc

    gc.collect()
    gc.freeze()
    start_background(app)
    kwargs: dict[str, Any] = {"host": host, "port": port, "log_output": log_output}
    if socketio.async_mode == "eventlet":
        # eventlet.wsgi.server takes only 1,024 connections unless told otherwise.
        kwargs["max_size"] = 100_000
    if socketio.async_mode == "gevent":
        # a province reconnecting at once overflows the default backlog of 128, and the
        # refused SYNs come back 1-3 s later (docs/benchmarks.md).
        kwargs["backlog"] = 4096
    if socketio.async_mode == "threading":
        kwargs["allow_unsafe_werkzeug"] = True
    socketio.run(app, **kwargs)


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
