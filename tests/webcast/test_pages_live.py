"""The webcast's pages and `/live` over real python-socketio clients against a live hub.

Kiosks sign in with their bridge point's code over HTTP, as the room's PC does, and
open `/live` with the kiosk token the page carries. The hub runs with short health
settings (flush 0.3 s, online 1.5 s, offline alert 2 s) so that the batch writes and
the offline alert can be watched in a few seconds.
"""
from __future__ import annotations

import re
import threading
import time

import pytest
import requests
import socketio
import sqlalchemy as sa

from conftest import socket_token_for
from factories import PASSWORD, make_staff
from hub import csrf_of, staff_session
from server.core.timeutil import now_utc
from server.extensions import db
from server.webcast.models import Announcement, Lecture, SiteQuestion, SiteStatus, SlideDeck
from webcast.test_slides import make_pdf

HUB_ENV = {
    "DIEMCAU_WEBCAST_HEALTH_FLUSH_SECONDS": "0.3",
    "DIEMCAU_WEBCAST_ONLINE_SECONDS": "1.5",
    "DIEMCAU_WEBCAST_OFFLINE_ALERT_SECONDS": "2",
}


class Peer:
    """One /live socket, recording what the hub pushes."""

    def __init__(self, url: str, auth: dict):
        self.sio = socketio.Client(reconnection=False)
        self.pushed: list[tuple[str, dict]] = []
        self.got = threading.Condition()
        self.sio.on("*", self._record, namespace="/live")
        self.sio.connect(url, namespaces=["/live"], auth=auth, transports=["websocket"], wait_timeout=10)

    def _record(self, event, data):
        with self.got:
            self.pushed.append((event, data))
            self.got.notify_all()

    def call(self, event, data=None, timeout=10):
        return self.sio.call(event, data, namespace="/live", timeout=timeout)

    def wait_for(self, event, match=lambda data: True, timeout=10.0):
        end = time.time() + timeout
        with self.got:
            while True:
                for ev, data in self.pushed:
                    if ev == event and match(data):
                        return data
                left = end - time.time()
                if left <= 0:
                    raise AssertionError(f"no {event} in {self.pushed}")
                self.got.wait(left)

    def events(self, event):
        with self.got:
            return [data for ev, data in self.pushed if ev == event]

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:
            pass


class Webcast:
    """A committed world with rapporteurs and a planned lecture, a live hub, kiosk logins."""

    def __init__(self, app, world, hub):
        self.app, self.world, self.hub, self.url = app, world, hub, hub.url
        self.rapporteur = make_staff("rapporteur", "bcv")
        self.other_rapporteur = make_staff("rapporteur", "bcv-khac")
        lecture = Lecture(title="Chuyên đề 1: Nghị quyết Đại hội", rapporteur_id=self.rapporteur.id, scheduled_at=now_utc())
        db.session.add(lecture)
        db.session.commit()
        self.lecture_id = lecture.id
        self.sites = [(bp.id, bp.kiosk_code, bp.district_id) for bp in world.bridge_points]
        self.tokens = {role: socket_token_for(app, user.id) for role, user in world.staff.items()}
        self.tokens["rapporteur"] = socket_token_for(app, self.rapporteur.id)
        self.tokens["other_rapporteur"] = socket_token_for(app, self.other_rapporteur.id)
        self.tokens["learner"] = socket_token_for(app, world.learners[0].id)
        db.session.rollback()
        self.peers: list[Peer] = []
        self.kiosk_sessions: dict[int, requests.Session] = {}

    def kiosk_login(self, index: int) -> tuple[requests.Session, str]:
        s = requests.Session()
        r = kiosk_post(s, self.url, self.sites[index][1])
        assert r.status_code == 302 and r.headers["Location"].endswith("/kiosk"), r.text[:300]
        page = s.get(self.url + "/kiosk", timeout=10).text
        token = re.search(r'data-token="([^"]+)"', page).group(1)
        self.kiosk_sessions[index] = s
        return s, token

    def kiosk(self, index: int) -> Peer:
        _, token = self.kiosk_login(index)
        return self.peer({"kiosk": token})

    def person(self, role: str) -> Peer:
        return self.peer({"token": self.tokens[role]})

    def peer(self, auth: dict) -> Peer:
        p = Peer(self.url, auth)
        self.peers.append(p)
        return p

    def upload(self, data: bytes, filename: str = "bai-giang.pdf", username: str = "bcv") -> requests.Response:
        s = staff_session(self.url, username, PASSWORD)
        stage = f"{self.url}/lectures/{self.lecture_id}/stage"
        return s.post(f"{self.url}/lectures/{self.lecture_id}/slides", files={"file": (filename, data, "application/pdf")},
                      headers={"Accept": "application/json", "X-CSRFToken": csrf_of(s, stage)}, timeout=60)


@pytest.fixture
def webcast(app, world, db_url, hub_factory):
    hub = hub_factory(db_url, **HUB_ENV)
    w = Webcast(app, world, hub)
    yield w
    for p in w.peers:
        p.close()


def kiosk_post(s: requests.Session, url: str, code: str, **extra) -> requests.Response:
    """The kiosk login form, CSRF token included, as the room's browser sends it."""
    token = csrf_of(s, url + "/kiosk/login")
    return s.post(url + "/kiosk/login", data={"csrf_token": token, "code": code, **extra}, timeout=10, allow_redirects=False)


def fresh(model, key):
    db.session.rollback()
    return db.session.get(model, key)


# kiosk sign-in ------------------------------------------------------------------------------

def test_kiosk_signs_in_with_its_code_and_a_wrong_code_is_refused(webcast):
    url = webcast.url
    s = requests.Session()
    assert s.get(url + "/kiosk", timeout=10, allow_redirects=False).headers["Location"].endswith("/kiosk/login")
    r = kiosk_post(s, url, "SAI-MA-99")
    assert r.status_code == 400 and "Mã đăng nhập không đúng" in r.text
    r = kiosk_post(s, url, "")
    assert r.status_code == 400 and "Hãy nhập mã đăng nhập" in r.text
    # without the form's CSRF token even the right code is refused
    r = s.post(url + "/kiosk/login", data={"code": webcast.sites[0][1]}, timeout=10, allow_redirects=False)
    assert r.status_code == 400
    assert s.get(url + "/kiosk/token", timeout=10).status_code == 401
    # the code as typed on the room's keyboard: lower case, spaces around
    r = kiosk_post(s, url, "  " + webcast.sites[0][1].lower() + " ")
    assert r.status_code == 302
    page = s.get(url + "/kiosk", timeout=10)
    assert page.status_code == 200 and "D1-01" in page.text and 'id="kiosk-i18n"' in page.text
    assert s.get(url + "/kiosk/token", timeout=10).json()["ok"] is True

    with pytest.raises(socketio.exceptions.ConnectionError):
        Peer(url, {"kiosk": "gia-mao"})
    kiosk = webcast.peer({"kiosk": re.search(r'data-token="([^"]+)"', page.text).group(1)})
    state = kiosk.call("kiosk.sync")
    assert state["ok"] and state["bridge_point"]["code"] == "D1-01"
    assert state["lecture"] is None and state["slide"] is None and state["mode"]["track"] == "av"
    # a staff page's events are not a kiosk's
    assert kiosk.call("control.grid")["error"]["code"] == "control.organizers_only"
    assert kiosk.call("no.such.event")["error"]["code"] == "event.unknown"


# slides -------------------------------------------------------------------------------------

def test_slides_upload_flip_to_two_kiosks_and_a_late_joiner_opens_on_the_current_page(webcast, tmp_path):
    bad = webcast.upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "anh.pdf")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "slides.not_pdf"
    assert "không phải là PDF" in bad.json()["error"]["message"]
    cut = make_pdf(4)
    bad = webcast.upload(cut[: len(cut) // 2])
    assert bad.json()["error"]["code"] == "slides.corrupt"
    assert bad.json()["error"]["message"].startswith("Tệp PDF bị hỏng")
    assert webcast.upload(make_pdf(2, encrypt="user")).json()["error"]["code"] == "slides.encrypted"
    assert fresh(Lecture, webcast.lecture_id).current_deck_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SlideDeck)) == 0
    assert not any((tmp_path / "slides").iterdir())  # nothing stored on refusal
    # another rapporteur's stage is not theirs
    assert webcast.upload(make_pdf(2), username="bcv-khac").status_code == 403

    ok = webcast.upload(make_pdf(5))
    assert ok.status_code == 200 and ok.json()["ok"], ok.text
    assert ok.json()["slide"]["page"] == 1 and ok.json()["slide"]["n_pages"] == 5
    deck = db.session.get(SlideDeck, ok.json()["deck_id"])
    assert sorted(p.name for p in (tmp_path / "slides" / deck.folder).iterdir()) == [f"{n}.png" for n in range(1, 6)]

    stage = webcast.person("rapporteur")
    joined = stage.call("stage.join", {"lecture_id": webcast.lecture_id})
    assert joined["ok"] and joined["slide"]["page"] == 1 and len(joined["decks"]) == 1
    assert stage.call("lecture.start", {"lecture_id": webcast.lecture_id})["lecture"]["status"] == "live"
    a, b = webcast.kiosk(0), webcast.kiosk(1)
    sa_, sb = a.call("kiosk.sync"), b.call("kiosk.sync")
    assert sa_["lecture"]["id"] == webcast.lecture_id and sa_["slide"]["page"] == 1 and sb["slide"]["deck_id"] == deck.id

    flipped = stage.call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 3})
    assert flipped["ok"] and flipped["slide"]["page"] == 3
    for kiosk in (a, b):
        pushed = kiosk.wait_for("slide.changed", lambda d: d["page"] == 3)
        assert pushed == {**flipped["slide"], "at_ms": pushed["at_ms"]}
        assert set(pushed) >= {"lecture_id", "deck_id", "page", "url", "n_pages"}
    assert fresh(Lecture, webcast.lecture_id).current_page == 3

    # the page image: for a signed-in kiosk, not for anyone
    image = webcast.kiosk_sessions[0].get(webcast.url + flipped["slide"]["url"], timeout=10)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png" and image.content[:4] == b"\x89PNG"
    assert requests.get(webcast.url + flipped["slide"]["url"], timeout=10).status_code == 403
    assert webcast.kiosk_sessions[0].get(webcast.url + f"/slides/{deck.folder}/6.png", timeout=10).status_code == 404

    late = webcast.kiosk(2)
    assert late.call("kiosk.sync")["slide"]["page"] == 3

    # refusals: none of them changes what the rooms see
    for payload, code in [
        ({"lecture_id": webcast.lecture_id, "page": 6}, "slide.bad_page"),
        ({"lecture_id": webcast.lecture_id, "page": 0}, "slide.bad_page"),
        ({"lecture_id": webcast.lecture_id, "page": "3"}, "payload.bad_field"),
        ({"lecture_id": webcast.lecture_id}, "payload.missing_field"),
        ({"lecture_id": 99999, "page": 1}, "lecture.unknown"),
        ({"lecture_id": webcast.lecture_id, "page": 2, "deck_id": 4242}, "slide.unknown_deck"),
    ]:
        ack = stage.call("slide.flip", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (payload, ack)
    bad_page = stage.call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 6})["error"]
    assert bad_page["message"] == "Không có trang 6: tệp có 5 trang." and bad_page["details"]["n_pages"] == 5
    assert a.call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 2})["error"]["code"] == "lecture.forbidden"
    assert webcast.person("other_rapporteur").call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 2})["error"]["code"] == "lecture.forbidden"
    assert webcast.person("learner").call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 2})["error"]["code"] == "lecture.forbidden"
    assert webcast.person("district_organizer").call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 2})["error"]["code"] == "lecture.forbidden"
    time.sleep(0.3)
    assert [d["page"] for d in a.events("slide.changed")] == [3]
    assert fresh(Lecture, webcast.lecture_id).current_page == 3
    # a province organizer may flip too; a learner following the slides sees it
    learner = webcast.person("learner")
    assert learner.call("lecture.watch", {"lecture_id": webcast.lecture_id})["slide"]["page"] == 3
    assert webcast.person("organizer").call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 5})["ok"]
    assert learner.wait_for("slide.changed")["page"] == 5
    assert late.wait_for("slide.changed", lambda d: d["page"] == 5)

    # the lecture ends: the kiosks are told, and a new sync shows nothing live
    assert stage.call("lecture.stop", {"lecture_id": webcast.lecture_id})["lecture"]["status"] == "ended"
    assert a.wait_for("lecture.state", lambda d: d["status"] == "ended")["id"] == webcast.lecture_id
    assert a.call("kiosk.sync")["lecture"] is None
    assert stage.call("lecture.stop", {"lecture_id": webcast.lecture_id})["error"]["code"] == "lecture.not_live"
    assert stage.call("slide.flip", {"lecture_id": webcast.lecture_id, "page": 1})["error"]["code"] == "lecture.ended"


# questions ------------------------------------------------------------------------------------

def test_questions_from_sites_are_stored_pushed_to_the_stage_and_marked(webcast):
    lid = webcast.lecture_id
    stage = webcast.person("rapporteur")
    stage.call("stage.join", {"lecture_id": lid})
    kiosk = webcast.kiosk(0)
    kiosk.call("kiosk.sync")
    assert kiosk.call("site.question", {"lecture_id": lid, "kind": "question", "text": "Hỏi?"})["error"]["code"] == "lecture.not_live"
    stage.call("lecture.start", {"lecture_id": lid})

    text = "Xin báo cáo viên nói rõ hơn về nội dung thứ hai?"
    decomposed = "Xin bao cao vie\u0302n"  # "viên" typed with a combining circumflex
    ack = kiosk.call("site.question", {"lecture_id": lid, "kind": "question", "text": "  " + text + " "})
    assert ack["ok"] and ack["created"] and ack["question"]["text"] == text and ack["question"]["site_code"] == "D1-01"
    pushed = stage.wait_for("question.new")
    assert pushed["id"] == ack["question"]["id"] and pushed["kind"] == "question" and pushed["status"] == "open"
    nfc = kiosk.call("site.question", {"lecture_id": lid, "kind": "question", "text": decomposed})
    assert nfc["question"]["text"] == "Xin bao cao viên"

    hand = kiosk.call("site.question", {"lecture_id": lid, "kind": "hand"})
    assert hand["ok"] and hand["created"]
    again = kiosk.call("site.question", {"lecture_id": lid, "kind": "hand"})
    assert again["ok"] and not again["created"] and again["question"]["id"] == hand["question"]["id"]

    for payload, code in [
        ({"lecture_id": lid, "kind": "question", "text": "   "}, "text.empty"),
        ({"lecture_id": lid, "kind": "question"}, "text.empty"),
        ({"lecture_id": lid, "kind": "question", "text": "a" * 1001}, "text.too_long"),
        ({"lecture_id": lid, "kind": "question", "text": "á" * 5000}, "payload.too_large"),
        ({"lecture_id": lid, "kind": "question", "text": "a\u0301" * 1000}, "ok"),  # NFD: 2000 code points, 1000 letters
        ({"lecture_id": lid, "kind": "vote", "text": "x"}, "question.bad_kind"),
        ({"lecture_id": lid, "kind": "question", "text": 5}, "payload.bad_field"),
        ({"lecture_id": 4242, "kind": "question", "text": "x"}, "lecture.unknown"),
    ]:
        ack_bad = kiosk.call("site.question", payload)
        if code == "ok":
            assert ack_bad["ok"] and ack_bad["question"]["text"] == "á" * 1000, ack_bad
            continue
        assert ack_bad["ok"] is False and ack_bad["error"]["code"] == code, (payload, ack_bad)
    # a learner (or the rapporteur) is not a site
    assert webcast.person("learner").call("site.question", {"lecture_id": lid, "kind": "question", "text": "x"})["error"]["code"] == "site.kiosk_only"
    assert stage.call("site.question", {"lecture_id": lid, "kind": "hand"})["error"]["code"] == "site.kiosk_only"
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SiteQuestion)) == 4

    qid = ack["question"]["id"]
    assert kiosk.call("question.mark", {"id": qid, "status": "answered"})["error"]["code"] == "lecture.forbidden"
    assert stage.call("question.mark", {"id": qid, "status": "done"})["error"]["code"] == "question.bad_status"
    assert stage.call("question.mark", {"id": 4242, "status": "answered"})["error"]["code"] == "question.unknown"
    marked = stage.call("question.mark", {"id": qid, "status": "answered"})
    assert marked["ok"] and marked["question"]["status"] == "answered" and marked["question"]["answered_ms"]
    assert kiosk.wait_for("question.changed")["id"] == qid
    assert stage.call("question.mark", {"id": hand["question"]["id"], "status": "dismissed"})["ok"]
    assert fresh(SiteQuestion, qid).status == "answered"

    # a site that floods the queue is asked to wait; the others are not
    assert kiosk.call("site.question", {"lecture_id": lid, "kind": "question", "text": "Câu cuối"})["ok"]
    assert kiosk.call("site.question", {"lecture_id": lid, "kind": "question", "text": "Nữa"})["error"]["code"] == "question.too_fast"
    other = webcast.kiosk(1)
    assert other.call("site.question", {"lecture_id": lid, "kind": "question", "text": "Điểm cầu khác hỏi"})["ok"]

    # the transcript stays with the lecture, with times and sites
    again_join = stage.call("stage.join", {"lecture_id": lid})
    assert [q["status"] for q in again_join["questions"][:3]] == ["answered", "open", "dismissed"]
    s = staff_session(webcast.url, "btc", PASSWORD)
    page = s.get(f"{webcast.url}/lectures/{lid}", timeout=10).text
    assert text in page and "D1-01" in page and "Đã trả lời" in page and "Giơ tay phát biểu" in page
    # a district organizer sees only their district's sites in it
    page = staff_session(webcast.url, "btc-huyen2", PASSWORD).get(f"{webcast.url}/lectures/{lid}", timeout=10).text
    assert text not in page and "Điểm cầu khác hỏi" not in page


# announcements ---------------------------------------------------------------------------------

def test_announcements_reach_exactly_one_site_a_district_or_all(webcast):
    kiosks = [webcast.kiosk(i) for i in range(4)]  # D1-01, D1-02 in district 1; D2-01, D2-02 in district 2
    for k in kiosks:
        k.call("kiosk.sync")
    control = webcast.person("organizer")
    site0, district2 = webcast.sites[0][0], webcast.sites[2][2]

    def sent(payload):
        ack = control.call("control.announce", payload)
        assert ack["ok"], ack
        return ack["announcement"]

    one = sent({"target": "site", "id": site0, "text": "Điểm cầu D1-01 kiểm tra loa."})
    district = sent({"target": "district", "id": district2, "text": "Huyện 2 chuẩn bị điểm danh."})
    everyone = sent({"target": "all", "text": "Nghỉ giải lao 15 phút."})
    for k in kiosks:
        k.wait_for("announcement", lambda d: d["id"] == everyone["id"])
    time.sleep(0.3)
    got = [sorted(a["id"] for a in k.events("announcement")) for k in kiosks]
    assert got == [sorted([one["id"], everyone["id"]]), [everyone["id"]],
                   sorted([district["id"], everyone["id"]]), sorted([district["id"], everyone["id"]])]
    assert kiosks[2].events("announcement")[0]["text"] == "Huyện 2 chuẩn bị điểm danh."
    # a kiosk that reconnects is shown them again
    back = webcast.kiosk(0).call("kiosk.sync")
    assert [a["id"] for a in back["announcements"]] == [everyone["id"], one["id"]]

    local = webcast.person("district_organizer")
    assert local.call("control.announce", {"target": "all", "text": "x"})["error"]["code"] == "scope.province_only"
    assert local.call("control.announce", {"target": "site", "id": site0, "text": "x"})["error"]["code"] == "scope.outside"
    assert local.call("control.announce", {"target": "district", "id": webcast.sites[0][2], "text": "x"})["error"]["code"] == "scope.outside"
    assert local.call("control.announce", {"target": "district", "id": district2, "text": "Của huyện 2"})["ok"]
    for payload, code in [
        ({"target": "site", "id": 4242, "text": "x"}, "announce.unknown_site"),
        ({"target": "planet", "text": "x"}, "announce.bad_target"),
        ({"target": "all", "text": ""}, "text.empty"),
        ({"target": "all", "text": "b" * 1001}, "text.too_long"),
    ]:
        assert control.call("control.announce", payload)["error"]["code"] == code
    assert kiosks[0].call("control.announce", {"target": "all", "text": "x"})["error"]["code"] == "control.organizers_only"
    assert webcast.person("rapporteur").call("control.announce", {"target": "all", "text": "x"})["error"]["code"] == "control.organizers_only"
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Announcement)) == 4


# the control room ------------------------------------------------------------------------------

def test_control_room_scope_health_after_the_batch_flush_and_the_offline_alert(webcast):
    lid = webcast.lecture_id
    stage = webcast.person("rapporteur")
    stage.call("stage.join", {"lecture_id": lid})
    stage.call("lecture.start", {"lecture_id": lid})
    control = webcast.person("organizer")
    grid = control.call("control.watch", {})
    assert grid["ok"] and grid["total"]["sites"] == 4 and grid["total"]["online"] == 0
    assert all(not s["alert"] for s in grid["sites"])  # never seen is not an alert
    local = webcast.person("district_organizer").call("control.watch", {})
    assert {s["code"] for s in local["sites"]} == {"D2-01", "D2-02"} and [d["name"] for d in local["districts"]] == ["Huyện 2"]
    assert webcast.person("district_organizer").call("control.grid", {"district_id": webcast.sites[0][2]})["sites"] == []
    assert webcast.person("proctor").call("control.grid", {})["error"]["code"] == "control.organizers_only"
    assert {s["code"] for s in control.call("control.grid", {"district_id": webcast.sites[0][2]})["sites"]} == {"D1-01", "D1-02"}

    kiosk = webcast.kiosk(2)  # D2-01
    kiosk.call("kiosk.sync")
    report = {"state": "playing", "buffer_s": 1.8, "bitrate_kbps": 1450.5, "dropped": 2, "received": 120, "rtt_ms": 85, "track": "av"}
    assert kiosk.call("site.health", report)["ok"]
    for bad, code in [({"buffer_s": -1}, "payload.bad_field"), ({"rtt_ms": "fast"}, "payload.bad_field"),
                      ({"state": "x" * 40}, "payload.bad_field"), ("nope", "payload.malformed")]:
        assert kiosk.call("site.health", bad)["error"]["code"] == code
    assert stage.call("site.health", report)["error"]["code"] == "site.kiosk_only"

    control.wait_for("control.changed", timeout=5)
    deadline = time.time() + 5
    while True:
        grid = control.call("control.grid", {})
        site = next(s for s in grid["sites"] if s["code"] == "D2-01")
        if site["online"] and site["health"] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert site["online"] and site["lecture_id"] == lid and site["lecture_title"].startswith("Chuyên đề 1")
    assert site["health"]["buffer_s"] == 1.8 and site["health"]["rtt_ms"] == 85 and site["health"]["state"] == "playing"
    assert grid["total"]["online"] == 1 and grid["total"]["watching"] == 1
    watchers = stage.wait_for("lecture.sites", lambda d: d["watching"] == 1, timeout=5)
    assert watchers["sites"][0]["code"] == "D2-01" and watchers["sites"][0]["health"]["bitrate_kbps"] == 1450.5
    assert stage.call("stage.sites", {"lecture_id": lid})["watching"] == 1
    # batched: one row per site, kept fresh while the kiosk is connected
    first_seen = fresh(SiteStatus, webcast.sites[2][0]).last_seen_at
    time.sleep(0.8)
    assert fresh(SiteStatus, webcast.sites[2][0]).last_seen_at > first_seen

    # forcing audio only: the site is told, the grid shows it; scope holds
    forced = control.call("control.audio_only", {"bridge_point_id": webcast.sites[2][0], "on": True})
    assert forced["ok"] and forced["forced_audio_only"] and forced["track"] == "audio"
    assert kiosk.wait_for("site.mode")["track"] == "audio"
    assert kiosk.call("kiosk.sync")["mode"]["forced_audio_only"] is True
    assert webcast.person("district_organizer").call("control.audio_only", {"bridge_point_id": webcast.sites[0][0], "on": True})["error"]["code"] == "scope.outside"
    assert kiosk.call("control.audio_only", {"bridge_point_id": webcast.sites[2][0], "on": False})["error"]["code"] == "control.organizers_only"
    own = kiosk.call("site.audio_only", {"on": True})
    assert own["ok"] and own["own_audio_only"] and own["audio_only"]
    assert kiosk.call("site.audio_only", {"on": "yes"})["error"]["code"] == "payload.bad_field"
    assert control.call("control.audio_only", {"bridge_point_id": webcast.sites[2][0], "on": False})["ok"]
    assert fresh(SiteStatus, webcast.sites[2][0]).audio_only is True

    # the kiosk drops: offline after 1.5 s, an alert after 2 s
    kiosk.close()
    deadline = time.time() + 8
    while time.time() < deadline:
        site = next(s for s in control.call("control.grid", {})["sites"] if s["code"] == "D2-01")
        if site["alert"]:
            break
        time.sleep(0.25)
    # silent_s is rounded to 0.1 s: a site silent for 2.04 s (> 2, an alert) shows 2.0
    assert site["alert"] and not site["online"] and site["silent_s"] >= 2 and site["lecture_id"] is None
    assert control.call("control.grid", {})["total"]["alerts"] == 1


# lecture pages --------------------------------------------------------------------------------

def test_lecture_pages_create_start_stop_and_the_exam_qr_on_kiosks(webcast):
    url = webcast.url
    org = staff_session(url, "btc", PASSWORD)
    token = csrf_of(org, url + "/lectures/new")
    form = {"csrf_token": token, "title": "Chuyên đề 2", "rapporteur_id": str(webcast.rapporteur.id), "scheduled_at": "32/07/2025 08:00"}
    r = org.post(url + "/lectures/new", data=form, timeout=10)
    assert r.status_code == 400 and "dd/mm/yyyy HH:MM" in r.text
    r = org.post(url + "/lectures/new", data=form | {"rapporteur_id": str(webcast.world.staff["proctor"].id), "scheduled_at": "15/07/2025 08:00"}, timeout=10)
    assert r.status_code == 400 and "Hãy chọn một báo cáo viên" in r.text
    r = org.post(url + "/lectures/new", data=form | {"scheduled_at": "15/07/2025 08:00"}, timeout=10, allow_redirects=False)
    assert r.status_code == 302
    db.session.rollback()
    second = db.session.scalar(sa.select(Lecture).where(Lecture.title == "Chuyên đề 2"))
    assert second.scheduled_at.replace(tzinfo=None).isoformat() == "2025-07-15T01:00:00"  # 08:00 in Vietnam
    listing = org.get(url + "/lectures/", timeout=10).text
    assert "Chuyên đề 2" in listing and "15/07/2025 08:00" in listing
    assert staff_session(url, "btc-huyen2", PASSWORD).get(url + "/lectures/new", timeout=10).status_code == 403
    assert staff_session(url, "bcv-khac", PASSWORD).get(f"{url}/lectures/{webcast.lecture_id}/stage", timeout=10).status_code == 403

    kiosk = webcast.kiosk(0)
    assert kiosk.call("kiosk.sync")["lecture"] is None
    bcv = staff_session(url, "bcv", PASSWORD)
    stage_url = f"{url}/lectures/{webcast.lecture_id}/stage"
    assert "Sân khấu" in bcv.get(stage_url, timeout=10).text
    r = bcv.post(f"{url}/lectures/{webcast.lecture_id}/start", data={"csrf_token": csrf_of(bcv, stage_url)}, timeout=10, allow_redirects=False)
    assert r.status_code == 302
    assert kiosk.wait_for("lecture.state")["status"] == "live"
    assert kiosk.call("kiosk.sync")["lecture"]["id"] == webcast.lecture_id
    # two live: the kiosks follow the most recently started
    r = org.post(f"{url}/lectures/{second.id}/start", data={"csrf_token": csrf_of(org, url + "/lectures/")}, timeout=10, allow_redirects=False)
    assert r.status_code == 302
    kiosk.wait_for("lecture.state", lambda d: d["id"] == second.id)
    assert kiosk.call("kiosk.sync")["lecture"]["id"] == second.id
    # another rapporteur cannot end it
    other = staff_session(url, "bcv-khac", PASSWORD)
    r = other.post(f"{url}/lectures/{second.id}/stop", data={"csrf_token": csrf_of(other, url + "/lectures/")}, timeout=10)
    assert r.status_code == 403 and "Chỉ báo cáo viên của buổi giảng" in r.text
    assert org.post(f"{url}/lectures/{second.id}/stop", data={"csrf_token": csrf_of(org, url + "/lectures/")}, timeout=10, allow_redirects=False).status_code == 302
    assert kiosk.call("kiosk.sync")["lecture"]["id"] == webcast.lecture_id

    # an exam opens: the kiosks show its QR code and link
    exam_id = webcast.world.exam.id
    r = org.post(f"{url}/exams/{exam_id}/open", data={"csrf_token": csrf_of(org, f"{url}/exams/{exam_id}")}, timeout=10, allow_redirects=False)
    assert r.status_code == 302
    exam = kiosk.call("kiosk.sync")["exam"]
    assert exam["exam_id"] == exam_id and exam["path"] == f"/learn/exams/{exam_id}"
    svg = webcast.kiosk_sessions[0].get(url + exam["qr_url"], timeout=10)
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert requests.get(url + exam["qr_url"], timeout=10).status_code == 403

    control = org.get(url + "/control", timeout=10).text
    assert "Phòng điều hành" in control and "control-i18n" in control
    assert bcv.get(url + "/control", timeout=10).status_code == 403
