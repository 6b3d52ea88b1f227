"""Socket.IO `/live`: the kiosks of the bridge points, the stage, the control room.

Who connects: a kiosk with `auth: {kiosk: <token>}` (see accounts.auth.kiosk_token), or a
logged-in person (the login cookie or `auth: {token}`). Thin handlers: parse → check who
→ operation → commit → push → ack. Rooms and pushes are listed in `operations`.
"""
from __future__ import annotations

import math
from typing import Any

from flask_babel import gettext as _
from flask_socketio import join_room, leave_room

from ..accounts.auth import kiosk_from_token, socket_user
from ..accounts.models import Role
from ..core.errors import BadInput, Forbidden
from ..core.sockets import Identity, SafeNamespace, require_dict, require_int
from ..core.timeutil import now_utc, to_ms
from ..extensions import db
from ..places.models import BridgePoint
from . import health, operations, queries
from .models import Lecture

KIOSK = "kiosk"
HEALTH_NUMBERS = ("buffer_s", "bitrate_kbps", "dropped", "received", "rtt_ms")


class LiveNamespace(SafeNamespace):
    events = (
        # kiosks
        "kiosk.sync", "site.health", "site.audio_only", "site.question",
        # anyone logged in: follow a lecture's slides
        "lecture.watch",
        # the lecture's rapporteur or a province organizer
        "stage.join", "stage.sites", "lecture.start", "lecture.stop", "slide.flip", "question.mark",
        # organizers
        "control.watch", "control.grid", "control.announce", "control.audio_only",
    )
    #: a 1,000-character question typed with combining accents (NFD) is up to ~6 kB.
    max_payload = 8 * 1024

    def on_connect(self, auth=None):
        if isinstance(auth, dict) and auth.get("kiosk"):
            site = kiosk_from_token(auth["kiosk"])
            self.set_identity(Identity(0, KIOSK, site.district_id, site.id))
            join_room("all")
            join_room(f"district:{site.district_id}")
            join_room(f"bp:{site.id}")
            health.connected(site.id)
        else:
            user = socket_user(auth)
            self.set_identity(Identity(user.id, user.role.value, user.district_id, user.bridge_point_id))
        db.session.rollback()
        return True

    def on_disconnect(self, reason=None):
        ident: Identity | None = self.session_get("ident")
        if ident is not None and ident.role == KIOSK:
            health.disconnected(ident.bridge_point_id)

    # kiosks ---------------------------------------------------------------------------
    def on_kiosk_sync(self, data=None):
        """Join the live lecture's room, then say what to show (late joiners start here)."""
        ident = self._kiosk()
        lecture = queries.current_lecture()
        lecture_id = lecture.id if lecture else None
        previous = self.session_get("lecture_id")
        if previous and previous != lecture_id:
            leave_room(f"lecture:{previous}")
        if lecture_id:
            join_room(f"lecture:{lecture_id}")
        self.session_set("lecture_id", lecture_id)
        health.watching(ident.bridge_point_id, lecture_id)
        # read again after joining: a flip committed in between is either in this state
        # or pushed to the room, never lost in the gap.
        db.session.rollback()
        lecture = db.session.get(Lecture, lecture_id) if lecture_id else None
        state = queries.kiosk_state(db.session.get(BridgePoint, ident.bridge_point_id), lecture, now_utc())
        db.session.rollback()
        return {"ok": True, **state}

    def on_site_health(self, data):
        ident = self._kiosk()
        data = require_dict(data)
        report: dict[str, Any] = {}
        for key in HEALTH_NUMBERS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise BadInput("payload.bad_field", _("Trường “%(key)s” phải là số không âm.", key=key), field=key)
            report[key] = round(float(value), 2)
        state = data.get("state", "")
        if not isinstance(state, str) or len(state) > 20:
            raise BadInput("payload.bad_field", _("Trường “%(key)s” không hợp lệ.", key="state"), field="state")
        report["state"] = state
        track = data.get("track")
        if track in ("av", "audio"):
            report["track"] = track
        report["at_ms"] = to_ms(now_utc())
        health.report(ident.bridge_point_id, report)
        return {"ok": True, "server_ms": report["at_ms"]}

    def on_site_audio_only(self, data):
        ident = self._kiosk()
        on = require_dict(data, "on").get("on")
        if not isinstance(on, bool):
            raise BadInput("payload.bad_field", _("Trường “on” phải là true/false."), field="on")
        status = operations.set_site_mode(ident.bridge_point_id, own=on)
        db.session.commit()
        return {"ok": True, **operations.push_site_mode(ident.bridge_point_id, status)}

    def on_site_question(self, data):
        ident = self.identity()
        if ident.role != KIOSK:
            raise Forbidden("site.kiosk_only", _("Chỉ máy của điểm cầu mới gửi được câu hỏi."))
        data = require_dict(data, "lecture_id", "kind")
        item, created = operations.ask_question(require_int(data, "lecture_id"), ident.bridge_point_id,
                                                data.get("kind"), data.get("text"))
        db.session.commit()
        payload = operations.push_question(item, "question.new") if created else queries.question_payload(item)
        return {"ok": True, "created": created, "question": payload}

    # following a lecture --------------------------------------------------------------
    def on_lecture_watch(self, data):
        ident = self.identity()
        if ident.role == KIOSK:
            return self.on_kiosk_sync(data)
        lecture = queries.lecture_or_refuse(require_int(require_dict(data, "lecture_id"), "lecture_id"))
        join_room(f"lecture:{lecture.id}")
        db.session.rollback()
        lecture = db.session.get(Lecture, lecture.id)
        out = {"ok": True, "lecture": queries.lecture_payload(lecture), "slide": queries.slide_payload(lecture)}
        db.session.rollback()
        return out

    # the stage ------------------------------------------------------------------------
    def on_stage_join(self, data):
        lecture = self._run(data)
        join_room(f"lecture:{lecture.id}")
        join_room(f"stage:{lecture.id}")
        lecture_id = lecture.id
        db.session.rollback()
        lecture = db.session.get(Lecture, lecture_id)
        out = {
            "ok": True,
            "lecture": queries.lecture_payload(lecture),
            "slide": queries.slide_payload(lecture),
            "decks": queries.decks_of(lecture_id),
            "questions": queries.transcript(lecture_id),
            "sites": queries.lecture_sites(lecture_id, now_utc(), operations.setting("WEBCAST_ONLINE_SECONDS")),
        }
        db.session.rollback()
        return out

    def on_stage_sites(self, data):
        lecture = self._run(data)
        out = queries.lecture_sites(lecture.id, now_utc(), operations.setting("WEBCAST_ONLINE_SECONDS"))
        db.session.rollback()
        return {"ok": True, **out}

    def on_lecture_start(self, data):
        lecture = self._run(data)
        operations.start_lecture(lecture)
        db.session.commit()
        operations.push_lecture_state(lecture)
        return {"ok": True, "lecture": queries.lecture_payload(lecture)}

    def on_lecture_stop(self, data):
        lecture = self._run(data)
        operations.end_lecture(lecture)
        db.session.commit()
        operations.push_lecture_state(lecture)
        return {"ok": True, "lecture": queries.lecture_payload(lecture)}

    def on_slide_flip(self, data):
        data = require_dict(data, "lecture_id", "page")
        lecture = self._run(data)
        page = require_int(data, "page")
        deck_id = require_int(data, "deck_id", allow_none=True)
        operations.flip_slide(lecture, page, deck_id)
        db.session.commit()
        return {"ok": True, "slide": operations.push_slide(lecture)}

    def on_question_mark(self, data):
        data = require_dict(data, "id", "status")
        item = operations.question_or_refuse(require_int(data, "id"))
        operations.require_runner(self.identity(), db.session.get(Lecture, item.lecture_id))
        operations.mark_question(item, data.get("status"))
        db.session.commit()
        return {"ok": True, "question": operations.push_question(item, "question.changed")}

    # the control room -----------------------------------------------------------------
    def on_control_watch(self, data=None):
        self._organizer()
        join_room("control")
        return self.on_control_grid(data)

    def on_control_grid(self, data=None):
        ident = self._organizer()
        district_id = require_int(data, "district_id", allow_none=True) if isinstance(data, dict) else None
        grid = queries.site_grid(ident, district_id, now_utc(), operations.setting("WEBCAST_ONLINE_SECONDS"),
                                 operations.setting("WEBCAST_OFFLINE_ALERT_SECONDS"))
        db.session.rollback()
        return {"ok": True, **grid}

    def on_control_announce(self, data):
        ident = self._organizer()
        data = require_dict(data, "target", "text")
        target_id = require_int(data, "id", allow_none=True)
        item, room = operations.announce(ident, data.get("target"), target_id, data.get("text"))
        db.session.commit()
        return {"ok": True, "announcement": operations.push_announcement(item, room)}

    def on_control_audio_only(self, data):
        ident = self._organizer()
        data = require_dict(data, "bridge_point_id", "on")
        site = operations.site_in_scope(ident, require_int(data, "bridge_point_id"))
        on = data.get("on")
        if not isinstance(on, bool):
            raise BadInput("payload.bad_field", _("Trường “on” phải là true/false."), field="on")
        status = operations.set_site_mode(site.id, forced=on)
        db.session.commit()
        return {"ok": True, **operations.push_site_mode(site.id, status)}

    # who may ---------------------------------------------------------------------------
    def _kiosk(self) -> Identity:
        ident = self.identity()
        if ident.role != KIOSK:
            raise Forbidden("site.kiosk_only", _("Chỉ máy của điểm cầu mới làm được việc này."))
        return ident

    def _organizer(self) -> Identity:
        ident = self.identity()
        if ident.role != Role.organizer.value:
            raise Forbidden("control.organizers_only", _("Chỉ Ban Tổ chức mới dùng được phòng điều hành."))
        return ident

    def _run(self, data: Any) -> Lecture:
        """The lecture named in `data`, if the speaker runs it."""
        ident = self.identity()
        lecture = queries.lecture_or_refuse(require_int(require_dict(data, "lecture_id"), "lecture_id"))
        operations.require_runner(ident, lecture)
        return lecture
