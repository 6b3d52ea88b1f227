"""Login sessions and the signed tokens that carry a login onto a socket."""
from __future__ import annotations

from typing import Any, Optional

from flask import Flask, current_app
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..core.errors import Unauthenticated
from ..extensions import db, login_manager
from .models import User
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

TOKEN_MAX_AGE = 24 * 3600


def init_app(app: Flask) -> None:
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Vui lòng đăng nhập để tiếp tục.")
    login_manager.localize_callback = str  # translated when flashed: a plain str in the session
    login_manager.session_protection = "basic"


@login_manager.user_loader
def _load_user(user_id: str) -> Optional[User]:
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="socket-login")


def socket_token(user: User) -> str:
    return _serializer().dumps({"u": user.id})


def user_from_token(token: Any) -> User:
    if not isinstance(token, str) or len(token) > 512:
        raise Unauthenticated("auth.bad_token", _("Phiên đăng nhập không hợp lệ."))
    try:
        data = _serializer().loads(token, max_age=TOKEN_MAX_AGE)
    except BadSignature:
        raise Unauthenticated("auth.bad_token", _("Phiên đăng nhập không hợp lệ hoặc đã hết hạn.")) from None
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active:
        raise Unauthenticated("auth.bad_token", _("Tài khoản không còn hoạt động."))
    return user


def socket_user(auth: Any) -> User:
    """Who opens this socket: the HTTP login's cookie, or a token in the connect auth."""
    if isinstance(auth, dict) and auth.get("token"):
        return user_from_token(auth["token"])
    if current_user.is_authenticated:
        return current_user._get_current_object()
    raise Unauthenticated()


# kiosks -------------------------------------------------------------------------
# A bridge point's kiosk (the room's PC on the projector) is not a person: it signs in
# with its bridge point's secret kiosk code and is known by a signed token naming the
# bridge point. Flask's session carries `kiosk_bp` for its HTTP pages.

def _kiosk_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="kiosk-login")


def kiosk_token(bridge_point_id: int) -> str:
    return _kiosk_serializer().dumps({"bp": bridge_point_id})


def kiosk_from_token(token: Any):
    """The bridge point a kiosk token names (valid 7 days: a kiosk stays up for a round)."""
    from ..places.models import BridgePoint

    if not isinstance(token, str) or len(token) > 512:
        raise Unauthenticated("auth.bad_token", _("Phiên của điểm cầu không hợp lệ."))
    try:
        data = _kiosk_serializer().loads(token, max_age=7 * 24 * 3600)
    except BadSignature:
        raise Unauthenticated("auth.bad_token", _("Phiên của điểm cầu không hợp lệ hoặc đã hết hạn.")) from None
    bp = db.session.get(BridgePoint, data.get("bp"))
    if bp is None:
        raise Unauthenticated("auth.bad_token", _("Điểm cầu không còn tồn tại."))
    return bp


def kiosk_by_code(code: str):
    from sqlalchemy import select

    from ..places.models import BridgePoint

    code = (code or "").strip().upper()
    if not code or len(code) > 20:
        return None
    return db.session.scalar(select(BridgePoint).where(BridgePoint.kiosk_code == code))
