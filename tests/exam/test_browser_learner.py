"""The learner's exam page in a real browser against a live hub.

Headless Debian Chromium drives /learn/exams/<id> while an organizer, over plain HTTP,
opens the exam; the hub process writes to the same SQLite file that the test reads.
Set DIEMCAU_SCREENSHOT_DIR to keep phone-sized screenshots of each screen.
"""
from __future__ import annotations

import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from conftest import ROOT, need
from factories import PASSWORD, make_world

VENDOR = ROOT / "static" / "vendor"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
WAIT_MS = 20_000


# fixtures ---------------------------------------------------------------------------

@pytest.fixture
def browser(chromium_path):
    need(
        (VENDOR / "socket.io.min.js").is_file() and (VENDOR / "noble-ciphers" / "aes.js").is_file(),
        "static/vendor/ is missing the browser libraries: run `bash deploy/vendor.sh`",
    )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(browser):
    """A phone-sized page that records script errors; the test fails on any."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.errors, page.warnings = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: msg.type in ("warning", "error") and page.warnings.append(msg.text))
    yield page
    context.close()
    assert page.errors == [], f"script errors on the page: {page.errors}"


class Live:
    """A committed world, a live hub on it, and plain values read before the hub writes."""

    def __init__(self, world, hub):
        from server.exam.models import Attempt
        from server.extensions import db

        self.hub, self.url = hub, hub.url
        self.exam_id = world.exam.id
        learner = world.learners[0]
        self.personal_code = learner.personal_code
        self.district = learner.district.name
        self.attempt_id = db.session.scalar(
            sa.select(Attempt.id).where(Attempt.exam_id == self.exam_id, Attempt.user_id == learner.id)
        )
        db.session.rollback()

    def answers(self) -> dict[int, tuple]:
        """The learner's Answer rows as the hub committed them: question id → (choice, flagged, seq)."""
        from server.exam.models import Answer
        from server.extensions import db

        db.session.rollback()  # read what the hub committed since
        rows = db.session.execute(
            sa.select(Answer.question_id, Answer.choice_id, Answer.flagged, Answer.seq)
            .where(Answer.attempt_id == self.attempt_id)
        ).all()
        db.session.rollback()
        return {q: (c, f, s) for q, c, f, s in rows}

    def attempt(self):
        from server.exam.models import Attempt
        from server.extensions import db

        db.session.rollback()
        row = db.session.execute(
            sa.select(Attempt.status, Attempt.score, Attempt.band, Attempt.n_correct).where(Attempt.id == self.attempt_id)
        ).one()
        db.session.rollback()
        return row


@pytest.fixture
def live(app, db_url, hub_factory):
    world = make_world()
    return Live(world, hub_factory(db_url))


# helpers ----------------------------------------------------------------------------

class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            self.inputs.setdefault(a["name"], a.get("value") or "")
        if tag == "meta" and a.get("name"):
            self.meta[a["name"]] = a.get("content") or ""


def _parse(html: str) -> _Inputs:
    p = _Inputs()
    p.feed(html)
    return p


def organizer_session(url: str) -> tuple[requests.Session, str]:
    """Log in as the organizer through the /login form (CSRF on); return the session and a token."""
    s = requests.Session()
    form = _parse(s.get(url + "/login", timeout=10).text)
    token = form.inputs.get("staff-csrf_token") or form.inputs["csrf_token"]
    r = s.post(url + "/login", data={
        "staff-csrf_token": token, "csrf_token": token,
        "staff-username": "btc", "staff-password": PASSWORD, "staff-submit": "Đăng nhập",
    }, timeout=10, allow_redirects=False)
    assert r.status_code == 302, f"organizer login failed: {r.status_code}"
    page = _parse(s.get(url + "/login", timeout=10).text)
    return s, page.inputs.get("csrf_token") or page.meta["csrf-token"]


def learner_login(page, url: str, personal_code: str) -> None:
    page.goto(url + "/login")
    shot(page, "login")
    page.fill("#learner-personal_code", personal_code)
    page.click("[name=learner-submit]")
    page.wait_for_url(lambda u: "/login" not in u)


def correct_choices() -> dict[int, int]:
    from server.extensions import db
    from server.questions.models import Choice

    rows = db.session.execute(sa.select(Choice.question_id, Choice.id).where(Choice.is_correct)).all()
    db.session.rollback()
    return dict(rows)


def vi_number(value: float) -> str:
    """As Intl.NumberFormat('vi-VN', {maximumFractionDigits: 2}) writes it."""
    return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")


def shot(page, name: str, full_page: bool = False) -> None:
    target = os.environ.get("DIEMCAU_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=full_page)


def by(page, test_id: str):
    return page.get_by_test_id(test_id)


def current_question_id(page) -> int:
    return int(by(page, "question").get_attribute("data-question-id"))


def remaining_ms(page) -> int:
    return int(by(page, "countdown").get_attribute("data-remaining-ms"))


class _Rows(HTMLParser):
    """Table rows as (class, [cell texts])."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


# the tests --------------------------------------------------------------------------

def test_learner_waits_answers_reloads_and_submits(live, phone):
    from playwright.sync_api import expect

    page = phone
    key = correct_choices()
    learner_login(page, live.url, live.personal_code)

    # the learner's list: the exam, waiting, one tap away.
    item = page.locator(f"[data-testid=my-exam][data-exam-id='{live.exam_id}']")
    expect(item.get_by_test_id("my-exam-status")).to_have_text("Chờ bắt đầu")
    shot(page, "learner-list")
    item.get_by_test_id("my-exam-open").click()
    page.wait_for_url(f"**/learn/exams/{live.exam_id}")

    # before the start: the waiting screen, the paper already here but sealed.
    expect(by(page, "waiting")).to_be_visible()
    expect(by(page, "waiting")).to_contain_text("Chờ bắt đầu")
    expect(by(page, "connection")).to_have_attribute("data-state", "online")
    expect(by(page, "code-label")).to_contain_text("Mã đề")
    expect(by(page, "question")).to_be_hidden()
    shot(page, "learner-waiting")

    # the organizer opens the exam: the questions appear without a reload.
    page.evaluate("window.sameDocument = true")
    staff, csrf = organizer_session(live.url)
    r = staff.post(f"{live.url}/exams/{live.exam_id}/open", data={"csrf_token": csrf}, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:500]
    expect(by(page, "question")).to_be_visible()
    expect(by(page, "waiting")).to_be_hidden()
    expect(page.locator("[data-testid=progress]")).to_contain_text("Đã trả lời 0/6")
    expect(by(page, "palette-item")).to_have_count(6)
    assert page.evaluate("window.sameDocument") is True  # no reload happened
    # unsealed in the browser with the broadcast key, not fetched again.
    assert not [w for w in page.warnings if "unseal" in w], page.warnings
    expect(by(page, "message")).to_be_hidden()

    # three right answers, the second one marked for review.
    chosen: dict[int, int] = {}
    for i in range(3):
        qid = current_question_id(page)
        choice = by(page, "question").locator(f"[data-testid=choice][data-choice-id='{key[qid]}']")
        choice.click()
        chosen[qid] = key[qid]
        expect(choice.locator("input")).to_be_checked()
        if i == 1:
            by(page, "flag").click()
            expect(by(page, "flag")).to_have_attribute("aria-pressed", "true")
            flagged_qid = qid
        by(page, "next").click()
        expect(by(page, "question")).not_to_have_attribute("data-question-id", str(qid))
    expect(by(page, "save-state")).to_have_attribute("data-state", "saved")
    expect(by(page, "save-state")).to_have_text("Tất cả câu trả lời đã được lưu")
    expect(page.locator("[data-testid=progress]")).to_contain_text("Đã trả lời 3/6")
    by(page, "palette-item").nth(0).click()
    expect(by(page, "question-save-state")).to_have_text("Đã lưu")
    shot(page, "learner")
    shot(page, "learner-full", full_page=True)

    # in the database: three answers, one flagged, each with a growing seq.
    rows = live.answers()
    assert {q: c for q, (c, _f, _s) in rows.items()} == chosen
    assert [q for q, (_c, f, _s) in rows.items() if f] == [flagged_qid]
    assert all(s > 0 for (_c, _f, s) in rows.values())

    # reload: answers and the mark come back, the countdown goes on.
    before, t_before = remaining_ms(page), time.monotonic()
    assert 119 * 60_000 < before <= 120 * 60_000
    page.reload()
    expect(by(page, "question")).to_be_visible()
    expect(by(page, "save-state")).to_have_attribute("data-state", "saved")
    expect(page.locator("[data-testid=progress]")).to_contain_text("Đã trả lời 3/6")
    after = remaining_ms(page)
    elapsed = (time.monotonic() - t_before) * 1000
    assert abs((before - elapsed) - after) < 3000, (before, after, elapsed)
    for qid, cid in chosen.items():
        by(page, "palette").locator(f"[data-question-id='{qid}']").click()
        expect(by(page, "question")).to_have_attribute("data-question-id", str(qid))
        expect(by(page, "question").locator(f"[data-choice-id='{cid}'] input")).to_be_checked()
        expect(by(page, "flag")).to_have_attribute("aria-pressed", "true" if qid == flagged_qid else "false")
        item = by(page, "palette").locator(f"[data-question-id='{qid}']")
        expect(item).to_have_class(re.compile(r"\banswered\b"))
        if qid == flagged_qid:
            expect(item).to_have_class(re.compile(r"\bflagged\b"))
        else:
            expect(item).not_to_have_class(re.compile(r"\bflagged\b"))

    # early submission, confirmed in the dialog.
    by(page, "submit").click()
    dialog = by(page, "confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Bạn còn 3 câu chưa trả lời. Nộp bài?")
    shot(page, "learner-confirm")
    by(page, "confirm-submit").click()
    expect(by(page, "result")).to_be_visible()
    status, score, band, n_correct = live.attempt()
    assert (status.value, n_correct, score, band) == ("submitted", 3, 5.0, "Trung bình")
    expect(by(page, "result-score")).to_have_text(vi_number(score))
    expect(by(page, "result-band")).to_have_text(band)
    expect(by(page, "question")).to_be_hidden()
    shot(page, "learner-result")
    page.goto(f"{live.url}/learn/")
    item = page.locator(f"[data-testid=my-exam][data-exam-id='{live.exam_id}']")
    expect(item.get_by_test_id("my-exam-status")).to_have_text("Đã nộp bài")
    expect(item.get_by_test_id("my-exam-score")).to_have_text("5,00")
    expect(item.get_by_test_id("my-exam-band")).to_have_text("Trung bình")

    # the organizer's results: the learner's district, one who took part.
    r = staff.get(f"{live.url}/exams/{live.exam_id}/results", timeout=10)
    assert r.status_code == 200, r.text[:500]
    table = _Rows()
    table.feed(r.text)
    district_rows = [cells for cls, cells in table.rows if "district-row" in cls and cells and cells[0] == live.district]
    assert district_rows, f"no row for {live.district}: {table.rows}"
    registered, took_part = district_rows[0][1], district_rows[0][2]
    assert (registered, took_part) == ("6", "1")


def test_answers_made_offline_are_queued_and_sent_on_reconnect(live, phone):
    from playwright.sync_api import expect

    from server.exam import operations
    from server.extensions import db

    assert operations.open_exam(live.exam_id) is not None
    db.session.commit()

    page = phone
    learner_login(page, live.url, live.personal_code)
    page.goto(f"{live.url}/learn/exams/{live.exam_id}")
    expect(by(page, "question")).to_be_visible()
    expect(by(page, "connection")).to_have_attribute("data-state", "online")
    qid = current_question_id(page)
    choice = by(page, "question").locator("[data-testid=choice]").nth(1)
    cid = int(choice.get_attribute("data-choice-id"))

    page.context.set_offline(True)
    expect(by(page, "connection")).to_have_attribute("data-state", "offline")
    expect(by(page, "connection")).to_have_text("Mất kết nối – đang kết nối lại…")
    choice.click()
    expect(by(page, "question-save-state")).to_have_text("Chưa lưu")
    expect(by(page, "save-state")).to_have_attribute("data-state", "offline")
    expect(by(page, "palette").locator(f"[data-question-id='{qid}']")).to_have_attribute("data-state", "unsaved")
    queued = page.evaluate(f"JSON.parse(localStorage.getItem('diemcau.exam.{live.attempt_id}.queue'))")
    assert queued[str(qid)]["choice"] == cid
    shot(page, "learner-offline")
    page.wait_for_timeout(1000)
    assert live.answers() == {}

    # submitting is refused while the link is down, with a message.
    by(page, "submit").click()
    expect(by(page, "message")).to_contain_text("Mất kết nối")
    expect(by(page, "confirm-dialog")).to_be_hidden()

    page.context.set_offline(False)
    expect(by(page, "connection")).to_have_attribute("data-state", "online")
    expect(by(page, "question-save-state")).to_have_text("Đã lưu")
    expect(by(page, "save-state")).to_have_attribute("data-state", "saved")
    rows = live.answers()
    assert set(rows) == {qid} and rows[qid][0] == cid and rows[qid][1] is False
    assert rows[qid][2] == queued[str(qid)]["seq"]
    assert page.evaluate(f"localStorage.getItem('diemcau.exam.{live.attempt_id}.queue')") is None


def test_pause_extension_and_time_up_follow_the_organizer(live, phone):
    from datetime import timedelta

    from playwright.sync_api import expect

    from server.core.timeutil import now_utc
    from server.exam import operations
    from server.exam.models import Attempt
    from server.extensions import db

    assert operations.open_exam(live.exam_id) is not None
    db.session.commit()
    page = phone
    learner_login(page, live.url, live.personal_code)
    page.goto(f"{live.url}/learn/exams/{live.exam_id}")
    expect(by(page, "question")).to_be_visible()
    staff, csrf = organizer_session(live.url)

    def adjust(kind: str, minutes: int = 0) -> None:
        r = staff.post(f"{live.url}/exams/{live.exam_id}/adjust", data={
            "csrf_token": csrf, "kind": kind, "minutes": str(minutes), "reason": "Mất điện tại điểm cầu",
            "personal_code": live.personal_code,
        }, allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text[:500]

    # a pause stops the clock and blocks input; the resume gives the time back.
    adjust("pause")
    expect(by(page, "paused")).to_be_visible()
    expect(by(page, "paused")).to_contain_text("Tạm dừng")
    expect(by(page, "countdown")).to_have_attribute("data-state", "paused")
    expect(by(page, "question").locator("[data-testid=choice] input").first).to_be_disabled()
    frozen = remaining_ms(page)
    page.wait_for_timeout(1500)
    assert remaining_ms(page) == frozen
    shot(page, "learner-paused")
    adjust("resume")
    expect(by(page, "paused")).to_be_hidden()
    expect(by(page, "countdown")).to_have_attribute("data-state", "running")
    expect(by(page, "question").locator("[data-testid=choice] input").first).to_be_enabled()

    # an extension moves the deadline on the page at once.
    before = remaining_ms(page)
    adjust("extend", 10)
    page.wait_for_function(f"Number(document.querySelector('[data-testid=countdown]').dataset.remainingMs) > {before + 9 * 60_000}")

    # the deadline comes (moved close by hand; a pause and a resume push it to the page):
    # the page blocks input and waits; the hub closes the attempt and the result shows.
    db.session.execute(sa.update(Attempt).where(Attempt.id == live.attempt_id)
                       .values(deadline_at=now_utc() + timedelta(seconds=8)))
    db.session.commit()
    adjust("pause")
    expect(by(page, "paused")).to_be_visible()
    adjust("resume")
    expect(by(page, "paused")).to_be_hidden()
    expect(by(page, "countdown")).to_have_attribute("data-state", "warn")
    expect(by(page, "time-up")).to_be_visible(timeout=15_000)
    expect(by(page, "time-up")).to_contain_text("Hết giờ – đang chờ máy chủ đóng bài")
    shot(page, "learner-timeup")
    expect(by(page, "result")).to_be_visible(timeout=20_000)
    expect(by(page, "time-up")).to_be_hidden()
    expect(by(page, "result")).to_contain_text("Bài thi đã kết thúc")
    expect(by(page, "result-score")).to_have_text("0")
    expect(by(page, "result-band")).to_have_text("Chưa đạt")
    assert live.attempt()[0].value == "closed"
