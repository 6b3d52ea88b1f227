"""The roster import writes all rows or none."""
import sqlalchemy as sa

from server.accounts.models import Role, User
from server.accounts.operations import import_roster
from server.extensions import db

HEADER = "Họ và tên,Mã cá nhân,Trường/Đơn vị,Huyện,Điểm cầu\n"


def learners():
    return db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.role == Role.learner))


def test_good_roster_creates_learners_with_seats(world):
    before = learners()
    data = (HEADER + "Lò Văn Páo,gv-0101,Trường TH số 1,Huyện 1,D1-01\n"
                     "Giàng Thị Dếnh,GV-0102,Trường TH số 2,Huyện 2,D2-02\n").encode()
    report = import_roster(data, "ds.csv")
    assert report.ok and report.created == 2
    db.session.commit()
    assert learners() == before + 2
    pao = db.session.scalar(sa.select(User).where(User.personal_code == "GV-0101"))
    assert pao.bridge_point.code == "D1-01" and pao.district.name == "Huyện 1"
    assert pao.seat == 4  # after the three already there


def test_one_bad_row_imports_nobody(world):
    before = learners()
    data = (HEADER + "Lò Văn Páo,GV-0201,Trường TH,Huyện 1,D1-01\n"
                     "Không Có Điểm,GV-0202,Trường TH,Huyện 1,KHONG-CO\n"
                     ",GV-0203,Trường TH,Huyện 1,D1-01\n"
                     "Trùng Mã,HV0001,Trường TH,Huyện 1,D1-01\n").encode()
    report = import_roster(data, "ds.csv")
    assert not report.ok and report.created == 0
    where = {(i.row, i.code) for i in report.issues}
    assert (3, "unknown_bridge_point") in where
    assert (4, "empty_value") in where
    assert (5, "code_exists") in where
    assert all(i.column for i in report.issues)
    assert learners() == before


def test_a_broken_file_is_refused(world):
    report = import_roster(b"\x00\x01garbage", "ds.xlsx")
    assert not report.ok and report.issues[0].reason
