"""Replay of a recorded lecture, with seeking: the page and the recording file.

Logged-in staff and learners may watch. The file is served with HTTP Range support
(Werkzeug's conditional responses), which the <video> element needs to seek; once the
lecture has ended the recording is remuxed with Cues (recording.finish_recording), so
the browser can jump anywhere without reading the whole file.
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template, send_file
from flask_login import login_required

from ..extensions import db
from .models import Lecture
from .recording import recording_path

bp = Blueprint("webcast_media", __name__)


def _lecture(lecture_id: int) -> Lecture:
    lecture = db.session.get(Lecture, lecture_id)
    if lecture is None:
        abort(404)
    return lecture


@bp.get("/lectures/<int:lecture_id>/replay")
@login_required
def replay(lecture_id: int):
    lecture = _lecture(lecture_id)
    path = recording_path(lecture)
    available = path is not None and path.is_file() and path.stat().st_size > 0
    return render_template("webcast/replay.html", lecture=lecture, available=available)


@bp.get("/lectures/<int:lecture_id>/recording.webm")
@login_required
def recording_file(lecture_id: int):
    lecture = _lecture(lecture_id)
    path = recording_path(lecture)
    if path is None or not path.is_file():
        abort(404)
    response = send_file(path, mimetype="video/webm", conditional=True, etag=True, max_age=0,
                         download_name=f"bai-giang-{lecture.id}.webm")
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "private, no-cache"
    return response
