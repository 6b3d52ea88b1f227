"""What the kiosks report, written to the database in batches.

Each hub process knows only the kiosk sockets it holds. Their connections, the lecture
each one shows and their latest health report (buffer, bitrate, dropped chunks, round
trip) wait here, in this process, and go to `SiteStatus` in one batch every
WEBCAST_HEALTH_FLUSH_SECONDS: 164 kiosks reporting every 5 s cost one write every few
seconds, never one per report. A site counts as online if it was seen within
WEBCAST_ONLINE_SECONDS, which is the same answer whichever process is asked.

After a flush the process tells the stages of the lectures its kiosks watch who is
watching (`lecture.sites`), and the control rooms that the grid changed.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
from flask import Flask

from ..core.timeutil import now_utc
from ..extensions import db, socketio
from .models import SiteStatus

log = logging.getLogger(__name__)


@dataclass
class _Site:
    sockets: int = 0
    lecture_id: Optional[int] = None
    #: the latest report not yet written, if any.
    health: Optional[dict] = None


_sites: dict[int, _Site] = {}  # bridge point id → what this process's sockets said
_lock = threading.Lock()


def connected(site_id: int) -> None:
    with _lock:
        _sites.setdefault(site_id, _Site()).sockets += 1


def disconnected(site_id: int) -> None:
    with _lock:
        site = _sites.get(site_id)
        if site is None:
            return
        site.sockets -= 1
        if site.sockets <= 0:
            del _sites[site_id]


def watching(site_id: int, lecture_id: Optional[int]) -> None:
    with _lock:
        if site_id in _sites:
            _sites[site_id].lecture_id = lecture_id


def report(site_id: int, health: dict) -> None:
    with _lock:
        if site_id in _sites:
            _sites[site_id].health = health


def local_sites() -> dict[int, Optional[int]]:
    """bridge point id → lecture id, for the kiosks this process holds."""
    with _lock:
        return {site_id: site.lecture_id for site_id, site in _sites.items()}


def flush(now: datetime) -> dict[int, Optional[int]]:
    """Write last-seen, lecture and pending health of this process's kiosks; don't commit."""
    from .operations import ensure_site_status

    with _lock:
        rows = []
        for site_id, site in _sites.items():
            row: dict[str, Any] = {"bridge_point_id": site_id, "last_seen_at": now, "lecture_id": site.lecture_id}
            if site.health is not None:
                row["health"] = site.health
                site.health = None
            rows.append(row)
        watched = {site_id: site.lecture_id for site_id, site in _sites.items()}
    if not rows:
        return watched
    ensure_site_status(watched)
    for start in range(0, len(rows), 500):
        db.session.execute(sa.update(SiteStatus), rows[start:start + 500])
    return watched


def push_after_flush(watched: dict[int, Optional[int]], now: datetime) -> None:
    from . import queries
    from .operations import NS, setting

    if not watched:
        return
    online_s = setting("WEBCAST_ONLINE_SECONDS")
    for lecture_id in sorted({lid for lid in watched.values() if lid is not None}):
        socketio.emit("lecture.sites", queries.lecture_sites(lecture_id, now, online_s),
                      to=f"stage:{lecture_id}", namespace=NS)
    socketio.emit("control.changed", {"sites": len(watched)}, to="control", namespace=NS)


def run(app: Flask) -> None:
    """The background task of every hub process: flush, then tell who is watching."""
    from .operations import setting

    with app.app_context():
        interval = setting("WEBCAST_HEALTH_FLUSH_SECONDS")
    while True:
        socketio.sleep(interval)
        started = time.monotonic()
        try:
            with app.app_context():
                now = now_utc()
                watched = flush(now)
                db.session.commit()
                push_after_flush(watched, now)
                db.session.rollback()
        except Exception:
            log.exception("webcast health flush failed; trying again next time")
            with app.app_context():
                db.session.rollback()
                db.session.remove()
        if time.monotonic() - started > interval:
            log.warning("webcast health flush took %.1f s", time.monotonic() - started)
