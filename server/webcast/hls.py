"""HLS for the audiences beyond the bridge points (learners watching from home).

With `HLS_ENABLED`, the hub process that takes the rapporteur's "av" stream also feeds
it, piece by piece, to one ffmpeg per live lecture, which transcodes to H.264/AAC (what
every phone plays) and writes `<instance>/hls/<lecture_id>/index.m3u8` with 2-second
segments in a rolling window. nginx or a CDN serves that folder (docs/hls.md); the hub
serves it too, to logged-in users, at `/hls/<lecture_id>/index.m3u8`.

Feeding never blocks the publisher: pieces go into a queue drained by a background
task. If ffmpeg falls behind (a busy machine) or dies, the queue is dropped and ffmpeg
restarts at the next keyframe cluster with the stream's init segment; a new recorder
run (a new init segment) also restarts it. Restarts append to the playlist with a
discontinuity, so players carry on.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from flask import Blueprint, Flask, abort, current_app, send_from_directory
from flask_login import login_required

from .webm import Piece

log = logging.getLogger(__name__)

bp = Blueprint("webcast_hls", __name__)

PLAYLIST = "index.m3u8"
SEGMENT = re.compile(r"seg_\d{1,9}\.ts")


def hls_root(app: Optional[Flask] = None) -> Path:
    app = app or current_app
    return Path(app.config.get("HLS_DIR") or Path(app.instance_path) / "hls")


def ffmpeg_command(out: Path, *, ffmpeg: str = "ffmpeg", segment_s: int = 2, window: int = 6,
                   video_kbps: int = 1200, append: bool = False) -> list[str]:
    flags = "delete_segments+independent_segments+omit_endlist"
    if append:
        flags += "+append_list+discont_start"
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-fflags", "+genpts", "-f", "webm", "-i", "pipe:0",
        "-map", "0:v:0?", "-map", "0:a:0?",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main",
        "-pix_fmt", "yuv420p", "-b:v", f"{video_kbps}k", "-maxrate", f"{video_kbps}k",
        "-bufsize", f"{video_kbps * 2}k", "-force_key_frames", f"expr:gte(t,n_forced*{segment_s})",
        "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k", "-ar", "48000",
        "-f", "hls", "-hls_time", str(segment_s), "-hls_list_size", str(window),
        "-hls_delete_threshold", "2", "-hls_flags", flags,
        "-hls_segment_filename", str(out / "seg_%06d.ts"), str(out / PLAYLIST),
    ]


def has_libx264(ffmpeg: str = "ffmpeg") -> bool:
    path = shutil.which(ffmpeg)
    if not path:
        return False
    out = subprocess.run([path, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
    return " libx264 " in out.stdout


class HlsEncoder:
    """One live lecture's ffmpeg, fed through a bounded queue.

    `spawn(fn)` starts a background task and `make_queue()` a queue of the hub's async
    mode (Flask-SocketIO's), so the writer is a greenlet under gevent.
    """

    def __init__(self, out: Path, *, spawn: Callable[..., Any], make_queue: Callable[[], Any],
                 ffmpeg: str = "ffmpeg", segment_s: int = 2, window: int = 6, max_queue: int = 16 << 20) -> None:
        self.out = out
        self.ffmpeg, self.segment_s, self.window, self.max_queue = ffmpeg, segment_s, window, max_queue
        self.restarts = 0
        self.dropped = 0
        self._queue = make_queue()
        self._queued = 0
        self._waiting_key = True  # nothing fed yet: start at an init segment or a keyframe cluster
        self._init: Optional[bytes] = None
        self._proc: Optional[subprocess.Popen] = None
        self._closed = False
        out.mkdir(parents=True, exist_ok=True)
        spawn(self._run)

    # the publisher's side (never blocks) -----------------------------------------------
    def feed(self, pieces: Iterable[Piece], init_segment: Optional[bytes]) -> None:
        if self._closed:
            return
        for piece in pieces:
            if piece.init:
                self._init = piece.data
                self._put(("restart", piece.data))
                self._waiting_key = False
                continue
            if self._waiting_key:
                if not (piece.cluster_start and piece.keyframe and init_segment):
                    self.dropped += 1
                    continue
                self._waiting_key = False
                self._put(("restart", init_segment))
            if self._queued > self.max_queue:
                log.warning("hls %s: ffmpeg is behind by %d bytes, restarting at the next keyframe", self.out, self._queued)
                self._put(("drop", b""))
                self._waiting_key = True
                self.dropped += 1
                continue
            self._put(("data", piece.data))

    def close(self, final: bool = False) -> None:
        """Stop feeding; ffmpeg writes its last segment. `final`: the lecture is over."""
        if not self._closed:
            self._closed = True
            self._put(("close", b"final" if final else b""))

    def _put(self, item: tuple[str, bytes]) -> None:
        self._queued += len(item[1])
        self._queue.put(item)

    # the writer task -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            kind, data = self._queue.get()
            self._queued -= len(data)
            try:
                if kind == "restart":
                    self._stop()
                    self._start()
                    self._write(data)
                elif kind == "data":
                    self._write(data)
                elif kind == "drop":
                    self._stop(kill=True)
                elif kind == "close":
                    self._stop()
                    if data == b"final":
                        self._end_playlist()
                    return
            except Exception:
                log.exception("hls %s: writer failed", self.out)
                self._stop(kill=True)
                self._waiting_key = True

    def _start(self) -> None:
        append = (self.out / PLAYLIST).exists()
        cmd = ffmpeg_command(self.out, ffmpeg=self.ffmpeg, segment_s=self.segment_s, window=self.window, append=append)
        with open(self.out / "ffmpeg.log", "ab") as err:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        self.restarts += 1

    def _write(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                log.warning("hls %s: ffmpeg exited with %s", self.out, proc.returncode)
                self._proc = None
                self._waiting_key = True
            return
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._stop(kill=True)
            self._waiting_key = True

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if kill:
                proc.kill()
            else:
                proc.stdin.close()
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
            proc.wait()

    def _end_playlist(self) -> None:
        playlist = self.out / PLAYLIST
        if playlist.exists() and "#EXT-X-ENDLIST" not in playlist.read_text():
            with open(playlist, "a") as f:
                f.write("#EXT-X-ENDLIST\n")


@bp.get("/hls/<int:lecture_id>/<name>")
@login_required
def hls_file(lecture_id: int, name: str):
    """The playlist and segments, for logged-in learners and staff (nginx/CDN in production)."""
    if name != PLAYLIST and not SEGMENT.fullmatch(name):
        abort(404)
    folder = hls_root() / str(lecture_id)
    if not (folder / name).is_file():
        abort(404)
    playlist = name == PLAYLIST
    response = send_from_directory(
        folder, name, conditional=not playlist, max_age=0 if playlist else 3600,
        mimetype="application/vnd.apple.mpegurl" if playlist else "video/mp2t",
    )
    if playlist:
        response.headers["Cache-Control"] = "no-cache"
    return response
