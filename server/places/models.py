"""Province → districts → bridge points (a bridge point may have communes below it later)."""
from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from ..extensions import db


class Province(db.Model):
    __tablename__ = "province"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)

    districts: so.WriteOnlyMapped["District"] = so.relationship(back_populates="province")


class District(db.Model):
    __tablename__ = "district"
    __table_args__ = (sa.UniqueConstraint("province_id", "name"),)
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    province_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("province.id"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))

    province: so.Mapped[Province] = so.relationship(back_populates="districts")

    def __repr__(self) -> str:
        return f"<District {self.name}>"


class BridgePoint(db.Model):
    """A remote room with a PC on a projector, speakers and a camera; one class each."""

    __tablename__ = "bridge_point"
    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    district_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("district.id"), index=True)
    #: a bridge point may sit below another one (a commune below a district hall).
    parent_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("bridge_point.id"))
    #: short code the kiosk signs in with and the roster refers to, e.g. "LC-TU-03".
    code: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(200))
    #: the secret the room's kiosk signs in with (random; the short `code` is public).
    kiosk_code: so.Mapped[Optional[str]] = so.mapped_column(sa.String(20), unique=True)

    district: so.Mapped[District] = so.relationship()

    def __repr__(self) -> str:
        return f"<BridgePoint {self.code}>"


def new_kiosk_code() -> str:
    """Ten characters from an alphabet without look-alikes (no 0/O, 1/I/L): ~50 bits."""
    import secrets

    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"
