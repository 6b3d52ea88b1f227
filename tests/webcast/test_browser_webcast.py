"""The live lecture end to end in headless Chromium with fake camera and microphone.

The rapporteur's stage page streams (recorder.js: MediaRecorder → /media); two bridge
point kiosks play it (player.js: /media → MSE) and carry on after the stage's link drops
and comes back; a third signs in late and plays within a few seconds; each plays close
to the live edge; the rapporteur ends the lecture and the recording is a seekable WebM
as long as the stream was.
"""
from __future__ import annotations

import statistics
import time

import pytest

from conftest import ROOT, need
from factories import make_staff
from server.core.timeutil import now_utc
from server.extensions import db
from server.webcast.models import Lecture
from server.webcast.recording import has_cues, probe_duration_ms
from webcast.test_browser_control import CHROMIUM_ARGS, staff_login
from webcast.test_pages_live import HUB_ENV

SCREEN = {"width": 1280, "height": 800}
WAIT_MS = 30_000
PLAYING = """() => { const v = document.getElementById('video');
  return v.videoWidth > 0 && v.currentTime > 0.3 && !v.paused && v.readyState >= 2; }"""


@pytest.fixture
def browser(chromium_path):
    need((ROOT / "static" / "vendor" / "socket.io.min.js").is_file(),
         "static/vendor/ is missing the browser libraries: run `bash deploy/vendor.sh`")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(browser):
    contexts = []

    def make():
        context = browser.new_context(viewport=SCREEN, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
        context.grant_permissions(["camera", "microphone"])
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(f"{exc}\n{exc.stack}"))
        return page

    yield make
    pages = [p for c in contexts for p in c.pages]
    for context in contexts:
        context.close()
    mine = [e for p in pages for e in p.errors if "/static/webcast/recorder.js" in e or "/static/webcast/player.js" in e]
    assert mine == [], f"script errors in recorder.js/player.js: {mine}"


def kiosk_page(open_page, url: str, code: str):
    page = open_page()
    page.goto(url + "/kiosk/login")
    page.fill("#code", code)
    page.click("[name=submit]")
    page.wait_for_url(url + "/kiosk")
    page.click("#start")
    return page


def lag_behind_live(stage, kiosk) -> float:
    """Seconds between the stage's recorder clock (its time 0 is the recorder's start)
    and what the kiosk shows now."""
    script = "() => (Date.now() - window.stage.state.publisher.stats().started_at) / 1000"
    before = stage.evaluate(script)
    shown = kiosk.evaluate("() => document.getElementById('video').currentTime")
    after = stage.evaluate(script)
    return (before + after) / 2 - shown


def test_stage_streams_to_bridge_points_a_late_one_joins_and_the_recording_is_whole(
        app, world, db_url, hub_factory, open_page):
    rapporteur = make_staff("rapporteur", "bcv")
    lecture = Lecture(title="Chuyên đề 2: Nghị quyết Đại hội", rapporteur_id=rapporteur.id, scheduled_at=now_utc())
    db.session.add(lecture)
    db.session.commit()
    lecture_id = lecture.id
    codes = [bp.kiosk_code for bp in world.bridge_points]
    db.session.rollback()
    hub = hub_factory(db_url, **HUB_ENV, DIEMCAU_MEDIA_STATUS_CHECK_S="0.5")
    url = hub.url

    kiosks = [kiosk_page(open_page, url, code) for code in codes[:2]]
    stage = open_page()
    staff_login(stage, url, "bcv")
    stage.goto(f"{url}/lectures/{lecture_id}/stage")
    stage.wait_for_function("document.getElementById('conn').textContent === 'Đã kết nối'")
    stage.wait_for_function("() => { const v = document.getElementById('preview'); return v.videoWidth > 0; }")
    stage.click("#btn-start")
    stage.wait_for_function("() => window.stage.state.publisher && window.stage.state.publisher.stats().acked_bytes > 0")
    started = time.monotonic()

    # two bridge points play: the picture has a size and the time runs
    for kiosk in kiosks:
        kiosk.wait_for_function(PLAYING, timeout=WAIT_MS)
    before = [k.evaluate("document.getElementById('video').currentTime") for k in kiosks]
    kiosks[0].wait_for_timeout(2000)
    after = [k.evaluate("document.getElementById('video').currentTime") for k in kiosks]
    assert all(b - a > 1.2 for a, b in zip(before, after)), (before, after)

    # the stage's link drops: it reconnects by itself, restarts its recorder, the sites follow
    stage.evaluate("() => window.stage.media.io.engine.close()")
    t_drop = time.monotonic()
    stage.wait_for_function("() => { const s = window.stage.state.publisher.stats();"
                            " return s.restarts >= 1 && s.state === 'recording' && s.tracks.av.acked_bytes > 0"
                            " && Date.now() - s.started_at > 1000; }")
    gap = time.monotonic() - t_drop - 1.0
    for kiosk in kiosks:
        kiosk.wait_for_function(PLAYING)
        t = kiosk.evaluate("document.getElementById('video').currentTime")
        kiosk.wait_for_function(f"document.getElementById('video').currentTime > {t} + 1")

    # a third signs in late and plays within a few seconds
    stage.wait_for_timeout(max(0, int((8 - (time.monotonic() - started)) * 1000)))
    t_join = time.monotonic()
    late = kiosk_page(open_page, url, codes[2])
    late.wait_for_function(PLAYING, timeout=WAIT_MS)
    join_s = time.monotonic() - t_join
    assert join_s < 8, f"the late bridge point took {join_s:.1f}s to play"
    kiosks.append(late)

    # everyone plays close to the live edge (target: within 2 s), once settled
    late.wait_for_timeout(3000)
    lags = {i: [] for i in range(len(kiosks))}
    for _ in range(8):
        for i, k in enumerate(kiosks):
            lags[i].append(lag_behind_live(stage, k))
        stage.wait_for_timeout(500)
    medians = {i: statistics.median(v) for i, v in lags.items()}
    print(f"behind live (s): {medians}; late join played after {join_s:.1f}s")
    # the target is 2 s: the sites' median must meet it. One site on a busy machine (this
    # browser decodes three streams and encodes one) may stray, but never past the point
    # where its player jumps to the live edge (3 s behind what it has).
    assert -0.5 < statistics.median(medians.values()) < 2.0, medians
    assert all(-0.5 < m < 3.5 for m in medians.values()), medians
    stats = [k.evaluate("() => window.kiosk.state.player.stats()") for k in kiosks]
    assert all(s["state"] == "playing" and s["received"] > 5 and s["bitrate_kbps"] > 100 for s in stats), stats

    # the rapporteur ends the lecture: the recording is remuxed, seekable, as long as the stream
    stage.on("dialog", lambda d: d.accept())
    streamed = time.monotonic() - started
    stage.click("#btn-stop")
    stage.wait_for_function("document.getElementById('lecture-status').classList.contains('status-ended')")
    path = None

    def finished():
        nonlocal path
        db.session.rollback()
        row = db.session.get(Lecture, lecture_id)
        if row.recording_file:
            path = hub.instance / "recordings" / row.recording_file
        return path is not None and path.exists() and has_cues(path) and row.recording_bytes == path.stat().st_size

    end = time.time() + 60
    while not finished() and time.time() < end:
        time.sleep(0.3)
    assert finished(), "the recording was not remuxed"
    duration = probe_duration_ms(path) / 1000
    assert abs(duration - (streamed - gap)) < 2.5, (duration, streamed, gap)
    for kiosk in kiosks:
        kiosk.wait_for_function("() => window.kiosk.state.player === null || window.kiosk.state.player.stats().state !== 'playing'",
                                timeout=15_000)
