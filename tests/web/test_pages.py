"""The organizer's pages over HTTP: who may see them, what they show, what their forms do.

Scoring and parsing are tested in their own modules; here the pages and their forms are.
"""
from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from factories import PASSWORD
from server.accounts.models import Role, User
from server.exam.models import Attempt, Exam, ExamCode, ExamStatus, TimeAdjustment
from server.extensions import db
from server.questions.models import Question, Topic


@dataclass
class Ids:
    exam: int
    codes: list[int]
    topics: list[int]
    question: int
    bridge_points: list[int]


@pytest.fixture
def ids(world) -> Ids:
    out = Ids(
        exam=world.exam.id,
        codes=[c.id for c in world.exam.codes],
        topics=[t.id for t in world.topics],
        question=db.session.scalar(sa.select(Question.id).order_by(Question.id)),
        bridge_points=[bp.id for bp in world.bridge_points],
    )
    db.session.rollback()
    return out


def make_client(app) -> FlaskClient:
    return app.test_client()


def login_staff(client, username: str) -> FlaskClient:
    r = client.post("/login", data={"staff-username": username, "staff-password": PASSWORD, "staff-submit": "1"})
    assert r.status_code == 302, r.text
    return client


def login_learner(client, code: str = "HV0001") -> FlaskClient:
    r = client.post("/login", data={"learner-personal_code": code, "learner-submit": "1"})
    assert r.status_code == 302, r.text
    return client


@pytest.fixture
def organizer(app, ids):
    return login_staff(make_client(app), "btc")


def page(client, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, f"{url}: {r.status_code}\n{r.text[:2000]}"
    return r.get_data(as_text=True)


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


ORGANIZER_PAGES = [
    "/exams/new",
    "/exams/{exam}/codes/{code}/print",
    "/exams/{exam}/results",
    "/exams/{exam}/results.xlsx",
    "/questions/",
    "/questions/import",
    "/questions/{question}/edit",
    "/roster/import",
]
STAFF_PAGES = ["/exams/", "/exams/{exam}", "/exams/{exam}/board", "/places/"]


def fill(url: str, ids: Ids) -> str:
    return url.format(exam=ids.exam, code=ids.codes[0], question=ids.question)


# who may see what -----------------------------------------------------------------------

@pytest.mark.parametrize("url", ORGANIZER_PAGES + STAFF_PAGES)
def test_anonymous_is_sent_to_login(app, ids, url):
    r = make_client(app).get(fill(url, ids))
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", ORGANIZER_PAGES + STAFF_PAGES)
def test_learner_is_refused(app, ids, url):
    client = login_learner(make_client(app))
    text = page(client, fill(url, ids), 403)
    assert "Bạn không có quyền" in text


@pytest.mark.parametrize("url", ORGANIZER_PAGES)
def test_operator_is_refused_organizer_pages(app, ids, url):
    client = login_staff(make_client(app), "kt-1")
    page(client, fill(url, ids), 403)


def test_operator_sees_own_bridge_point_only(app, ids):
    client = login_staff(make_client(app), "kt-1")
    text = page(client, "/places/")
    assert "D1-01" in text
    assert "D1-02" not in text and "D2-01" not in text
    detail = page(client, f"/exams/{ids.exam}")
    # an operator watches; printing, scheduling and incidents are the organizer's.
    assert "/print" not in detail and "Mở bài thi ngay" not in detail
    assert "/results" not in detail


# the exams list and the form -----------------------------------------------------------

def test_exam_list(organizer, ids):
    text = page(organizer, "/exams/")
    assert "Bài thi thử" in text
    assert "Đã lên lịch" in text
    assert f'href="/exams/{ids.exam}"' in text
    assert 'href="/exams/new"' in text


def test_exam_list_hides_create_link_from_proctor(app, ids):
    text = page(login_staff(make_client(app), "giamthi"), "/exams/")
    assert "Bài thi thử" in text
    assert 'href="/exams/new"' not in text


def test_new_exam_form(organizer, ids):
    text = page(organizer, "/exams/new")
    for topic_id in ids.topics:
        # 2 topics of 6 questions: the default takes everything the bank has toward 50.
        assert re.search(rf'name="quota_{topic_id}"[^>]*value="6"', text, re.S)
    assert "Chuyên đề thử 1" in text and "Chuyên đề thử 2" in text
    assert 'name="duration_minutes"' in text and 'value="120"' in text
    assert re.search(r'name="n_codes"[^>]*value="2"', text, re.S)
    assert re.search(r'name="show_score" value="1"\s*checked', text)
    assert 'name="csrf_token"' in text
    assert 'data-target="50"' in text


def test_new_exam_default_quotas_reach_fifty(app, organizer):
    from server.questions.models import Choice

    for t in range(3):  # 2×6 + 3×30 questions in 5 topics
        topic = Topic(name=f"Chuyên đề lớn {t}", position=10 + t)
        for q in range(30):
            question = Question(topic=topic, text=f"Câu {t}.{q}?", source="test")
            question.choices = [Choice(position=0, text="Đúng", is_correct=True), Choice(position=1, text="Sai")]
            db.session.add(question)
    db.session.commit()
    text = page(organizer, "/exams/new")
    values = [int(v) for v in re.findall(r'class="quota"[^>]*value="(\d+)"', text, re.S)]
    assert len(values) == 5
    assert sum(values) == 50
    assert sorted(values)[:2] == [6, 6]


def exam_form(ids: Ids, **overrides) -> dict:
    data = {
        "title": "Khảo sát chính trị hè 2025",
        "duration_minutes": "90",
        "n_codes": "2",
        "opens_at": "15/07/2025 08:00",
        "show_score": "1",
        f"quota_{ids.topics[0]}": "3",
        f"quota_{ids.topics[1]}": "3",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_create_exam(organizer, ids):
    before = count(Exam)
    r = organizer.post("/exams/new", data=exam_form(ids, show_score=None, n_codes="3"))
    assert r.status_code == 302
    exam = db.session.scalar(sa.select(Exam).order_by(Exam.id.desc()))
    assert count(Exam) == before + 1
    assert r.headers["Location"] == f"/exams/{exam.id}"
    assert (exam.title, exam.status, exam.n_questions, exam.duration_minutes, exam.n_codes, exam.show_score) == (
        "Khảo sát chính trị hè 2025", ExamStatus.draft, 6, 90, 3, False)
    text = page(organizer, f"/exams/{exam.id}")
    assert "Đã tạo bài thi." in text
    assert "Nháp" in text
    assert "15/07/2025 08:00" in text  # stored in UTC, shown in Vietnam time
    assert "Lên lịch và tạo mã đề" in text


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"title": "  "}, "Bài thi cần có tên."),
        ({"quota_TOPIC0": "ba"}, "Giá trị “ba” không phải là số nguyên."),
        ({"quota_TOPIC0": "0", "quota_TOPIC1": "0"}, "Bài thi cần ít nhất một câu hỏi."),
        ({"duration_minutes": "0"}, "Thời gian làm bài phải từ 1 đến 600 phút."),
        ({"opens_at": "32/13/2025 8h"}, "Thời điểm phải theo dạng dd/mm/yyyy HH:MM."),
    ],
    ids=["no-title", "quota-not-a-number", "no-questions", "bad-duration", "bad-time"],
)
def test_create_exam_refused(organizer, ids, overrides, message):
    overrides = {k.replace("TOPIC0", str(ids.topics[0])).replace("TOPIC1", str(ids.topics[1])): v
                 for k, v in overrides.items()}
    before = count(Exam)
    r = organizer.post("/exams/new", data=exam_form(ids, **overrides))
    assert r.status_code == 400
    text = html.unescape(r.get_data(as_text=True))
    assert message in text
    assert count(Exam) == before
    # the organizer's input is kept for correction
    posted_title = exam_form(ids, **overrides)["title"]
    if posted_title.strip():
        assert f'value="{posted_title}"' in text
    assert re.search(rf'name="quota_{ids.topics[1]}"[^>]*value="{exam_form(ids, **overrides)[f"quota_{ids.topics[1]}"]}"', text, re.S)


def test_unchecked_show_score_stays_unchecked_after_error(organizer, ids):
    r = organizer.post("/exams/new", data=exam_form(ids, title="", show_score=None))
    assert r.status_code == 400
    assert not re.search(r'name="show_score" value="1"\s*checked', r.get_data(as_text=True))


def create_exam(client, ids, **overrides) -> int:
    r = client.post("/exams/new", data=exam_form(ids, **overrides))
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    return int(r.headers["Location"].rsplit("/", 1)[1])


def test_schedule_refuses_quota_larger_than_bank(organizer, ids):
    exam_id = create_exam(organizer, ids, **{f"quota_{ids.topics[0]}": "10", f"quota_{ids.topics[1]}": "0"})
    r = organizer.post(f"/exams/{exam_id}/schedule")
    assert r.status_code == 409
    text = r.get_data(as_text=True)
    assert "chỉ có 6 câu hỏi" in text and "cần 10" in text
    assert fresh(Exam, exam_id).status == ExamStatus.draft
    assert count(ExamCode, ExamCode.exam_id == exam_id) == 0
    assert count(Attempt, Attempt.exam_id == exam_id) == 0


def test_schedule_creates_codes_shown_on_the_page(organizer, ids):
    exam_id = create_exam(organizer, ids)
    assert "Chưa có mã đề" in page(organizer, f"/exams/{exam_id}")
    r = organizer.post(f"/exams/{exam_id}/schedule")
    assert r.status_code == 302 and r.headers["Location"] == f"/exams/{exam_id}"
    text = page(organizer, f"/exams/{exam_id}")
    assert "Đã tạo 2 mã đề và xếp 12 học viên vào phòng thi." in text
    assert "Đã lên lịch" in text and "Mở bài thi ngay" in text
    codes = db.session.scalars(sa.select(ExamCode).where(ExamCode.exam_id == exam_id)).all()
    assert len(codes) == 2
    for code in codes:
        n = count(Attempt, Attempt.code_id == code.id)
        assert re.search(rf'<strong class="code-label">{code.label}</strong></td>\s*<td class="num">{n}</td>', text)
        assert f'href="/exams/{exam_id}/codes/{code.id}/print"' in text
        assert f'href="/exams/{exam_id}/codes/{code.id}/print?key=1"' in text
    # scheduling twice is refused, the codes stay
    assert organizer.post(f"/exams/{exam_id}/schedule").status_code == 409
    assert count(ExamCode, ExamCode.exam_id == exam_id) == 2


# print view ----------------------------------------------------------------------------

def test_print_view_has_every_question_and_no_key(organizer, ids):
    for code_id in ids.codes:
        code = fresh(ExamCode, code_id)
        text = page(organizer, f"/exams/{ids.exam}/codes/{code_id}/print")
        assert f"Mã đề {code.label}" in text
        assert "Bài thi thử" in text and "120 phút" in text
        assert "Họ và tên:" in text and "Điểm cầu:" in text
        positions = []
        for item in code.layout:
            question = db.session.get(Question, item["q"])
            assert question.text in text
            positions.append(text.index(question.text))
            for choice in question.choices:
                assert choice.text in text
        assert positions == sorted(positions), "questions must follow the code's order"
        assert len(re.findall(r'<li class="question"', text)) == len(code.layout)
        assert "answer-key" not in text and "ĐÁP ÁN" not in text


def test_print_view_with_key(organizer, ids):
    code = fresh(ExamCode, ids.codes[1])
    text = page(organizer, f"/exams/{ids.exam}/codes/{code.id}/print?key=1")
    assert f"ĐÁP ÁN – MÃ ĐỀ {code.label}" in text
    letters = re.findall(r'<td class="key-letter">([A-F])</td>', text)
    expected = []
    for item in code.layout:
        correct = [c.id for c in db.session.get(Question, item["q"]).choices if c.is_correct][0]
        expected.append("ABCDEF"[item["c"].index(correct)])
    assert letters == expected


def test_print_view_of_another_exams_code_is_404(organizer, ids):
    other = create_exam(organizer, ids)
    page(organizer, f"/exams/{other}/codes/{ids.codes[0]}/print", 404)


# opening, board, incidents -----------------------------------------------------------------

def open_exam(client, ids) -> None:
    r = client.post(f"/exams/{ids.exam}/open")
    assert r.status_code == 302
    assert r.headers["Location"] == f"/exams/{ids.exam}/board"


def test_open_now_leads_to_board(organizer, ids):
    detail = page(organizer, f"/exams/{ids.exam}")
    assert "data-confirm=" in detail  # the button asks before opening
    open_exam(organizer, ids)
    exam = fresh(Exam, ids.exam)
    assert exam.status == ExamStatus.open and exam.ends_at is not None
    text = page(organizer, f"/exams/{ids.exam}/board")
    assert "Đã mở bài thi: mọi học viên bắt đầu cùng lúc." in text
    assert f'data-exam-id="{ids.exam}"' in text
    assert re.search(r'data-token="[^"]{20,}"', text)
    assert "/static/vendor/socket.io.min.js" in text and "/static/exam/board.js" in text
    for label in ("Đã đăng ký", "Đang kết nối", "Đã bắt đầu", "Đã nộp", "Tạm dừng"):
        assert label in text
    # a second press does not reopen
    organizer.post(f"/exams/{ids.exam}/open")
    assert "Bài thi đã được mở hoặc chưa được lên lịch." in page(organizer, f"/exams/{ids.exam}/board")
    assert fresh(Exam, ids.exam).started_at == exam.started_at
    detail = page(organizer, f"/exams/{ids.exam}")
    assert "Đang thi" in detail and 'name="reason"' in detail


def test_board_static_files_exist(app):
    client = make_client(app)
    assert client.get("/static/exam/board.js").status_code == 200
    assert client.get("/static/css/admin.css").status_code == 200


def test_adjust_without_reason_is_refused(organizer, ids):
    open_exam(organizer, ids)
    r = organizer.post(f"/exams/{ids.exam}/adjust",
                       data={"kind": "pause", "bridge_point_id": str(ids.bridge_points[0]), "reason": "  "})
    assert r.status_code == 400
    assert "Cần ghi rõ lý do điều chỉnh thời gian." in r.get_data(as_text=True)
    assert count(TimeAdjustment) == 0
    assert count(Attempt, Attempt.paused_at.is_not(None)) == 0


def test_adjust_before_opening_is_refused(organizer, ids):
    detail = page(organizer, f"/exams/{ids.exam}")
    assert 'name="reason"' not in detail
    r = organizer.post(f"/exams/{ids.exam}/adjust",
                       data={"kind": "pause", "bridge_point_id": str(ids.bridge_points[0]), "reason": "Thử"})
    assert r.status_code == 409
    assert count(TimeAdjustment) == 0


def test_pause_resume_extend_are_logged(organizer, ids):
    open_exam(organizer, ids)
    bp = ids.bridge_points[0]
    r = organizer.post(f"/exams/{ids.exam}/adjust",
                       data={"kind": "pause", "bridge_point_id": str(bp), "reason": "Mất điện tại điểm cầu", "minutes": ""})
    assert r.status_code == 302
    assert count(Attempt, Attempt.bridge_point_id == bp, Attempt.paused_at.is_not(None)) == 3
    assert count(Attempt, Attempt.bridge_point_id != bp, Attempt.paused_at.is_not(None)) == 0
    text = page(organizer, f"/exams/{ids.exam}")
    assert "Đã điều chỉnh thời gian cho 3 học viên." in text

    organizer.post(f"/exams/{ids.exam}/adjust",
                   data={"kind": "resume", "bridge_point_id": str(bp), "reason": "Có điện trở lại"})
    assert count(Attempt, Attempt.paused_at.is_not(None)) == 0
    organizer.post(f"/exams/{ids.exam}/adjust",
                   data={"kind": "extend", "bridge_point_id": "", "personal_code": "hv0004", "minutes": "5",
                         "reason": "Máy tính hỏng"})

    text = page(organizer, f"/exams/{ids.exam}")
    log = text[text.index("Nhật ký điều chỉnh"):]
    for expected in ("Tạm dừng", "Tiếp tục", "Cộng thêm giờ", "+5 phút", "Mất điện tại điểm cầu",
                     "Có điện trở lại", "Máy tính hỏng", "Điểm cầu D1-01", "Một học viên", "Cán bộ btc"):
        assert expected in log, expected
    # newest first
    assert log.index("Máy tính hỏng") < log.index("Có điện trở lại") < log.index("Mất điện tại điểm cầu")
    assert count(TimeAdjustment, TimeAdjustment.exam_id == ids.exam) == 3


def test_district_organizer_adjusts_only_inside_district(app, organizer, ids):
    open_exam(organizer, ids)
    client = login_staff(make_client(app), "btc-huyen2")
    detail = page(client, f"/exams/{ids.exam}")
    assert "D2-01 –" in detail and "D1-01 –" not in detail  # only their bridge points to choose
    r = client.post(f"/exams/{ids.exam}/adjust",
                    data={"kind": "pause", "bridge_point_id": str(ids.bridge_points[0]), "reason": "Thử"})
    assert r.status_code == 403
    r = client.post(f"/exams/{ids.exam}/adjust",
                    data={"kind": "pause", "personal_code": "HV0001", "reason": "Thử"})  # HV0001: district 1
    assert r.status_code == 403
    assert count(TimeAdjustment) == 0
    r = client.post(f"/exams/{ids.exam}/adjust",
                    data={"kind": "pause", "bridge_point_id": str(ids.bridge_points[2]), "reason": "Mất mạng"})
    assert r.status_code == 302
    assert count(Attempt, Attempt.paused_at.is_not(None)) == 3


def test_district_organizer_cannot_create_schedule_or_open(app, ids):
    client = login_staff(make_client(app), "btc-huyen2")
    assert 'href="/exams/new"' not in page(client, "/exams/")
    assert "Mở bài thi ngay" not in page(client, f"/exams/{ids.exam}")
    page(client, "/exams/new", 403)
    assert client.post(f"/exams/{ids.exam}/open").status_code == 403
    assert fresh(Exam, ids.exam).status == ExamStatus.scheduled


# results -----------------------------------------------------------------------------------

def test_results_page(organizer, ids):
    text = page(organizer, f"/exams/{ids.exam}/results")
    assert "Bài thi chưa kết thúc – số liệu đang cập nhật" in text
    for name in ("Huyện 1", "Huyện 2", "D1-01 – Điểm cầu 1.1", "D2-02 – Điểm cầu 2.2", "Toàn tỉnh"):
        assert name in text
    for header in ("Đăng ký", "Tham gia", "Điểm TB", "Xuất sắc", "Giỏi", "Khá", "Trung bình", "Chưa đạt",
                   "Giỏi + Xuất sắc", "Tỉ lệ (%)"):
        assert header in text
    assert f'href="/exams/{ids.exam}/results.xlsx"' in text
    assert len(re.findall(r'class="district-row"', text)) == 2
    assert len(re.findall(r'class="place-row"', text)) == 4


def test_results_page_after_close_has_no_notice(organizer, ids):
    from server.exam import operations

    operations.open_exam(ids.exam)
    db.session.get(Exam, ids.exam).close()
    db.session.commit()
    text = page(organizer, f"/exams/{ids.exam}/results")
    assert "chưa kết thúc" not in text
    assert "Bài thi đã đóng lúc" in text


def test_district_organizer_sees_only_their_district(app, ids):
    client = login_staff(make_client(app), "btc-huyen2")
    text = page(client, f"/exams/{ids.exam}/results")
    assert "Huyện 2" in text and "D2-01" in text and "D2-02" in text
    assert "Huyện 1" not in text and "D1-01" not in text and "D1-02" not in text
    assert "Toàn tỉnh" not in text

    from openpyxl import load_workbook

    r = client.get(f"/exams/{ids.exam}/results.xlsx")
    assert load_workbook(io.BytesIO(r.data)).sheetnames == ["Tổng hợp", "Huyện 2"]


def test_results_xlsx(organizer, ids):
    from openpyxl import load_workbook

    r = organizer.get(f"/exams/{ids.exam}/results.xlsx")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.headers["Content-Disposition"] == 'attachment; filename="ket-qua-Bai-thi-thu.xlsx"'
    book = load_workbook(io.BytesIO(r.data))
    assert book.sheetnames == ["Tổng hợp", "Huyện 1", "Huyện 2"]
    cells = [c for row in book["Tổng hợp"].iter_rows(values_only=True) for c in row if c is not None]
    assert "Huyện 1" in cells and "Huyện 2" in cells
    district = [c for row in book["Huyện 1"].iter_rows(values_only=True) for c in row if c is not None]
    assert "D1-01 – Điểm cầu 1.1" in district and "D2-01 – Điểm cầu 2.1" not in district


# question bank --------------------------------------------------------------------------------

def test_question_bank_index(organizer, ids):
    text = page(organizer, "/questions/")
    assert "Chuyên đề thử 1" in text and "Chuyên đề thử 2" in text
    assert "Tổng cộng: 12 câu hỏi" in text
    assert 'href="/questions/export.xlsx"' in text and 'href="/questions/export.csv"' in text
    assert 'href="/questions/import"' in text
    assert "Chọn một chuyên đề" in text


def test_question_bank_topic(organizer, ids):
    topic = ids.topics[0]
    text = page(organizer, f"/questions/?topic={topic}")
    questions = db.session.scalars(sa.select(Question).where(Question.topic_id == topic)).all()
    assert len(questions) == 6
    for q in questions:
        assert q.text in text
        assert f'href="/questions/{q.id}/edit"' in text
        right = q.correct_choice.text
        assert re.search(rf'<li class="correct">\s*<span class="letter">[A-F]\.</span> {re.escape(right)}', text)
    assert len(re.findall(r'<li class="correct">', text)) == 6
    assert "Câu hỏi 2.1" not in text  # the other topic's questions are not listed
    assert f'href="/questions/export.xlsx?topic={topic}"' in text
    assert organizer.get(f"/questions/export.xlsx?topic={topic}").status_code == 200


def test_question_import_page(organizer):
    text = page(organizer, "/questions/import")
    assert 'enctype="multipart/form-data"' in text
    assert 'accept=".xlsx,.csv,.gift,.txt,.xml"' in text
    assert 'name="topic"' in text and 'name="csrf_token"' in text
    for word in ("Chuyên đề", "Câu hỏi", "Đáp án", "GIFT", "Aiken", "Moodle XML", "Nhập tất cả hoặc không nhập gì"):
        assert word in text


CSV_HEADER = "Chuyên đề,Câu hỏi,A,B,C,D,Đáp án\n"


def test_question_import_with_errors_lists_them_and_imports_nothing(organizer, ids):
    before = count(Question)
    data = (CSV_HEADER
            + "Chuyên đề mới,Câu hỏi đúng định dạng?,Có,Không,,,A\n"
            + "Chuyên đề mới,Câu hỏi thiếu đáp án?,Có,Không,,,\n").encode()
    r = organizer.post("/questions/import", data={"file": (io.BytesIO(data), "cau-hoi.csv"), "topic": ""},
                       content_type="multipart/form-data")
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    assert "Chưa nhập câu hỏi nào" in text
    assert "<th class=\"num\">Dòng</th>" in text and "<th>Cột</th>" in text and "<th>Lỗi</th>" in text
    assert re.search(r'<td class="num">3</td>\s*<td>Đáp án</td>', text)
    assert count(Question) == before
    assert count(Topic, Topic.name == "Chuyên đề mới") == 0


def test_question_import_valid_file(organizer):
    before = count(Question)
    data = (CSV_HEADER + "Chuyên đề mới,Câu hỏi một?,Có,Không,,,A\n"
            + "Chuyên đề mới,Câu hỏi hai?,Một,Hai,Ba,Bốn,C\n").encode()
    r = organizer.post("/questions/import", data={"file": (io.BytesIO(data), "cau-hoi.csv")},
                       content_type="multipart/form-data")
    assert r.status_code == 302
    assert count(Question) == before + 2
    assert "Đã nhập 2 câu hỏi." in page(organizer, "/questions/")


def test_question_import_without_file(organizer):
    r = organizer.post("/questions/import", data={"topic": ""}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert "Hãy chọn một tệp câu hỏi." in r.get_data(as_text=True)


def test_question_edit_form(organizer, ids):
    q = fresh(Question, ids.question)
    text = page(organizer, f"/questions/{q.id}/edit")
    assert q.text in text
    for i, choice in enumerate(q.choices):
        assert re.search(rf'name="choice_{i}" value="{re.escape(choice.text)}"', text)
    right = [c.is_correct for c in q.choices].index(True)
    assert re.search(rf'name="correct" value="{right}" checked', text)
    assert len(re.findall(r'name="correct" value="\d" checked', text)) == 1
    assert 'name="choice_5"' in text
    assert re.search(rf'<option value="{q.topic_id}" selected>', text)


def test_question_edit_refused_keeps_input(organizer, ids):
    r = organizer.post(f"/questions/{ids.question}/edit", data={
        "topic_id": str(ids.topics[1]), "text": "", "choice_0": "Một", "choice_1": "Hai", "correct": "1"})
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    assert "Nội dung câu hỏi không được để trống." in text
    assert 'name="choice_1" value="Hai"' in text
    assert 'name="correct" value="1" checked' in text
    assert re.search(rf'<option value="{ids.topics[1]}" selected>', text)


def test_question_edit_saves(organizer, ids):
    r = organizer.post(f"/questions/{ids.question}/edit", data={
        "topic_id": str(ids.topics[0]), "text": "Câu hỏi đã sửa?", "choice_0": "Một", "choice_1": "Hai",
        "correct": "1"})
    assert r.status_code == 302
    saved = db.session.scalar(sa.select(Question).where(Question.text == "Câu hỏi đã sửa?", Question.active))
    assert saved is not None and [c.is_correct for c in saved.choices] == [False, True]


# roster and places ------------------------------------------------------------------------------

def test_roster_import_page(organizer):
    text = page(organizer, "/roster/import")
    for column in ("Họ và tên", "Mã cá nhân", "Trường/Đơn vị", "Huyện", "Điểm cầu"):
        assert f"<code>{column}</code>" in text
    assert "Nhập tất cả hoặc không nhập gì" in text
    assert 'enctype="multipart/form-data"' in text and 'type="file"' in text


ROSTER_HEADER = "Họ và tên,Mã cá nhân,Trường/Đơn vị,Huyện,Điểm cầu\n"


def test_roster_import_with_errors_creates_nobody(organizer, ids):
    before = count(User, User.role == Role.learner)
    data = (ROSTER_HEADER + "Nguyễn Văn An,GV9001,Trường Thử,Huyện 1,D1-01\n"
            + "Lò Thị Bình,GV9002,Trường Thử,Huyện 1,XX-99\n").encode()
    r = organizer.post("/roster/import", data={"file": (io.BytesIO(data), "danh-sach.csv")},
                       content_type="multipart/form-data")
    assert r.status_code == 400
    text = r.get_data(as_text=True)
    assert "Chưa nhập học viên nào" in text
    assert re.search(r'<td class="num">3</td>\s*<td>Điểm cầu</td>', text)
    assert count(User, User.role == Role.learner) == before


def test_roster_import_valid_file(organizer, ids):
    before = count(User, User.role == Role.learner)
    data = (ROSTER_HEADER + "Nguyễn Văn An,GV9001,Trường Thử,Huyện 1,D1-01\n").encode()
    r = organizer.post("/roster/import", data={"file": (io.BytesIO(data), "danh-sach.csv")},
                       content_type="multipart/form-data")
    assert r.status_code == 302
    assert count(User, User.role == Role.learner) == before + 1
    assert "Đã nhập 1 học viên." in page(organizer, "/roster/import")


def test_roster_import_without_file(organizer):
    r = organizer.post("/roster/import", data={}, content_type="multipart/form-data")
    assert "Hãy chọn tệp danh sách" in r.get_data(as_text=True)
    assert count(User, User.personal_code == "GV9001") == 0


def test_places(organizer, ids):
    text = page(organizer, "/places/")
    for code in ("D1-01", "D1-02", "D2-01", "D2-02"):
        assert f"<code>{code}</code>" in text
    assert "Huyện 1" in text and "Huyện 2" in text
    assert "4 điểm cầu, 12 học viên" in text
    assert len(re.findall(r'<td class="num">3</td>', text)) == 4


def test_district_organizer_places(app, ids):
    text = page(login_staff(make_client(app), "btc-huyen2"), "/places/")
    assert "D2-01" in text and "D1-01" not in text


# CSRF ----------------------------------------------------------------------------------------

def csrf_token_of(text: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', text).group(1)


def test_post_without_csrf_token_is_refused(csrf_app, ids):
    client = make_client(csrf_app)
    token = csrf_token_of(page(client, "/login"))
    r = client.post("/login", data={"staff-username": "btc", "staff-password": PASSWORD, "staff-submit": "1",
                                    "csrf_token": token})
    assert r.status_code == 302

    before = count(Exam)
    form = exam_form(ids)
    assert client.post("/exams/new", data=form).status_code == 400
    assert client.post(f"/exams/{ids.exam}/open").status_code == 400
    assert count(Exam) == before
    assert fresh(Exam, ids.exam).status == ExamStatus.scheduled

    # the token every page carries is what the forms send
    token = csrf_token_of(page(client, "/exams/new"))
    assert 'name="csrf_token" value="' in page(client, f"/exams/{ids.exam}")  # signed per render
    assert client.post("/exams/new", data=form | {"csrf_token": token}).status_code == 302
    assert count(Exam) == before + 1
