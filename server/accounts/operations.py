"""Changes to people: the roster import (all rows or none)."""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from ..extensions import db
from ..places.models import BridgePoint, District
from .models import Role, User


@dataclass
class ImportReport:
    created: int = 0
    issues: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


def import_roster(data: bytes, filename: str, by: User | None = None) -> ImportReport:
    """Check every row of a roster file; create the learners only if no row is wrong."""
    from ..questions.formats import ImportIssue, TableError, read_table
    from .roster import parse_roster

    try:
        header, rows = read_table(data, filename)
    except TableError as err:
        return ImportReport(issues=[ImportIssue(None, None, err.code, err.reason)])
    bps = db.session.execute(
        sa.select(BridgePoint.code, District.name, BridgePoint.id, BridgePoint.district_id).join(District)
    ).all()
    existing = set(db.session.scalars(sa.select(User.personal_code).where(User.personal_code.is_not(None))))
    parsed, issues = parse_roster(header, rows, {c: d for c, d, _, _ in bps}, existing)
    if issues:
        return ImportReport(issues=issues)
    ids = {c: (bp_id, d_id) for c, _, bp_id, d_id in bps}
    seats: dict[int, int] = dict(
        db.session.execute(
            sa.select(User.bridge_point_id, sa.func.max(User.seat)).where(User.role == Role.learner).group_by(User.bridge_point_id)
        ).all()
    )
    new_users = []
    for row in parsed:
        bp_id, d_id = ids[row.bridge_point_code]
        seats[bp_id] = (seats.get(bp_id) or 0) + 1
        new_users.append(
            {
                "role": Role.learner,
                "personal_code": row.personal_code.upper(),
                "full_name": row.full_name,
                "unit": row.unit,
                "district_id": d_id,
                "bridge_point_id": bp_id,
                "seat": seats[bp_id],
                "active": True,
            }
        )
    if new_users:
        db.session.execute(sa.insert(User), new_users)
    return ImportReport(created=len(new_users))
