"""Every lecture recorded to disk, appended live, made seekable when the lecture ends.

The hub process that holds the rapporteur's socket appends each accepted "av" piece to
`<instance>/recordings/<random>.webm` before it acks the chunk (append + flush: nothing
acknowledged is lost, and at 1.5 Mbit/s the write costs nothing). The file is what the
bridge points received: one init segment, then clusters. When the rapporteur's recorder
restarts (a reconnect, a resync) a new stream begins at time 0 with its own init; the
writer keeps the first init and shifts the new clusters' timecodes to follow on, so
the recording stays one timeline across any number of reconnects, even when the new
socket lands on another hub process (the writer's position is kept next to the file).

A live file has no Cues and no duration. `finish_recording(lecture)`, called when the
lecture ends, stops every writer (through the media bus) and remuxes the file with
ffmpeg (`-c copy`) in a background task, so the replay page can seek. An exclusive
`flock` on the file orders the writers and the remux across processes.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Iterable, Optional

import sqlalchemy as sa
from flask import Flask, current_app

from ..extensions import db, socketio
from .models import Lecture
from .webm import CLUSTER, CUES, EBML, SEEK_HEAD, SEGMENT, TIMECODE, Piece, read_id, read_size

log = logging.getLogger(__name__)

#: gap left between two recorder runs in the recording's timeline.
RUN_GAP_MS = 40


def recordings_dir(app: Optional[Flask] = None) -> Path:
    app = app or current_app
    return Path(app.config.get("RECORDINGS_DIR") or Path(app.instance_path) / "recordings")


def recording_path(lecture: Lecture, app: Optional[Flask] = None) -> Optional[Path]:
    return recordings_dir(app) / lecture.recording_file if lecture.recording_file else None


def start_recording(lecture: Lecture) -> str:
    """Give the lecture its (unguessable) recording file name, once; the caller commits."""
    if not lecture.recording_file:
        lecture.recording_file = secrets.token_urlsafe(18) + ".webm"
        recordings_dir().mkdir(parents=True, exist_ok=True)
    return lecture.recording_file


class RecordingWriter:
    """Appends one lecture's pieces to its file, holding an exclusive lock on it.

    `end_ms` is where the recording's timeline ends so far; `bytes` the file's size.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd
        self.bytes = os.fstat(fd).st_size
        self.end_ms = _read_position(path) if self.bytes else 0
        self._offset_ms = 0
        self._new_run = self.bytes > 0  # a resumed file: the next init opens a new run

    @classmethod
    def open(cls, path: Path, wait_s: float = 0.0) -> Optional["RecordingWriter"]:
        """Open for appending once no one else holds the file (None if still held after wait_s)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino == os.stat(path).st_ino:  # not replaced by a remux meanwhile
                    return cls(path, fd)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                pass
            os.close(fd)
            if time.monotonic() >= deadline:
                return None
            socketio.sleep(0.05)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def append(self, pieces: Iterable[Piece], *, media_ms: Optional[int], timecode_scale: int) -> int:
        """Write the pieces of one fed chunk; `media_ms` is the latest block time the chunk
        brought (in its own run's time). Returns the bytes written."""
        out = bytearray()
        for piece in pieces:
            if piece.init:
                if self.bytes or out:
                    self._new_run = True  # keep the first init only
                else:
                    out += piece.data
                continue
            out += self._retime(piece.data, timecode_scale) if piece.cluster_start else piece.data
        if out:
            view = memoryview(out)
            while view:
                view = view[os.write(self._fd, view):]
            self.bytes += len(out)
        if media_ms is not None and not self._new_run:
            self.end_ms = max(self.end_ms, self._offset_ms + media_ms)
            _write_position(self.path, self.end_ms)
        return len(out)

    def _retime(self, data: bytes, scale: int) -> bytes:
        """Shift a cluster's Timecode by the run's offset (rewritten as 8 bytes: the forwarded
        clusters have an unknown size, so the cluster may grow)."""
        head = read_id(data, 0)
        size = read_size(data, head[1]) if head else None
        if not head or head[0] != CLUSTER or size is None:
            return data
        at = head[1] + size[1]
        child = read_id(data, at)
        csize = read_size(data, at + child[1]) if child else None
        if not child or child[0] != TIMECODE or csize is None or csize[0] is None:
            return data
        start = at + child[1] + csize[1]
        end = start + csize[0]
        value = int.from_bytes(data[start:end], "big")
        if self._new_run:
            self._offset_ms = self.end_ms + RUN_GAP_MS - value * scale // 1_000_000
            self._new_run = False
        if self._offset_ms == 0:
            return data
        shifted = max(0, value + self._offset_ms * 1_000_000 // scale)
        return data[:at] + b"\xe7\x88" + shifted.to_bytes(8, "big") + data[end:]

    def close(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def _position_file(path: Path) -> Path:
    return path.parent / (path.name + ".json")


def _read_position(path: Path) -> int:
    try:
        return int(json.loads(_position_file(path).read_text())["end_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _write_position(path: Path, end_ms: int) -> None:
    _position_file(path).write_text(json.dumps({"end_ms": end_ms}))


# the finished file ------------------------------------------------------------------

def has_cues(path: Path) -> bool:
    """Whether the file's Segment has Cues (or a SeekHead pointing at them) before its first
    Cluster: what a remuxed file has and a live one (SeekHead voided) has not."""
    with open(path, "rb") as f:
        data = f.read(256 * 1024)
    if data[:4] != EBML.to_bytes(4, "big"):
        return False
    i = 0
    while i < len(data):
        head = read_id(data, i)
        size = read_size(data, i + head[1]) if head else None
        if head is None or size is None:
            return False
        eid, body = head[0], i + head[1] + size[1]
        if eid == SEGMENT:
            i = body  # into it
            continue
        if eid == CUES or (eid == SEEK_HEAD and CUES.to_bytes(4, "big") in data[body:body + (size[0] or 0)]):
            return True
        if eid == CLUSTER or size[0] is None:
            return False
        i = body + size[0]
    return False


def probe_duration_ms(path: Path, ffprobe: str = "ffprobe") -> int:
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=120)
    try:
        return int(float(out.stdout.strip()) * 1000)
    except ValueError:
        return 0


def remux(path: Path, ffmpeg: str = "ffmpeg") -> None:
    """Rewrite the file with Cues and a duration (no re-encoding), atomically."""
    tmp = path.with_name(path.name + ".remux.webm")
    try:
        subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(path), "-map", "0", "-c", "copy", "-f", "webm", str(tmp)],
                       check=True, capture_output=True, timeout=3600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finish_recording(lecture: Lecture) -> None:
    """Stop recording the lecture in every hub process and make its file seekable.

    Call it from the operation that ends the lecture. It returns at once: the writers
    close as the bus tells them, and a background task waits for the file's lock, remuxes
    it (ffmpeg -c copy, a child process the task waits for cooperatively), then stores its final size and duration and commits.
    Calling it twice is harmless (a file that already has Cues is only measured).
    """
    from .media import media_hub

    media_hub().finish(lecture.id)
    if lecture.recording_file:
        socketio.start_background_task(_finish, current_app._get_current_object(), lecture.id, lecture.recording_file)


def _finish(app: Flask, lecture_id: int, name: str) -> None:
    with app.app_context():
        path = recordings_dir(app) / name
        if not path.exists():
            return
        lock = RecordingWriter.open(path, wait_s=float(app.config.get("RECORDING_LOCK_WAIT_S", 60)))
        if lock is None:
            log.error("recording %s: still being written, not remuxed", name)
            return
        try:
            # ffmpeg is a child process: waiting for it is I/O, which the hub's monkey-patched
            # subprocess does cooperatively (gevent cannot watch a child from run_blocking's
            # native threads, so this runs in the background task itself).
            if not has_cues(path):
                started = time.monotonic()
                remux(path, app.config.get("FFMPEG", "ffmpeg"))
                log.info("recording %s remuxed in %.1fs", name, time.monotonic() - started)
            size = path.stat().st_size
            duration = probe_duration_ms(path, app.config.get("FFPROBE", "ffprobe"))
        except (OSError, subprocess.SubprocessError) as err:
            log.error("recording %s: remux failed: %s", name, getattr(err, "stderr", err))
            return
        finally:
            lock.close()
        _position_file(path).unlink(missing_ok=True)
        try:
            db.session.execute(sa.update(Lecture).where(Lecture.id == lecture_id)
                               .values(recording_bytes=size, duration_ms=duration))
            db.session.commit()
        finally:
            db.session.remove()

