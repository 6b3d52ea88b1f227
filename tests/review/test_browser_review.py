"""Check-in and review in a real browser against a live hub.

A learner opens the kiosk's QR link on a phone-sized page, logs in with the personal
code and checks in; a proctor confirms a flag with a note in the queue, and the
attendance report shows it. Set DIEMCAU_SCREENSHOT_DIR to keep screenshots.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from factories import PASSWORD, make_staff

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
WAIT_MS = 20_000


@pytest.fixture
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, **options):
    context = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", **options)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


def shot(page, name: str) -> None:
    folder = os.environ.get("DIEMCAU_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def scene(world):
    from server.attendance import checkin
    from server.core.timeutil import now_utc
    from server.extensions import db
    from server.review.models import Flag
    from server.webcast.models import Lecture, LectureStatus

    now = now_utc()
    rapporteur = make_staff("rapporteur", "bcv")
    lecture = Lecture(title="Học tập Nghị quyết Đại hội", rapporteur_id=rapporteur.id, status=LectureStatus.live,
                      started_at=now - timedelta(minutes=30))
    db.session.add(lecture)
    db.session.flush()
    flag = Flag(kind="headcount_low", severity=70, lecture_id=lecture.id, bridge_point_id=world.bridge_points[0].id)
    db.session.add(flag)
    db.session.commit()
    out = {"lecture": lecture.id, "flag": flag.id, "bp": world.bridge_points[0].id,
           "token": checkin.checkin_token(lecture.id, world.bridge_points[0].id, now)}
    db.session.rollback()
    return out


def test_phone_check_in_then_a_confirmed_flag_shows_in_the_report(app, db_url, hub_factory, browser, scene):
    from server.attendance.models import CheckIn
    from server.extensions import db

    hub = hub_factory(db_url)

    phone = new_page(browser, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    phone.goto(f"{hub.url}/checkin/{scene['token']}")
    phone.fill("#learner-personal_code", "HV0001")
    phone.click("#learner-submit")
    phone.wait_for_selector("[data-testid=checkin-confirm]")
    assert "Học tập Nghị quyết Đại hội" in phone.inner_text("[data-testid=checkin-lecture]")
    shot(phone, "checkin-confirm")
    phone.click("[data-testid=checkin-confirm]")
    assert phone.inner_text("[data-testid=checkin-done]") == "Điểm danh thành công"
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "checkin-done")
    db.session.rollback()
    assert db.session.scalar(sa.select(CheckIn.method).where(CheckIn.lecture_id == scene["lecture"])) == "qr"
    db.session.rollback()

    desk = new_page(browser, viewport={"width": 1280, "height": 900})
    desk.goto(f"{hub.url}/login")
    desk.fill("#staff-username", "giamthi")
    desk.fill("#staff-password", PASSWORD)
    desk.click("#staff-submit")
    desk.goto(f"{hub.url}/reports/attendance?lecture={scene['lecture']}")
    assert desk.inner_text("[data-testid=total-attended]") == "1"
    assert desk.inner_text("[data-testid=total-anomalies]") == "0"

    desk.goto(f"{hub.url}/review/flags")
    row = desk.locator(f"tr[data-flag='{scene['flag']}']")
    row.locator("button[value=confirmed]").click()  # no note: the browser itself refuses
    assert row.locator("[data-testid=flag-status]").inner_text() == "Chờ xem xét"
    row.locator("input[name=note]").fill("Ảnh 10:05 chỉ có 1 người, điểm danh 3")
    shot(desk, "flag-queue")
    row.locator("button[value=confirmed]").click()
    desk.wait_for_selector(".flash-success")
    desk.select_option("#f-status", "confirmed")
    desk.click(".filters button[type=submit]")
    assert desk.locator(f"tr[data-flag='{scene['flag']}'] [data-testid=flag-status]").inner_text() == "Đã xác nhận"

    desk.goto(f"{hub.url}/reports/attendance?lecture={scene['lecture']}")
    assert desk.inner_text("[data-testid=total-anomalies]") == "1"
    assert "Số người ít hơn số điểm danh (1)" in desk.inner_text(f"tr[data-bp='{scene['bp']}']")
    shot(desk, "attendance-report")
    assert phone.errors == [] and desk.errors == []
