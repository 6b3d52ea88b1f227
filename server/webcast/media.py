"""`/media`: the live lecture's media path, from the rapporteur's browser to every site.

The rapporteur's page records two WebM streams ("av": camera or screen with sound;
"audio": sound only, for sites on weak links) and sends them in chunks with
`media.publish`. This process checks who is speaking and that the lecture is live,
parses the chunk (webm.LiveStream), appends the "av" pieces to the recording, then puts
the pieces on the bus (bus.py); every hub process relays them to its own sites, which
`media.subscribe` and receive `media.data` events that they ack.

A chunk's ack means: parsed, recorded, and handed to the bus. A refused chunk breaks
the stream's continuity, so after any refusal the publisher must start a new stream
(an EBML header: a restarted MediaRecorder); nothing refused reaches a site.

Events (client → hub), acks `{ok, ...}` or `{ok: false, error: {code, message}}`:
    media.publish   {lecture_id, track: "av"|"audio", seq, data: <bytes>} → {ok, seq}
    media.end       {lecture_id, track, seq?}  the recorder stopped after chunk `seq`
    media.subscribe {lecture_id, track}        → {ok, track, live, mime, seq, forced_audio_only}
    media.unsubscribe {}
    media.ping      {t}                        → {ok, t}   (round-trip time)
Events (hub → client): `media.data {track, seq, data, init?, mime?, key?}` (ack it),
`media.ended {lecture_id}`.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import sqlalchemy as sa
from flask import Flask, current_app, request
from flask_babel import gettext as _

from .. import realtime
from ..accounts.auth import kiosk_from_token, socket_user
from ..core.errors import BadInput, Conflict, DomainError, Forbidden, NotFound
from ..core.sockets import Identity, SafeNamespace, require_dict, require_int
from ..extensions import db, socketio
from .bus import TRACKS, Message, Relay, make_bus
from .hls import HlsEncoder, hls_root
from .models import Lecture, LectureStatus, SiteStatus
from .recording import RecordingWriter, finish_recording, recordings_dir, start_recording
from .webm import EBML_MAGIC, Frame, LiveStream, Piece, WebMError, validate_first_chunk

log = logging.getLogger(__name__)

NAMESPACE = "/media"
PUBLISHER_ROLES = ("rapporteur", "organizer")

#: settings (each can come from the environment as DIEMCAU_<NAME>).
DEFAULTS: dict[str, Any] = {
    # the largest chunk a publisher may send (Engine.IO itself closes the socket above
    # MAX_SOCKET_MESSAGE * 16, 1 MB by default, so keep this below that).
    "MEDIA_MAX_CHUNK": 512 * 1024,
    "MEDIA_TICK_S": 0.05,
    # per-site queue: must exceed one keyframe interval of the stream (1-2 s ≈ 400 KB).
    "MEDIA_SITE_BUDGET": 2 * 1024 * 1024,
    "MEDIA_SITE_MAX_LATENCY_S": 3.0,
    "MEDIA_SITE_MAX_IN_FLIGHT": 8,
    # a site that takes nothing for this long is disconnected (it reconnects and rejoins).
    "MEDIA_DEAD_AFTER_S": 20.0,
    "MEDIA_MAX_GOP": 8 * 1024 * 1024,
    # how long a chunk waits for the one sent before it (handlers may run out of order).
    "MEDIA_ORDER_WAIT_S": 3.0,
    "MEDIA_STATUS_CHECK_S": 2.0,
    "MEDIA_BUS_PREFIX": "diemcau:media",
    "RECORDING_LOCK_WAIT_S": 60.0,
    "HLS_ENABLED": False,
    "HLS_SEGMENT_S": 2,
    "HLS_WINDOW": 6,
    "FFMPEG": "ffmpeg",
    "FFPROBE": "ffprobe",
}

CODECS = {"V_VP8": "vp8", "V_VP9": "vp9", "V_AV1": "av01.0.08M.08", "A_OPUS": "opus", "A_VORBIS": "vorbis"}


def _setting(name: str, default: Any) -> Any:
    raw = os.environ.get(f"DIEMCAU_{name}", os.environ.get(name))
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return type(default)(raw)


def mime_of(tracks: dict) -> str:
    """The MSE type of a stream, from its Tracks: e.g. 'video/webm; codecs="vp8,opus"'."""
    kinds = sorted(tracks.values(), key=lambda t: t.type or 9)
    codecs = [CODECS.get(t.codec or "", (t.codec or "").lower()) for t in kinds]
    video = any(t.type == 1 for t in kinds)
    return f'{"video" if video else "audio"}/webm; codecs="{",".join(c for c in codecs if c)}"'


@dataclass
class Publisher:
    """One socket's stream of one track: the publisher session the bus numbers."""

    sid: str
    lecture_id: int
    track: str
    user_id: int
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    live: Optional[LiveStream] = None
    mime: str = ""
    next_seq: Optional[int] = None
    bus_seq: int = 0
    closed: Optional[DomainError] = None
    recording_file: Optional[str] = None
    writer: Optional[RecordingWriter] = None
    hls: Optional[HlsEncoder] = None
    chunks: int = 0
    bytes: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def key(self) -> tuple[int, str]:
        return self.lecture_id, self.track


class MediaHub:
    """This process's side of the live media: its publishers and its relay."""

    def __init__(self, app: Flask) -> None:
        cfg = app.config
        self.app = app
        self.bus = make_bus(cfg.get("REDIS_URL"), cfg["MEDIA_BUS_PREFIX"])
        self.relay = Relay(
            self._emit, self._disconnect,
            queue_options={"budget_bytes": cfg["MEDIA_SITE_BUDGET"], "max_latency": cfg["MEDIA_SITE_MAX_LATENCY_S"],
                           "max_in_flight": cfg["MEDIA_SITE_MAX_IN_FLIGHT"]},
            max_gop=cfg["MEDIA_MAX_GOP"], tick=cfg["MEDIA_TICK_S"], dead_after=cfg["MEDIA_DEAD_AFTER_S"],
        )
        self.relay.on_control.append(self._on_control)
        self.publishers: dict[tuple[str, str], Publisher] = {}
        self.finished: set[int] = set()  # lectures known to have ended (final, so safe to cache)
        self.recorded: set[int] = set()  # lectures this process wrote to, until they are finished
        self._lock = threading.Lock()
        self._started = False

    # lifecycle ---------------------------------------------------------------------
    def start(self, app: Any = None) -> None:
        """Start the bus listener, the relay's pump and the status check (once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self.bus.start(self.relay.deliver, socketio.start_background_task)
        self.relay.start(socketio.start_background_task, socketio.server.eio.create_event)
        socketio.start_background_task(self._check_loop)

    @staticmethod
    def _emit(event: str, data: Any, sid: str, callback: Any) -> None:
        # ignore_queue: the site is on this process; never copy media through Redis.
        socketio.server.emit(event, data, to=sid, namespace=NAMESPACE, callback=callback, ignore_queue=True)

    @staticmethod
    def _disconnect(sid: str) -> None:
        socketio.server.disconnect(sid, namespace=NAMESPACE, ignore_queue=True)

    # publishing --------------------------------------------------------------------
    def publisher(self, sid: str, track: str) -> Optional[Publisher]:
        return self.publishers.get((sid, track))

    def open_publisher(self, sid: str, track: str, lecture: Lecture, user_id: int) -> Publisher:
        """A new publisher session for this socket and track (the caller commits)."""
        old = self.publishers.pop((sid, track), None)
        if old is not None:
            self.end_publisher(old)
        pub = Publisher(sid, lecture.id, track, user_id)
        if track == "av":
            pub.recording_file = start_recording(lecture)
        self.publishers[(sid, track)] = pub
        return pub

    def publish(self, pub: Publisher, seq: int, data: bytes) -> dict[str, Any]:
        """Take one chunk in its order: parse, record, put on the bus. Returns the ack."""
        with pub.cond:
            in_order = self._wait_turn(pub, seq, data[:4] == EBML_MAGIC)
            pub.next_seq = seq + 1
            pub.cond.notify_all()
            try:
                if not in_order:
                    raise Conflict("media.out_of_order", _("Thiếu đoạn dữ liệu trước đó; hãy bắt đầu lại luồng."))
                self._accept(pub, data)
            except (DomainError, WebMError) as err:
                pub.live = None  # continuity is broken: the next chunk must start a new stream
                return err.to_ack()
            finally:
                if pub.closed is not None:  # retired while this chunk was on its way
                    self._close_files(pub)
            return {"ok": True, "seq": seq}

    def _wait_turn(self, pub: Publisher, seq: int, new_stream: bool) -> bool:
        """Wait for the chunks before this one (socket handlers may run out of order).
        A chunk that starts a new stream depends on none: it never waits."""
        if pub.next_seq is None or (new_stream and seq >= pub.next_seq):
            return True
        deadline = time.monotonic() + self.app.config["MEDIA_ORDER_WAIT_S"]
        while seq != pub.next_seq:
            left = deadline - time.monotonic()
            if left <= 0 or (pub.next_seq is not None and seq < pub.next_seq):
                return False
            pub.cond.wait(left)
        return True

    def _accept(self, pub: Publisher, data: bytes) -> None:
        if pub.closed is not None:
            raise pub.closed
        if len(data) > self.app.config["MEDIA_MAX_CHUNK"]:
            raise BadInput("media.too_large", _("Đoạn dữ liệu quá lớn (tối đa %(n)s KB).",
                                                n=self.app.config["MEDIA_MAX_CHUNK"] // 1024))
        if pub.live is not None and data[:4] == EBML_MAGIC:
            try:  # the recorder restarted (a resync): its old stream may end mid-cluster
                validate_first_chunk(data)
                pub.live = None
            except WebMError:
                pass  # block bytes that merely look like a header
        fresh = pub.live is None
        if fresh:
            validate_first_chunk(data)
            pub.live = LiveStream(max_gop=self.app.config["MEDIA_MAX_GOP"])
        feed = pub.live.feed(data)
        if fresh:
            self._announce(pub)
        if any(p.init for p in feed.pieces):
            pub.mime = mime_of(pub.live.parser.tracks)
        if pub.track == "av":
            media_ms = max((e.timecode_ms for e in feed.events if isinstance(e, Frame)), default=None)
            self._record(pub, feed.pieces, media_ms)
        self._broadcast(pub, feed.pieces)
        pub.chunks += 1
        pub.bytes += len(data)

    def _announce(self, pub: Publisher) -> None:
        """A new stream for this lecture's track: older publishers (a stale socket of the same
        rapporteur, in any process) step aside."""
        self._supersede(pub.key, pub.id)
        self._bus(Message("start", pub.lecture_id, pub.track, pub.id, sent_at=time.time()))

    def _record(self, pub: Publisher, pieces: list[Piece], media_ms: Optional[int]) -> None:
        if pub.writer is None:
            pub.writer = RecordingWriter.open(recordings_dir() / pub.recording_file, wait_s=3.0)
            if pub.writer is None:
                raise Conflict("recording.busy", _("Bản ghi của buổi giảng đang bận, vui lòng thử lại."))
            self.recorded.add(pub.lecture_id)
            if self.app.config["HLS_ENABLED"] and pub.hls is None:
                pub.hls = HlsEncoder(hls_root() / str(pub.lecture_id), spawn=socketio.start_background_task,
                                     make_queue=socketio.server.eio.create_queue, ffmpeg=self.app.config["FFMPEG"],
                                     segment_s=self.app.config["HLS_SEGMENT_S"], window=self.app.config["HLS_WINDOW"])
        try:
            pub.writer.append(pieces, media_ms=media_ms, timecode_scale=pub.live.parser.timecode_scale)
        except OSError as err:
            log.error("recording of lecture %s failed: %s", pub.lecture_id, err)
            raise DomainError("recording.failed", _("Không ghi được bản ghi buổi giảng.")) from None
        if pub.hls is not None:
            pub.hls.feed(pieces, pub.live.init_segment)

    def _broadcast(self, pub: Publisher, pieces: list[Piece]) -> None:
        for piece in pieces:
            pub.bus_seq += 1
            key = piece.cluster_start and piece.keyframe
            self._bus(Message(
                "piece", pub.lecture_id, pub.track, pub.id, pub.bus_seq, time.time(), piece.data,
                piece.init, piece.cluster_start, piece.keyframe, pub.mime if (piece.init or key) else "",
                (pub.live.init_segment or b"") if key else b"",
            ))

    def _bus(self, msg: Message) -> None:
        try:
            self.bus.publish(msg)
        except Exception as err:  # recorded already; the relays resync at the next keyframe
            log.warning("media bus: publish failed (%s)", err)

    def end_publisher(self, pub: Publisher) -> None:
        """The publisher stopped (or left): forward its last complete cluster, close its files."""
        with pub.cond:
            if pub.live is not None and pub.closed is None:
                try:
                    feed = pub.live.end()
                    if pub.track == "av" and pub.writer is not None:
                        pub.writer.append(feed.pieces, media_ms=None, timecode_scale=pub.live.parser.timecode_scale)
                    self._broadcast(pub, feed.pieces)
                except (WebMError, OSError):
                    pass
                self._bus(Message("end", pub.lecture_id, pub.track, pub.id, sent_at=time.time()))
            pub.live = None
            self._close_files(pub)

    def _close_files(self, pub: Publisher) -> None:
        if pub.writer is not None:
            self._save_progress({pub.lecture_id: pub.writer})
            pub.writer.close()
            pub.writer = None
        if pub.hls is not None:
            pub.hls.close(final=pub.lecture_id in self.finished)
            pub.hls = None

    def _retire(self, pub: Publisher, why: DomainError) -> None:
        """Refuse the publisher's next chunks and release its files, now if it is idle,
        else at the end of the chunk it is taking (never wait on it here)."""
        pub.closed = why
        if pub.cond.acquire(blocking=False):
            try:
                self._close_files(pub)
            finally:
                pub.cond.release()

    def end_socket(self, sid: str) -> None:
        for track in TRACKS:
            pub = self.publishers.pop((sid, track), None)
            if pub is not None:
                self.end_publisher(pub)
                if pub.lecture_id in self.finished:
                    continue
                self._finish_if_ended(pub.lecture_id)

    # the end of a lecture ----------------------------------------------------------
    def finish(self, lecture_id: int) -> None:
        """Tell every process the lecture is over: close its publishers and writers, drop its sites."""
        self._close_lecture(lecture_id)
        self.relay.finish_lecture(lecture_id)
        self._bus(Message("finish", lecture_id))

    def _on_control(self, msg: Message) -> None:
        # may run in the bus listener's task: closing a writer stores its progress.
        with self.app.app_context():
            if msg.kind == "start":
                self._supersede(msg.key, msg.publisher)
            elif msg.kind == "finish":
                self._close_lecture(msg.lecture_id)

    def _supersede(self, key: tuple[int, str], publisher: str) -> None:
        for pub in list(self.publishers.values()):
            if pub.key == key and pub.id != publisher and pub.closed is None:
                self._retire(pub, Conflict("media.superseded", _("Một phiên phát khác đã thay thế phiên này.")))

    def _close_lecture(self, lecture_id: int) -> None:
        self.finished.add(lecture_id)
        self.recorded.discard(lecture_id)
        for pub in list(self.publishers.values()):
            if pub.lecture_id == lecture_id and pub.closed is None:
                self._retire(pub, Conflict("lecture.not_live", _("Buổi giảng không đang phát.")))

    def _finish_if_ended(self, lecture_id: int) -> None:
        lecture = db.session.get(Lecture, lecture_id)
        if lecture is not None and lecture.status == LectureStatus.ended:
            finish_recording(lecture)
        db.session.rollback()

    # housekeeping ------------------------------------------------------------------
    def _check_loop(self) -> None:
        """Every few seconds: store the recordings' progress and notice lectures that ended
        elsewhere (an operation in another process, the database)."""
        while True:
            socketio.sleep(self.app.config["MEDIA_STATUS_CHECK_S"])
            try:
                with self.app.app_context():
                    self._check()
            except Exception:
                log.exception("media status check failed")

    def _check(self) -> None:
        open_pubs = [p for p in self.publishers.values() if p.closed is None]
        ids = {p.lecture_id for p in open_pubs} | self.recorded
        if not ids:
            return
        self._save_progress({p.lecture_id: p.writer for p in open_pubs if p.writer is not None})
        ended = db.session.scalars(sa.select(Lecture).where(Lecture.id.in_(ids), Lecture.status != LectureStatus.live))
        for lecture in list(ended):
            finish_recording(lecture)
        db.session.rollback()

    def _save_progress(self, writers: dict[int, RecordingWriter]) -> None:
        if not writers:
            return
        try:
            for lecture_id, writer in writers.items():
                db.session.execute(sa.update(Lecture).where(Lecture.id == lecture_id)
                                   .values(recording_bytes=writer.bytes, duration_ms=writer.end_ms))
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("could not store recording progress")

    # reports -----------------------------------------------------------------------
    def watchers(self, lecture_id: int) -> list[dict[str, Any]]:
        return self.relay.watchers(lecture_id)


def media_hub(app: Optional[Flask] = None) -> MediaHub:
    app = app or current_app._get_current_object()
    return app.extensions["webcast_media"]


def watchers(lecture_id: int) -> list[dict[str, Any]]:
    """The sites this hub process sends a lecture to, with their queue state."""
    return media_hub().watchers(lecture_id)


# the namespace ----------------------------------------------------------------------

def _track(data: dict, default: Optional[str] = None) -> str:
    track = data.get("track", default)
    if track not in TRACKS:
        raise BadInput("media.bad_track", _("Luồng phải là “av” hoặc “audio”."))
    return track


class MediaNamespace(SafeNamespace):
    events = ("media.publish", "media.end", "media.subscribe", "media.unsubscribe", "media.ping")

    def trigger_event(self, event: str, sid: str, *args: Any) -> Any:
        if event != "media.publish":
            return super().trigger_event(event, sid, *args)
        # binary payload: the generic JSON size check cannot measure it; the handler checks
        # the chunk against MEDIA_MAX_CHUNK (Engine.IO has already capped the message).
        if len(args) > 1:
            return BadInput("payload.malformed", _("Dữ liệu gửi lên không hợp lệ.")).to_ack()
        handler = self._guarded(event, self.on_media_publish)
        return self.socketio._handle_event(handler, event, self.namespace, sid, *args)

    def on_connect(self, auth=None):
        if isinstance(auth, dict) and auth.get("kiosk"):
            bp = kiosk_from_token(auth["kiosk"])
            self.set_identity(Identity(0, "kiosk", bp.district_id, bp.id))
        else:
            user = socket_user(auth)
            self.set_identity(Identity(user.id, user.role.value, user.district_id, user.bridge_point_id))
        db.session.rollback()
        return True

    def on_disconnect(self, reason=None):
        hub = media_hub()
        hub.relay.unsubscribe(request.sid)
        hub.end_socket(request.sid)

    # publishing ------------------------------------------------------------------
    def on_media_publish(self, data=None):
        data = require_dict(data, "lecture_id", "track", "seq", "data")
        lecture_id, seq = require_int(data, "lecture_id"), require_int(data, "seq")
        track = _track(data)
        chunk = data["data"]
        if not isinstance(chunk, (bytes, bytearray)) or seq < 0:
            raise BadInput("payload.malformed", _("Đoạn dữ liệu phải là nhị phân, kèm số thứ tự không âm."))
        hub = media_hub()
        pub = hub.publisher(request.sid, track)
        if pub is None or pub.lecture_id != lecture_id:
            pub = self._open(hub, lecture_id, track)
        return hub.publish(pub, seq, bytes(chunk))

    def _open(self, hub: MediaHub, lecture_id: int, track: str) -> Publisher:
        ident = self.identity()
        if ident.role not in PUBLISHER_ROLES:
            raise Forbidden("media.not_rapporteur", _("Chỉ báo cáo viên của buổi giảng mới được phát."))
        lecture = db.session.get(Lecture, lecture_id)
        if lecture is None:
            raise NotFound("lecture.unknown", _("Buổi giảng không tồn tại."))
        if ident.role == "rapporteur" and lecture.rapporteur_id != ident.user_id:
            raise Forbidden("media.not_rapporteur", _("Chỉ báo cáo viên của buổi giảng mới được phát."))
        if lecture.status != LectureStatus.live or lecture.id in hub.finished:
            raise Conflict("lecture.not_live", _("Buổi giảng không đang phát."))
        hub.start()
        pub = hub.open_publisher(request.sid, track, lecture, ident.user_id)
        db.session.commit()
        return pub

    def on_media_end(self, data=None):
        data = require_dict(data, "lecture_id")
        track = _track(data, "av")
        hub = media_hub()
        last = require_int(data, "seq", allow_none=True)
        pub = hub.publisher(request.sid, track)
        if pub is None or pub.lecture_id != require_int(data, "lecture_id"):
            return {"ok": True}
        if last is not None and pub.next_seq is not None and pub.next_seq > last + 1:
            return {"ok": True, "ignored": True}  # a newer stream already flows on this socket
        hub.publishers.pop((request.sid, track), None)
        hub.end_publisher(pub)
        return {"ok": True}

    # watching --------------------------------------------------------------------
    def on_media_subscribe(self, data=None):
        data = require_dict(data, "lecture_id")
        lecture_id = require_int(data, "lecture_id")
        track = _track(data, "av")
        ident = self.identity()
        if ident.role == "learner":
            raise Forbidden("media.not_viewer", _("Học viên theo dõi buổi giảng tại điểm cầu hoặc qua trang phát lại."))
        lecture = db.session.get(Lecture, lecture_id)
        if lecture is None:
            raise NotFound("lecture.unknown", _("Buổi giảng không tồn tại."))
        if lecture.status == LectureStatus.ended:
            raise Conflict("lecture.not_live", _("Buổi giảng đã kết thúc."))
        forced = False
        if ident.role == "kiosk" and track == "av":
            status = db.session.get(SiteStatus, ident.bridge_point_id)
            forced = bool(status and status.forced_audio_only)
            track = "audio" if forced else track
        db.session.rollback()
        hub = media_hub()
        hub.start()
        label = ident.bridge_point_id if ident.role == "kiosk" else f"user:{ident.user_id}"
        info = hub.relay.subscribe(request.sid, lecture_id, track, label)
        return {"ok": True, "lecture_id": lecture_id, "track": track, "forced_audio_only": forced, **info}

    def on_media_unsubscribe(self, data=None):
        media_hub().relay.unsubscribe(request.sid)
        return {"ok": True}

    def on_media_ping(self, data=None):
        t = data.get("t") if isinstance(data, dict) else None
        return {"ok": True, "t": t if isinstance(t, (int, float)) else None, "server_ms": int(time.time() * 1000)}


def init_app(app: Flask) -> None:
    for name, default in DEFAULTS.items():
        app.config.setdefault(name, _setting(name, default))
    from . import hls, replay

    app.register_blueprint(replay.bp)
    app.register_blueprint(hls.bp)
    app.extensions["webcast_media"] = MediaHub(app)
    realtime.on_serve(app, lambda app: media_hub(app).start())
