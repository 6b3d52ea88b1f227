"""Factories: small, explicit worlds for tests (indico-style factory functions)."""
from __future__ import annotations

from dataclasses import dataclass, field

from server.accounts.models import Role, User
from server.exam import operations as exam_ops
from server.exam.models import Exam
from server.extensions import db
from server.places.models import BridgePoint, District, Province
from server.questions.models import Choice, Question, Topic

PASSWORD = "mat-khau-thu"


def make_staff(role: str, username: str, district: District | None = None, bridge_point: BridgePoint | None = None) -> User:
    user = User(role=Role(role), username=username, full_name=f"Cán bộ {username}")
    if district is not None:
        user.district = district
    if bridge_point is not None:
        user.bridge_point, user.district = bridge_point, bridge_point.district
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.flush()
    return user


def make_bank(n_topics: int = 2, per_topic: int = 6, n_choices: int = 4) -> list[Topic]:
    topics = []
    for t in range(1, n_topics + 1):
        topic = Topic(name=f"Chuyên đề thử {t}", position=t)
        db.session.add(topic)
        for q in range(1, per_topic + 1):
            question = Question(topic=topic, text=f"Câu hỏi {t}.{q}: nội dung nào đúng?", source="test")
            question.choices = [
                Choice(position=i, text=f"Phương án {t}.{q}.{i}", is_correct=(i == (q % n_choices)))
                for i in range(n_choices)
            ]
            db.session.add(question)
        topics.append(topic)
    db.session.flush()
    return topics


@dataclass
class World:
    districts: list[District]
    bridge_points: list[BridgePoint]
    learners: list[User]
    topics: list[Topic]
    staff: dict[str, User] = field(default_factory=dict)
    exam: Exam | None = None


def make_world(
    n_districts: int = 2,
    bps_per_district: int = 2,
    learners_per_bp: int = 3,
    n_topics: int = 2,
    per_topic: int = 6,
    quota: int = 3,
    duration_minutes: int = 120,
    n_codes: int = 2,
    schedule: bool = True,
) -> World:
    province = Province(name="Tỉnh thử")
    db.session.add(province)
    districts, bps, learners = [], [], []
    n = 0
    for d in range(1, n_districts + 1):
        district = District(province=province, name=f"Huyện {d}")
        districts.append(district)
        for b in range(1, bps_per_district + 1):
            bp = BridgePoint(district=district, code=f"D{d}-{b:02d}", name=f"Điểm cầu {d}.{b}", kiosk_code=f"KIOSK-{d}{b:02d}")
            bps.append(bp)
            for seat in range(1, learners_per_bp + 1):
                n += 1
                learners.append(User(role=Role.learner, personal_code=f"HV{n:04d}", full_name=f"Học viên {n}",
                                     unit="Trường thử", district=district, bridge_point=bp, seat=seat))
    db.session.add_all(districts + bps + learners)
    db.session.flush()
    topics = make_bank(n_topics, per_topic)
    world = World(districts, bps, learners, topics)
    world.staff["organizer"] = make_staff("organizer", "btc")
    world.staff["district_organizer"] = make_staff("organizer", "btc-huyen2", district=districts[-1])
    world.staff["operator"] = make_staff("operator", "kt-1", bridge_point=bps[0])
    world.staff["proctor"] = make_staff("proctor", "giamthi")
    world.exam = exam_ops.create_exam(
        "Bài thi thử", {t.id: quota for t in topics}, duration_minutes=duration_minutes, n_codes=n_codes, seed=42
    )
    if schedule:
        exam_ops.schedule_exam(world.exam)
    db.session.commit()
    return world
