"""People: organizers, rapporteurs, proctors, bridge-point operators and learners."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.timeutil import now_utc
from ..extensions import db
from ..places.models import BridgePoint, District


class Role(str, enum.Enum):
    organizer = "organizer"
    rapporteur = "rapporteur"
    proctor = "proctor"
    operator = "operator"
    learner = "learner"


ROLE_LABELS = {
    Role.organizer: "Ban tổ chức",
    Role.rapporteur: "Báo cáo viên",
    Role.proctor: "Giám thị",
    Role.operator: "Cán bộ kỹ thuật điểm cầu",
    Role.learner: "Học viên",
}


class User(UserMixin, db.Model):
    __tablename__ = "user"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    role: so.Mapped[Role] = so.mapped_column(sa.Enum(Role, native_enum=False, length=20), index=True)
    #: staff log in with a username and a password; learners with their personal code.
    username: so.Mapped[Optional[str]] = so.mapped_column(sa.String(80), unique=True)
    password_hash: so.Mapped[Optional[str]] = so.mapped_column(sa.String(256))
    #: the learner's personal code from the roster (unique, also their login).
    personal_code: so.Mapped[Optional[str]] = so.mapped_column(sa.String(40), unique=True)
    full_name: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: school or unit.
    unit: so.Mapped[Optional[str]] = so.mapped_column(sa.String(200))
    #: scope: a district organizer or proctor sees one district; None is the province.
    district_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("district.id"), index=True)
    #: scope: an operator's (or a learner's) bridge point.
    bridge_point_id: so.Mapped[Optional[int]] = so.mapped_column(
        sa.ForeignKey("bridge_point.id"), index=True
    )
    #: order on the bridge point's roster; neighbours in this order sit side by side.
    seat: so.Mapped[Optional[int]] = so.mapped_column()
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(sa.DateTime(timezone=True), default=now_utc)

    district: so.Mapped[Optional[District]] = so.relationship()
    bridge_point: so.Mapped[Optional[BridgePoint]] = so.relationship()

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.role != Role.learner

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value} {self.username or self.personal_code}>"
