"""Every bridge point's camera at once, in the middle of the exam load (`exam_load.py
--snapshots-at S`): does the learners' ack latency move while the hub stores and
analyses 164 room snapshots?

Each bridge point's kiosk signs in over HTTP with its code, as the room's PC does, and
at S seconds after the open all of them POST one JPEG to /api/snapshots at the same
moment (a thread each, released together). The JPEGs are real classroom photographs from
../shared/faces (read at run time, never copied), centre-cropped and resized to --snapshot-size.
The burst is over when the database says every one of them is analysed.
"""
from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import requests

from hubctl import BenchDB, _csrf

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT.parent / "shared" / "faces"
#: the photographs of rooms and groups (several faces), by file name.
ROOM_PHOTOS = ("dlib_2008_001322.jpg", "dlib_2008_002470.jpg", "ulfd_1.jpg", "ulfd_10.jpg", "ulfd_13.jpg",
               "ulfd_15.jpg", "ulfd_16.jpg", "ulfd_2.jpg", "ulfd_20.jpg", "ulfd_3.jpg", "ulfd_5.jpg", "ulfd_9.jpg")


def room_jpegs(size: tuple[int, int], n: int) -> list[bytes]:
    import cv2

    out = []
    photos = [p for p in (FACES / name for name in ROOM_PHOTOS) if p.is_file()]
    if not photos:
        raise RuntimeError(f"no photographs in {FACES}")
    w, h = size
    for i in range(n):
        img = cv2.imread(str(photos[i % len(photos)]))
        ih, iw = img.shape[:2]
        scale = max(w / iw, h / ih)
        img = cv2.resize(img, (max(w, round(iw * scale)), max(h, round(ih * scale))), interpolation=cv2.INTER_AREA)
        y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        img = img[y:y + h, x:x + w]
        # a little per-site noise, so no two rooms send the same bytes (the hub flags replays)
        img = cv2.add(img, (i % 7, i % 5, i % 3, 0))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        out.append(buf.tobytes())
    return out


#: the control run's "stored" and "analysed" times after t0: a real burst's, at 10,000 learners.
CONTROL_WINDOWS_S = (5.0, 15.0)


class Kiosk:
    def __init__(self, base: str, code: str, upload_base: Optional[str] = None) -> None:
        self.base, self.code = base, code
        #: where the snapshots go: the hub, or a camera process (the cookie is the same)
        self.upload_base = upload_base or base
        self.s = requests.Session()
        self.csrf = ""

    def login(self) -> "Kiosk":
        token = _csrf(self.s.get(self.base + "/kiosk/login", timeout=30).text)
        r = self.s.post(self.base + "/kiosk/login", data={"csrf_token": token, "code": self.code, "submit": "1"},
                        allow_redirects=False, timeout=30)
        if r.status_code not in (302, 303):
            raise RuntimeError(f"kiosk {self.code}: login answered {r.status_code}")
        page = self.s.get(self.base + "/kiosk", timeout=30).text
        m = re.search(r'name="csrf-token" content="([^"]+)"', page)
        if not m:
            raise RuntimeError("no csrf-token on the kiosk page")
        self.csrf = m.group(1)
        return self

    def prepare(self, jpeg: bytes) -> requests.PreparedRequest:
        """The upload, encoded (multipart body, cookie, headers) ahead of the moment it is sent."""
        req = requests.Request("POST", self.upload_base + "/api/snapshots",
                               headers={"X-CSRFToken": self.csrf, "Accept": "application/json"},
                               files={"image": ("room.jpg", jpeg, "image/jpeg")}, data={"kind": "room"})
        return self.s.prepare_request(req)

    def send(self, jpeg: bytes, prepared: Optional[requests.PreparedRequest] = None) -> tuple[float, int, Optional[int]]:
        prepared = prepared or self.prepare(jpeg)
        t = time.monotonic()
        r = self.s.send(prepared, timeout=120)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        return time.monotonic() - t, r.status_code, body.get("id")


class SnapshotBurst(threading.Thread):
    """Sign the kiosks in now; `start()` then waits for `at_wall` and sends the burst."""

    def __init__(self, base: str, db: BenchDB, n_sites: int, size: tuple[int, int],
                 upload_base: Optional[str] = None, sender_nice: int = 19) -> None:
        super().__init__(daemon=True)
        #: the cameras are 164 PCs elsewhere: their sending costs this machine CPU that is
        #: neither the hub's nor the simulated learners'. At nice 19 the senders take only
        #: what is idle; at 0 they compete with both (and with the ack timing itself).
        self.sender_nice = sender_nice
        codes = [c for (c,) in db.query("SELECT kiosk_code FROM bridge_point ORDER BY id")][:n_sites]
        with ThreadPoolExecutor(16) as pool:
            self.kiosks = list(pool.map(lambda c: Kiosk(base, c, upload_base).login(), codes))
        self.jpegs = room_jpegs(size, len(self.kiosks)) if self.kiosks else []
        self.db, self.size = db, size
        self.at_wall = 0.0
        self.result: dict[str, Any] = {}

    def run(self) -> None:
        try:
            self.result = self._burst()
        except Exception as err:  # noqa: BLE001
            self.result = {"error": f"{type(err).__name__}: {err}"}

    def _burst(self) -> dict[str, Any]:
        n = len(self.kiosks)
        if n == 0:  # the control (--snapshot-sites 0): nothing sent, windows as long as a real burst's
            time.sleep(max(0.0, self.at_wall - time.time()))
            t0 = time.time()
            time.sleep(CONTROL_WINDOWS_S[1])
            return {"sites": 0, "control": True, "t0_wall": t0, "stored_wall": t0 + CONTROL_WINDOWS_S[0],
                    "analysed_wall": t0 + CONTROL_WINDOWS_S[1]}
        # the cameras are PCs elsewhere: their threads are started and their requests
        # encoded before the moment (since 2026-12-04, third session; before, 164 threads
        # were created and 164 bodies encoded inside the measured window, ~0.5 core of
        # this machine in its first half second), and released together at t0.
        gate = threading.Barrier(n + 1)
        prepared = [k.prepare(j) for k, j in zip(self.kiosks, self.jpegs)]

        def one(i: int):
            if self.sender_nice:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.sender_nice)
            gate.wait()
            return self.kiosks[i].send(self.jpegs[i], prepared[i])

        time.sleep(max(0.0, self.at_wall - 2.0 - time.time()))
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(one, i) for i in range(n)]
            time.sleep(max(0.0, self.at_wall - time.time()))
            t0 = time.time()
            gate.wait()
            sent = [f.result() for f in futures]
        t_stored = time.time()
        ids = [sid for _, status, sid in sent if status == 200 and sid]
        done_at = None
        while ids and time.time() - t0 < 300:
            left = self.db.query("SELECT count(*) FROM snapshot WHERE id = ANY(%s) AND status = 'pending'", (ids,))[0][0]
            if left == 0:
                done_at = time.time()
                break
            time.sleep(0.2)
        statuses = self.db.query("SELECT status, count(*) FROM snapshot WHERE id = ANY(%s) GROUP BY status", (ids,)) if ids else []
        ups = sorted(lat for lat, _, _ in sent)
        return {
            "sites": n, "sender_nice": self.sender_nice, "size": f"{self.size[0]}x{self.size[1]}", "jpeg_kb_mean": round(sum(map(len, self.jpegs)) / n / 1024, 1),
            "t0_wall": t0, "stored_wall": t_stored, "analysed_wall": done_at,
            "upload_ok": len(ids), "upload_statuses": sorted({s for _, s, _ in sent}),
            "upload_p50_ms": round(ups[len(ups) // 2] * 1000, 1), "upload_max_ms": round(ups[-1] * 1000, 1),
            "all_stored_s": round(t_stored - t0, 2), "all_analysed_s": round(done_at - t0, 2) if done_at else None,
            "snapshot_status": dict(statuses),
        }


def ack_windows(acks: list[tuple[float, float, str]], burst: dict[str, Any], before_s: float = 20.0) -> dict[str, Any]:
    """Ack latency of answers sent before the burst, while it was stored and analysed, and after."""
    from hubctl import pct

    t0, t1 = burst.get("t0_wall"), burst.get("analysed_wall")
    if not t0:
        return {}
    t1 = t1 or t0 + 30
    span = max(t1 - t0, 5.0)

    def stats(a: float, b: float) -> dict[str, Any]:
        lat = sorted(x for t, x, ph in acks if a <= t < b and ph == "s")
        if not lat:
            return {"n": 0}
        return {"n": len(lat), "from_s": round(a - t0, 1), "to_s": round(b - t0, 1),
                "p50_ms": round(pct(lat, 0.5) * 1000, 1), "p99_ms": round(pct(lat, 0.99) * 1000, 1),
                "max_ms": round(lat[-1] * 1000, 1)}

    out = {"before": stats(t0 - before_s, t0), "during": stats(t0, t0 + span), "after": stats(t0 + span, t0 + span + before_s)}
    stored = burst.get("stored_wall")
    if stored:  # where it moves: while the uploads are stored, or while they are analysed
        out["storing"] = stats(t0, max(stored, t0 + 1.0))
        out["analysing"] = stats(max(stored, t0 + 1.0), t0 + span)
    out["per_second_p99_ms"] = [
        [round(a - t0), stats(a, a + 1.0).get("p99_ms")] for a in (t0 + k for k in range(-5, int(span) + 6))
    ]
    if out["before"].get("n") and out["during"].get("n"):
        out["p99_moved_ms"] = round(out["during"]["p99_ms"] - out["before"]["p99_ms"], 1)
    # at 10,000 learners the steady phase's own p99 swings by 100 ms from one 20-s window
    # to the next: the windows on both sides, together, are the steadier reference.
    both = sorted(x for t, x, ph in acks if ph == "s" and (t0 - before_s <= t < t0 or t0 + span <= t < t0 + span + before_s))
    if both and out["during"].get("n"):
        out["around"] = {"n": len(both), "p50_ms": round(pct(both, 0.5) * 1000, 1), "p99_ms": round(pct(both, 0.99) * 1000, 1)}
        out["p99_moved_vs_around_ms"] = round(out["during"]["p99_ms"] - out["around"]["p99_ms"], 1)
    return out
