"""Socket.IO `/proctor`: analysed snapshots and flags pushed to proctors; "take one now".

Who connects: a proctor or an organizer (the login cookie or `auth: {token}`), who joins
`proctors:all` (province-wide) or `proctors:district:<id>`; or a bridge point's kiosk
with `auth: {kiosk: <token>}`, which joins `kiosk:<bridge point id>` to hear
`snapshot.request`. Pushes from the hub (snapshots.py): `snapshot.analysed`,
`flag.raised`, and `snapshot.request` to a kiosk.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_socketio import join_room

from ..accounts.auth import kiosk_from_token, socket_user
from ..accounts.models import Role
from ..core.errors import Forbidden, NotFound
from ..core.permissions import require_cover
from ..core.sockets import Identity, SafeNamespace, require_dict, require_int
from ..extensions import db
from ..places.models import BridgePoint
from . import snapshots

KIOSK = "kiosk"
VIEWERS = (Role.organizer, Role.proctor)


class ProctorNamespace(SafeNamespace):
    events = ("snapshot.request",)
    max_payload = 512

    def on_connect(self, auth=None):
        if isinstance(auth, dict) and auth.get("kiosk"):
            site = kiosk_from_token(auth["kiosk"])
            self.set_identity(Identity(0, KIOSK, site.district_id, site.id))
            join_room(f"kiosk:{site.id}")
        else:
            user = socket_user(auth)
            if user.role not in VIEWERS:
                raise Forbidden("proctor.viewers_only", _("Chỉ giám thị và Ban Tổ chức mới theo dõi được camera."))
            self.set_identity(Identity(user.id, user.role.value, user.district_id, user.bridge_point_id))
            join_room("proctors:all" if user.district_id is None else f"proctors:district:{user.district_id}")
        db.session.rollback()
        return True

    def on_snapshot_request(self, data):
        """A proctor asks a bridge point's camera for a snapshot now."""
        ident = self.identity()
        if ident.role == KIOSK:
            raise Forbidden("proctor.viewers_only", _("Chỉ giám thị và Ban Tổ chức mới yêu cầu chụp ảnh."))
        site = db.session.get(BridgePoint, require_int(require_dict(data, "bridge_point_id"), "bridge_point_id"))
        if site is None:
            raise NotFound("site.not_found", _("Không tìm thấy điểm cầu."))
        require_cover(_Viewer(ident), site.district_id, site.id)
        site_id = site.id
        db.session.rollback()
        return {"ok": True, **snapshots.request_snapshot(site_id, ident.user_id)}


class _Viewer:
    """What `covers` needs of a user, from the socket's identity (no database read)."""

    def __init__(self, ident: Identity):
        self.role = Role(ident.role)
        self.district_id = ident.district_id
        self.bridge_point_id = ident.bridge_point_id
