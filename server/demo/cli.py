"""`flask demo create`: a province like Lai Châu, ready for a synchronized test."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..accounts.models import Role, User
from ..exam import operations as exam_ops
from ..extensions import db
from ..places.models import BridgePoint, District, Province, new_kiosk_code
from ..questions.models import Choice, Question, Topic
from . import data


@click.group("demo", help="Dữ liệu minh hoạ.")
def demo() -> None:
    pass


@demo.command("create")
@click.option("--learners", "n_learners", default=10_000, show_default=True)
@click.option("--if-empty", is_flag=True, help="Không làm gì nếu cơ sở dữ liệu đã có dữ liệu.")
@with_appcontext
def create(n_learners: int, if_empty: bool) -> None:
    if db.session.scalar(sa.select(sa.func.count()).select_from(Province)):
        if if_empty:
            click.echo("Dữ liệu minh hoạ đã có sẵn.")
            _print_logins()
            return
        raise click.ClickException("Cơ sở dữ liệu đã có dữ liệu.")
    province = Province(name=data.PROVINCE)
    db.session.add(province)
    districts = {name: District(province=province, name=name) for name, _n in data.DISTRICTS}
    db.session.add_all(districts.values())
    bps = data.bridge_points()
    points = {code: BridgePoint(district=districts[d], code=code, name=name, kiosk_code=new_kiosk_code()) for d, code, name in bps}
    db.session.add_all(points.values())
    db.session.flush()
    rows = [
        {"role": Role.learner, "personal_code": l["personal_code"], "full_name": l["full_name"], "unit": l["unit"],
         "bridge_point_id": points[l["bridge_point_code"]].id, "district_id": points[l["bridge_point_code"]].district_id,
         "seat": l["seat"], "active": True}
        for l in data.learners(bps, n_learners)
    ]
    db.session.execute(sa.insert(User), rows)
    for role, username, password, name, district, bp_code in data.STAFF:
        user = User(role=Role(role), username=username, full_name=name)
        if district:
            user.district_id = districts[district].id
        if bp_code:
            user.bridge_point_id, user.district_id = points[bp_code].id, points[bp_code].district_id
        user.set_password(password)
        db.session.add(user)
    topics = {name: Topic(name=name, position=i) for i, name in enumerate(data.TOPICS, start=1)}
    db.session.add_all(topics.values())
    for topic, stem, choices, right in data.questions():
        q = Question(topic=topics[topic], text=stem, source="minh hoạ")
        q.choices = [Choice(position=i, text=c, is_correct=i == right) for i, c in enumerate(choices)]
        db.session.add(q)
    db.session.flush()
    exam = exam_ops.create_exam(
        "Khảo sát bồi dưỡng chính trị hè (minh hoạ)",
        {topics[t].id: n for t, n in zip(data.TOPICS, data.QUOTAS)},
        duration_minutes=120, n_codes=2, seed=2025,
    )
    n = exam_ops.schedule_exam(exam)
    db.session.commit()
    click.echo(f"Đã tạo {len(districts)} huyện, {len(points)} điểm cầu, {len(rows)} học viên, 150 câu hỏi; "
               f"bài thi #{exam.id} ({exam.n_questions} câu, {exam.duration_minutes} phút, {exam.n_codes} mã đề, {n} thí sinh).")
    _print_logins()


def _print_logins() -> None:
    click.echo("Tài khoản minh hoạ:")
    for role, username, password, name, _d, _b in data.STAFF:
        click.echo(f"  {name}: {username} / {password}")
    click.echo("  Học viên: mã cá nhân GV00001 … GV10000 (ô “Mã cá nhân” ở trang đăng nhập)")
    first = db.session.scalar(sa.select(BridgePoint).order_by(BridgePoint.code))
    if first is not None:
        click.echo(f"  Máy chiếu điểm cầu {first.code}: mã điểm cầu {first.kiosk_code}")
