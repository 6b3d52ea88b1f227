"""A real hub process on loopback for socket, browser and crash tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class LiveHub:
    def __init__(self, db_url: str, instance: Path, port: int, mode: str = "gevent", extra_env: dict | None = None):
        self.db_url, self.instance, self.port, self.mode = db_url, instance, port, mode
        self.url = f"http://127.0.0.1:{port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = instance / f"hub-{port}.log"

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DIEMCAU_ASYNC_MODE=self.mode,
            DATABASE_URL=self.db_url,
            DIEMCAU_INSTANCE=str(self.instance),
            SECRET_KEY="test-secret",
            DIEMCAU_SCHEDULER_INTERVAL="0.2",
            DIEMCAU_PRESENCE_FLUSH_SECONDS="0.5",
            PYTHONUNBUFFERED="1",
        )
        env.pop("REDIS_URL", None)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 20.0) -> "LiveHub":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hub did not start: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the hub gets no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def staff_session(base_url: str, username: str, password: str) -> requests.Session:
    """Log in through the real form, CSRF token included, as a browser would."""
    import re

    s = requests.Session()
    page = s.get(base_url + "/login", timeout=10).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    r = s.post(base_url + "/login", data={"staff-csrf_token": token.group(1), "staff-username": username,
                                          "staff-password": password, "staff-submit": "1"}, timeout=10, allow_redirects=False)
    assert r.status_code == 302, r.text[:500]
    return s


def csrf_of(session: requests.Session, url: str) -> str:
    import re

    page = session.get(url, timeout=10).text
    m = re.search(r'name="csrf-token" content="([^"]+)"', page)
    return m.group(1)
