"""Socket.IO plumbing shared by every namespace.

A handler returns a dict that becomes the ack. `SafeNamespace` turns a DomainError into
`{"ok": false, "error": {"code", "message"}}`, refuses unknown events and oversize or
malformed payloads, and never lets an exception kill the connection. Identity is set
once on connect and kept in the socket's own server-side session (never Flask's
session): handlers do not touch the database to learn who is speaking.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Optional

import socketio
from flask import current_app, g, request
from flask_socketio import Namespace

from .. import extensions, realtime
from .errors import BadInput, DomainError, Unauthenticated
from flask_babel import gettext as _

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    user_id: int
    role: str
    district_id: Optional[int]
    bridge_point_id: Optional[int]


def payload_size(data: Any) -> int:
    try:
        return len(json.dumps(data, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return 1 << 30


def require_dict(data: Any, *required: str) -> dict:
    if not isinstance(data, dict):
        raise BadInput("payload.malformed", _("Dữ liệu gửi lên phải là một đối tượng JSON."))
    missing = [k for k in required if k not in data]
    if missing:
        raise BadInput("payload.missing_field", _("Thiếu trường dữ liệu: ") + ", ".join(missing))
    return data


def require_int(data: dict, key: str, *, allow_none: bool = False) -> Optional[int]:
    value = data.get(key)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput("payload.bad_field", _("Trường “%(key)s” phải là số nguyên.", key=key), field=key)
    if not -(2**62) < value < 2**62:
        raise BadInput("payload.bad_field", _("Trường “%(key)s” vượt quá giới hạn.", key=key), field=key)
    return value


class SafeNamespace(Namespace):
    #: events a client may send here; anything else is refused with "event.unknown".
    events: tuple[str, ...] = ()
    #: of those, the hot ones that run with an application context only: no request
    #: context, no URL matching, no cookie session (Flask-SocketIO pushes all of that for
    #: every event, a quarter of the hub's CPU under exam load). Their handlers must not
    #: use `flask.request` or `flask.session`; `self.sid()` says who is speaking.
    light_events: tuple[str, ...] = ()
    #: the biggest payload an event here may carry, in bytes.
    max_payload = 4096

    def trigger_event(self, event: str, sid: str, *args: Any) -> Any:
        realtime.note_activity()
        if event in ("connect", "disconnect"):
            handler = getattr(self, "on_" + event, None)
            if handler is None:
                return None
            return self.socketio._handle_event(self._guarded(event, handler), event, self.namespace, sid, *args)
        if event not in self.events:
            return DomainError("event.unknown", _("Sự kiện không được hỗ trợ.")).to_ack()
        if len(args) > 1 or any(payload_size(a) > self.max_payload for a in args):
            return BadInput("payload.too_large", _("Dữ liệu gửi lên quá lớn.")).to_ack()
        handler = getattr(self, "on_" + event.replace(".", "_"))
        if event in self.light_events:
            return self._handle_light(self._guarded(event, handler), sid, *args)
        return self.socketio._handle_event(self._guarded(event, handler), event, self.namespace, sid, *args)

    def _handle_light(self, run: Any, sid: str, *args: Any) -> Any:
        environ = self.socketio.server.get_environ(sid, namespace=self.namespace)
        if not environ:  # the socket is gone
            return None
        with environ["flask.app"].app_context():
            g.socket_sid = sid
            return run(*args)

    def _guarded(self, event: str, fn: Any) -> Any:
        def run(*args: Any) -> Any:
            try:
                return fn(*args)
            except DomainError as err:
                extensions.db.session.rollback()
                if event == "connect":
                    from flask_socketio import ConnectionRefusedError

                    raise ConnectionRefusedError(err.message, err.to_ack()["error"]) from None
                return err.to_ack()
            except Exception:  # the connection must outlive any bug in one handler
                extensions.db.session.rollback()
                if event in ("connect", "disconnect"):
                    raise
                log.exception("socket event %s failed", event)
                return DomainError("server.error", _("Có lỗi ở máy chủ, vui lòng thử lại.")).to_ack()

        return run

    # identity ---------------------------------------------------------------
    @staticmethod
    def sid() -> str:
        """The socket this event came from, in light and full handlers alike."""
        return g.get("socket_sid") or request.sid

    def set_identity(self, ident: Identity) -> None:
        with extensions.socketio.server.session(self.sid(), namespace=self.namespace) as s:
            s["ident"] = ident

    def identity(self) -> Identity:
        s = extensions.socketio.server.get_session(self.sid(), namespace=self.namespace)
        if not s or "ident" not in s:
            raise Unauthenticated()
        return s["ident"]

    def session_get(self, key: str, default: Any = None) -> Any:
        s = extensions.socketio.server.get_session(self.sid(), namespace=self.namespace)
        return (s or {}).get(key, default)

    def session_set(self, key: str, value: Any) -> None:
        with extensions.socketio.server.session(self.sid(), namespace=self.namespace) as s:
            s[key] = value

    @staticmethod
    def config(key: str) -> Any:
        return current_app.config[key]


# Socket.IO's room bookkeeping -----------------------------------------------------------

class RoomIndex:
    """For python-socketio's client managers: the rooms each socket is in, kept beside
    the manager's `rooms`, so that a disconnect leaves its own rooms.

    python-socketio finds a leaving socket's rooms by copying and scanning every room of
    the namespace. In an exam every learner has a room of its own (`attempt:<id>`) beside
    Socket.IO's own room per socket: at 10,000 learners that is 20,000 rooms and 1.7 ms
    of the loop per disconnect (0.005 ms with the index; `bench/disconnect_cost.py`), so
    a bridge point's 164 learners losing their link stalled every socket of the hub for
    ~0.3 s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (namespace, sid) → its rooms, in the order entered (a dict as an ordered set).
        self.rooms_of: dict[tuple[str, str], dict] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.rooms_of.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        held = self.rooms_of.get((namespace, sid))
        if held is not None:
            held.pop(room, None)
            if not held:
                del self.rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio's, with the scan of every room replaced by the socket's own.
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list:
        return [room for room in self.rooms_of.get((namespace, sid), ()) if room is not None]


class IndexedManager(RoomIndex, socketio.Manager):
    """The in-process manager (one hub process), with the room index."""


class IndexedRedisManager(RoomIndex, socketio.RedisManager):
    """Redis as the message queue (several hub processes), with the room index."""


def client_manager(redis_url: Optional[str]) -> Any:
    """The hub's Socket.IO client manager. Flask-SocketIO would make the same one from
    `message_queue`, on the same channel, without the index."""
    if redis_url:
        return IndexedRedisManager(redis_url, channel="flask-socketio")
    return IndexedManager()
