"""Districts and bridge points, as the organizer sees them (in scope)."""
import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user

from ..accounts.models import Role, User
from ..core.permissions import require_roles, scope_clause
from ..extensions import db
from .models import BridgePoint, District

bp = Blueprint("places", __name__, url_prefix="/places")


@bp.get("/")
@require_roles(Role.organizer, Role.proctor, Role.operator)
def index():
    learners = (
        sa.select(sa.func.count())
        .where(User.bridge_point_id == BridgePoint.id, User.role == Role.learner)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(BridgePoint, District.name, learners)
        .join(District)
        .where(scope_clause(current_user, BridgePoint.district_id, BridgePoint.id))
        .order_by(District.name, BridgePoint.code)
    ).all()
    return render_template("places/index.html", rows=rows)
