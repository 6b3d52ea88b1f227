"""Who may do what, and over which places. Every view and socket event asks here.

Scope: a province organizer (no district) sees everything; a district organizer or
proctor sees one district; an operator sees one bridge point; a learner sees only
their own attempt.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, Iterable, Optional

import sqlalchemy as sa
from flask_login import current_user

from ..accounts.models import Role, User
from .errors import Forbidden, Unauthenticated
from flask_babel import gettext as _

STAFF_EXAM_ROLES = (Role.organizer,)
MONITOR_ROLES = (Role.organizer, Role.proctor, Role.operator)


def require_roles(*roles: Role) -> Callable:
    """View decorator: a logged-in user with one of `roles`, else 401/403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                from flask import redirect, request, url_for

                return redirect(url_for("accounts.login", next=request.full_path))
            if current_user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapped

    return decorator


def check_role(user: Optional[User], roles: Iterable[Role]) -> User:
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthenticated()
    if user.role not in tuple(roles):
        raise Forbidden()
    return user


def is_province_wide(user: User) -> bool:
    return user.role in (Role.organizer, Role.proctor, Role.rapporteur) and user.district_id is None


def covers(user: User, district_id: Optional[int], bridge_point_id: Optional[int]) -> bool:
    """Whether a place (district, bridge point) lies within the user's scope."""
    if user.role == Role.operator:
        return bridge_point_id is not None and bridge_point_id == user.bridge_point_id
    if user.role == Role.learner:
        return False
    if user.district_id is None:
        return True
    return district_id == user.district_id


def require_cover(user: User, district_id: Optional[int], bridge_point_id: Optional[int]) -> None:
    if not covers(user, district_id, bridge_point_id):
        raise Forbidden("scope.outside", _("Điểm cầu này nằm ngoài phạm vi quản lý của bạn."))


def scope_clause(user: User, district_col: Any, bridge_point_col: Any) -> Any:
    """A WHERE clause restricting rows to the user's scope."""
    if user.role == Role.operator:
        return bridge_point_col == user.bridge_point_id
    if user.role == Role.learner:
        return sa.false()
    if user.district_id is None:
        return sa.true()
    return district_col == user.district_id
