"""Settings. Every setting can come from the environment; nothing here does I/O.

`load(overrides)` returns a plain dict for `app.config.from_mapping`. The embedded
default is SQLite in the instance folder and one hub process; `DATABASE_URL` and
`REDIS_URL` switch to PostgreSQL and to Redis as Socket.IO's message queue.
"""
from __future__ import annotations

import os
from typing import Any


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"DIEMCAU_{name}", os.environ.get(name, default))


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def load(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    webcam = _bool(_env("EXAM_WEBCAM_REQUIRED", "0"))
    cfg: dict[str, Any] = {
        "SECRET_KEY": _env("SECRET_KEY"),
        #: SQLAlchemy URL; None means SQLite in the instance folder.
        "SQLALCHEMY_DATABASE_URI": _env("DATABASE_URL"),
        #: Redis URL for the Socket.IO message queue (several hub processes).
        "REDIS_URL": _env("REDIS_URL"),
        #: "gevent" (default: less memory, faster start broadcast; see docs/benchmarks.md) or "eventlet".
        "ASYNC_MODE": _env("ASYNC_MODE", "gevent"),
        "BABEL_DEFAULT_LOCALE": "vi",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Ho_Chi_Minh",
        #: seconds after a deadline during which answers already in flight are still taken.
        "EXAM_GRACE_SECONDS": float(_env("EXAM_GRACE_SECONDS", 5)),
        #: the shortest time between two commits of one answer writer lane: under load
        #: the answers arriving meanwhile go into the next batch together.
        "ANSWER_BATCH_WINDOW_MS": float(_env("ANSWER_BATCH_WINDOW_MS", 15)),
        "ANSWER_BATCH_MAX": int(_env("ANSWER_BATCH_MAX", 500)),
        #: answer writers working side by side on PostgreSQL, each with its own connection.
        "ANSWER_WRITER_LANES": int(_env("ANSWER_WRITER_LANES", 2)),
        #: answers waiting for the writer beyond which the hub says "busy" at once.
        "ANSWER_QUEUE_MAX": int(_env("ANSWER_QUEUE_MAX", 5000)),
        #: the largest Socket.IO message the hub accepts, in bytes.
        "MAX_SOCKET_MESSAGE": int(_env("MAX_SOCKET_MESSAGE", 64 * 1024)),
        "MAX_CONTENT_LENGTH": int(_env("MAX_UPLOAD_BYTES", 20 * 1024 * 1024)),
        #: how often each hub process looks for exams to open and attempts to close.
        "SCHEDULER_INTERVAL": float(_env("SCHEDULER_INTERVAL", 1.0)),
        #: a learner counts as connected while a hub process holding its socket beat
        #: within this many seconds (a dead process's learners drop off after it).
        "PRESENCE_TTL": float(_env("PRESENCE_TTL", 30)),
        "PRESENCE_FLUSH_SECONDS": float(_env("PRESENCE_FLUSH_SECONDS", 5)),
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": _bool(_env("SESSION_COOKIE_SECURE", "0")),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "RUN_SCHEDULER": _bool(_env("RUN_SCHEDULER", "1")),
        #: the hub runs the full garbage collection itself: when quiet (fewer socket
        #: events per second than this), or at the latest every GC_FULL_INTERVAL seconds.
        "GC_FULL_INTERVAL": float(_env("GC_FULL_INTERVAL", 1800)),
        "GC_QUIET_EVENTS_PER_S": float(_env("GC_QUIET_EVENTS_PER_S", 5)),
        #: a serving hub's threshold for young collections (net new container objects
        #: between two; Python's own is 700). At 10,000 learners 700 meant ~11 s of the
        #: hub's CPU in collections per exam and a 20-180 ms pass every few seconds;
        #: 10,000 cut both (docs/benchmarks.md, "The deadline burst at 10,000, 2026-12-04").
        "GC_YOUNG_THRESHOLD": int(_env("GC_YOUNG_THRESHOLD", 10_000)),
        #: ... and a young collection at least this often (s), whose survivors only the
        #: full collection looks at again; 0: Python's middle generation instead
        #: (server/realtime.py, "The cyclic garbage collector"). Every 0.25 s a pass
        #: takes under 26 ms at 10,000 learners, against 20-63 ms every 1 s, for the same
        #: CPU in all (docs/benchmarks.md, "Shorter young passes, a room index, ...").
        "GC_YOUNG_INTERVAL": float(_env("GC_YOUNG_INTERVAL", 0.25)),
        #: Engine.IO: the hub pings every socket this often (s) and drops one whose
        #: answer is this late (s); 10,000 learners at 25 s are 400 pings per second.
        "SOCKET_PING_INTERVAL": int(_env("SOCKET_PING_INTERVAL", 25)),
        "SOCKET_PING_TIMEOUT": int(_env("SOCKET_PING_TIMEOUT", 30)),
        "SNAPSHOT_INTERVAL_SECONDS": float(_env("SNAPSHOT_INTERVAL_SECONDS", 30)),
        "SNAPSHOT_MAX_BYTES": int(_env("SNAPSHOT_MAX_BYTES", 2 * 1024 * 1024)),
        "SNAPSHOT_RETENTION_DAYS": int(_env("SNAPSHOT_RETENTION_DAYS", 90)),
        #: analyses at once in this hub process; 0: none here (a camera process does them,
        #: with the offline-camera checks; README, "Camera work in a process of its own").
        "ANALYSIS_WORKERS": int(_env("ANALYSIS_WORKERS", 2)),
        #: "process": each analysis worker is a process of its own at nice 19 and SCHED_IDLE (default);
        #: "thread": an OS thread of the hub process (shares its GIL; docs/benchmarks.md).
        "ANALYSIS_ISOLATION": _env("ANALYSIS_ISOLATION", "process"),
        #: lower this hub process's CPU priority by this much when it serves (0-19): a
        #: camera process at 10 takes only the CPU the exam's processes leave idle.
        "PROCESS_NICE": int(_env("PROCESS_NICE", 0)),
        #: snapshot uploads handled at once per hub process; the others wait their turn up
        #: to SNAPSHOT_UPLOAD_WAIT_SECONDS, then are refused with "server.busy".
        "SNAPSHOT_UPLOAD_SLOTS": int(_env("SNAPSHOT_UPLOAD_SLOTS", 2)),
        "SNAPSHOT_UPLOAD_WAIT_SECONDS": float(_env("SNAPSHOT_UPLOAD_WAIT_SECONDS", 20)),
        #: whether learners taking a test on their own device are watched by their webcam.
        "EXAM_WEBCAM_REQUIRED": webcam,
        #: uploads let in per second per process at most (0: as fast as the slots allow).
        #: With room cameras only (164 kiosks every 30 s: ~5.5/s), 15: the 164 snapshots
        #: a proctor asks for at once are stored over ~11 s beside the exam instead of
        #: taking the hub for 3-4 s (docs/benchmarks.md). With learners' webcams (10,000
        #: learners at a random moment every 2-6 min: ~40/s) no cap unless set.
        "SNAPSHOT_UPLOAD_RATE": float(_env("SNAPSHOT_UPLOAD_RATE", 0 if webcam else 15)),
        "CHECKIN_TOKEN_SECONDS": int(_env("CHECKIN_TOKEN_SECONDS", 600)),
        "CHECKIN_CODE_SECONDS": int(_env("CHECKIN_CODE_SECONDS", 300)),
        "WEBCAST_HEALTH_FLUSH_SECONDS": float(_env("WEBCAST_HEALTH_FLUSH_SECONDS", 3)),
        "WEBCAST_ONLINE_SECONDS": float(_env("WEBCAST_ONLINE_SECONDS", 15)),
        "WEBCAST_OFFLINE_ALERT_SECONDS": float(_env("WEBCAST_OFFLINE_ALERT_SECONDS", 30)),
        "WEBCAST_SLIDES_MAX_BYTES": int(_env("WEBCAST_SLIDES_MAX_BYTES", 20 * 1024 * 1024)),
        "WEBCAST_SLIDES_MAX_PAGES": int(_env("WEBCAST_SLIDES_MAX_PAGES", 300)),
    }
    if overrides:
        cfg.update(overrides)
    return cfg
