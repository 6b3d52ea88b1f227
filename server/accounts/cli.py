import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..extensions import db
from ..places.models import BridgePoint, District
from .models import Role, User


@click.group("users", help="Tài khoản người dùng.")
def users() -> None:
    pass


@users.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role if r != Role.learner]), required=True)
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--district", default=None, help="Tên huyện (phạm vi của cán bộ cấp huyện).")
@click.option("--bridge-point", default=None, help="Mã điểm cầu (phạm vi của cán bộ kỹ thuật).")
@with_appcontext
def create(role, username, password, full_name, district, bridge_point):
    user = User(role=Role(role), username=username, full_name=full_name)
    if district:
        user.district_id = db.session.scalar(sa.select(District.id).where(District.name == district))
        if user.district_id is None:
            raise click.BadParameter(f"không có huyện “{district}”")
    if bridge_point:
        bp = db.session.scalar(sa.select(BridgePoint).where(BridgePoint.code == bridge_point))
        if bp is None:
            raise click.BadParameter(f"không có điểm cầu “{bridge_point}”")
        user.bridge_point_id, user.district_id = bp.id, bp.district_id
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"Đã tạo {user.role_label} {username}")
