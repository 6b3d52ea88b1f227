"""Bench helpers: a fresh database, one hub process, the organizer's HTTP session,
and samplers of CPU and memory. Everything started here is stopped by PID."""
from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
FLASK = str(ROOT / ".venv" / "bin" / "flask")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "bench-secret-diemcau"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# database ----------------------------------------------------------------------
class BenchDB:
    """A fresh PostgreSQL database (or SQLite file) for one run, dropped afterwards."""

    def __init__(self, kind: str, name: str, tmp: Path) -> None:
        self.kind, self.name, self.tmp = kind, name, tmp
        if kind == "postgresql":
            self.url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        else:
            self.url = f"sqlite:///{tmp / (name + '.sqlite3')}"
        self.created = False

    def _admin(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(PG_ADMIN)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create(self) -> "BenchDB":
        if self.kind == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self

    def drop(self) -> None:
        if not self.created:
            return
        if self.kind == "postgresql":
            for _ in range(3):
                try:
                    self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                    break
                except Exception as err:  # noqa: BLE001
                    print(f"drop database failed: {err}", file=sys.stderr)
                    time.sleep(1)
        else:
            Path(self.url[len("sqlite:///"):]).unlink(missing_ok=True)
        self.created = False

    def connect(self):
        if self.kind == "postgresql":
            import psycopg2

            conn = psycopg2.connect(self.url)
            conn.autocommit = True
            return conn
        conn = sqlite3.connect(self.url[len("sqlite:///"):], timeout=30, isolation_level=None)
        return conn

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            if self.kind != "postgresql":
                sql = sql.replace("%s", "?")
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else []
            cur.close()
            return rows
        finally:
            conn.close()


def hub_env(db: BenchDB, mode: str, instance: Path, extra: Optional[dict] = None) -> dict:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DIEMCAU_ASYNC_MODE=mode,
        DATABASE_URL=db.url,
        DIEMCAU_INSTANCE=str(instance),
        SECRET_KEY=SECRET,
        PYTHONUNBUFFERED="1",
        FLASK_APP="server",
    )
    env.update(extra or {})
    return env


def flask_cli(env: dict, *args: str, timeout: float = 600) -> str:
    out = subprocess.run([FLASK, "--app", "server", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return out.stdout


def prepare(db: BenchDB, env: dict, learners: int, duration_minutes: int, tokens_path: Path) -> list[str]:
    """Migrations, the demo province with `learners` learners and exam #1, the tokens."""
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "demo", "create", "--learners", str(learners))
    db.query("UPDATE exam SET duration_minutes = %s WHERE id = 1", (duration_minutes,))
    flask_cli(env, "exam", "tokens", "1", "--out", str(tokens_path))
    tokens = tokens_path.read_text().split()
    if len(tokens) != learners:
        raise RuntimeError(f"expected {learners} tokens, got {len(tokens)}")
    return tokens


# the hub -----------------------------------------------------------------------
class Hub:
    def __init__(self, env: dict, port: int, log_path: Path, launcher: Optional[str] = None) -> None:
        self.env, self.port, self.log_path = env, port, log_path
        #: a script to run instead of `-m server` (e.g. bench/hub_debug.py)
        self.launcher = launcher
        self.url = f"http://127.0.0.1:{port}"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> "Hub":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PY, *([self.launcher] if self.launcher else ["-m", "server"]), "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hub did not start: {self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_problems(self) -> dict:
        text = self.log()
        lines = text.splitlines()
        tracebacks = text.count("Traceback (most recent call last)")
        errors = [ln for ln in lines if re.search(r"\b(ERROR|CRITICAL|Exception|Error:)\b", ln)]
        return {"tracebacks": tracebacks, "error_lines": len(errors), "sample": errors[:15],
                "tail": "\n".join(lines[-40:]) if tracebacks or errors else ""}


class CpuCap:
    """Caps one process at `cores` of CPU time, checked every `period_us` (Linux cgroup v1's
    cpu controller under /sys/fs/cgroup/cpu; needs root): the hub of a slower or busier
    machine, on this one. Its children started before the cap (the analysis processes)
    are not capped. Bench only."""

    ROOT = Path("/sys/fs/cgroup/cpu")

    def __init__(self, pid: int, cores: float, period_us: int = 10_000) -> None:
        if not (self.ROOT / "cgroup.procs").exists():
            raise RuntimeError(f"no cgroup v1 cpu controller at {self.ROOT}: --hub-cpu-max needs one")
        self.cores, self.period_us = cores, period_us
        self.path = self.ROOT / f"diemcau_bench_{os.getpid()}_{pid}"
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(period_us))
        (self.path / "cpu.cfs_quota_us").write_text(str(int(cores * period_us)))
        (self.path / "cgroup.procs").write_text(str(pid))

    def stats(self) -> dict:
        """Periods, how many of them throttled the hub, and for how long in all."""
        try:
            raw = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        except OSError:
            return {}
        return {"cores": self.cores, "period_us": self.period_us, "nr_periods": int(raw.get("nr_periods", 0)),
                "nr_throttled": int(raw.get("nr_throttled", 0)),
                "throttled_s": round(int(raw.get("throttled_time", 0)) / 1e9, 2)}

    def remove(self) -> None:
        """Hands any process left in it back to the root group, then removes it."""
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                try:
                    (self.ROOT / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            self.path.rmdir()
        except OSError:
            pass


# the organizer -----------------------------------------------------------------
def _csrf(html: str, field: str = "csrf_token") -> str:
    f = re.escape(field)
    m = re.search(rf'name="{f}"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="{f}"', html)
    if not m:
        raise RuntimeError(f"no {field} in page")
    return m.group(1) or m.group(2)


class Organizer:
    def __init__(self, base: str) -> None:
        self.base = base
        self.s = requests.Session()
        self.csrf = ""

    def login(self, username: str = "bantochuc", password: str = "demo-lai-chau") -> None:
        page = self.s.get(self.base + "/login", timeout=30)
        token = _csrf(page.text, "staff-csrf_token")
        r = self.s.post(self.base + "/login", data={
            "staff-csrf_token": token, "staff-username": username, "staff-password": password, "staff-submit": "1",
        }, allow_redirects=False, timeout=30)
        if r.status_code not in (302, 303):
            raise RuntimeError(f"organizer login failed: {r.status_code} {r.text[:500]}")
        self.csrf = _csrf(self.s.get(self.base + "/exams/1", timeout=30).text)

    def open_exam(self, exam_id: int = 1) -> requests.Response:
        r = self.s.post(f"{self.base}/exams/{exam_id}/open", data={"csrf_token": self.csrf},
                        allow_redirects=False, timeout=60)
        if r.status_code not in (302, 303):
            raise RuntimeError(f"open failed: {r.status_code} {r.text[:500]}")
        return r

    def results_xlsx(self, exam_id: int = 1) -> tuple[float, int, int]:
        t = time.monotonic()
        r = self.s.get(f"{self.base}/exams/{exam_id}/results.xlsx", timeout=120)
        return time.monotonic() - t, r.status_code, len(r.content)


# samplers ----------------------------------------------------------------------
class PgActivity(threading.Thread):
    """Every `every` seconds: what the hub's PostgreSQL connections are doing
    (state, wait event, the start of the query), counted."""

    def __init__(self, db: "BenchDB", every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.db, self.every = db, every
        self.samples: list[tuple[float, list]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        if self.db.kind != "postgresql":
            return
        conn = self.db.connect()
        try:
            cur = conn.cursor()
            while not self._stop.is_set():
                cur.execute(
                    "SELECT state, coalesce(wait_event_type || ':' || wait_event, ''), left(regexp_replace(query, '\\s+', ' ', 'g'), 70), "
                    "count(*), max(extract(epoch from now() - xact_start)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1, 2, 3 ORDER BY 4 DESC")
                self.samples.append((time.time(), [list(r) for r in cur.fetchall()]))
                self._stop.wait(self.every)
        except Exception as err:  # noqa: BLE001
            self.samples.append((time.time(), [["sampler failed", repr(err), "", 0, 0]]))
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict:
        """Peak connections, and the most frequent (state, wait, query) seen."""
        from collections import Counter

        peak = max((sum(r[3] for r in rows) for _, rows in self.samples), default=0)
        seen: Counter = Counter()
        for _, rows in self.samples:
            for st, wait, q, n, _ in rows:
                seen[f"{st} | {wait} | {q}"] += n
        n = max(len(self.samples), 1)
        return {"peak_connections": peak, "mean_connections_by_kind": {k: round(v / n, 2) for k, v in seen.most_common(12)}}



class Sampler(threading.Thread):
    """Every `every` seconds: the hub's CPU time and RSS, the workers' CPU time, and the
    CPU time of all PostgreSQL processes (the database shares the 2 cores)."""

    def __init__(self, hub_pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.hub = psutil.Process(hub_pid)
        self.every = every
        self.samples: list[dict] = []
        self.worker_pids: list[int] = []
        self._stop = threading.Event()

    def snapshot(self) -> dict:
        t = time.time()
        try:
            ct = self.hub.cpu_times()
            hub_cpu = ct.user + ct.system
            rss = self.hub.memory_info().rss
            threads = self.hub.num_threads()
        except psutil.Error:
            hub_cpu, rss, threads = float("nan"), 0, 0
        wcpu = 0.0
        for pid in self.worker_pids:
            try:
                c = psutil.Process(pid).cpu_times()
                wcpu += c.user + c.system
            except psutil.Error:
                pass
        pg = 0.0
        for p in psutil.process_iter(["name", "cpu_times"]):
            if p.info["name"] and p.info["name"].startswith("postgres") and p.info["cpu_times"]:
                pg += p.info["cpu_times"].user + p.info["cpu_times"].system
        # the hub's children (analysis worker processes), this bench process (the camera
        # senders' threads live here) and the machine's idle and steal time.
        kids = 0.0
        try:
            for c in self.hub.children(recursive=True):
                try:
                    ct = c.cpu_times()
                    kids += ct.user + ct.system
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        me = psutil.Process().cpu_times()
        mc = psutil.cpu_times()
        return {"t": t, "hub_cpu": hub_cpu, "rss": rss, "threads": threads, "workers_cpu": wcpu, "pg_cpu": pg,
                "hub_children_cpu": kids, "bench_cpu": me.user + me.system,
                "idle": mc.idle + getattr(mc, "iowait", 0.0), "steal": getattr(mc, "steal", 0.0)}

    def run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.snapshot())
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()

    def between(self, t0: float, t1: float) -> dict:
        """CPU use (in cores) of the hub, the workers and PostgreSQL between two wall times."""
        s = self.samples
        if len(s) < 2 or t1 <= t0:
            return {}
        a = min(s, key=lambda x: abs(x["t"] - t0))
        b = min(s, key=lambda x: abs(x["t"] - t1))
        dt = b["t"] - a["t"]
        if dt <= 0:
            return {}
        return {
            "seconds": round(dt, 1),
            "hub_cores": round((b["hub_cpu"] - a["hub_cpu"]) / dt, 3),
            "workers_cores": round((b["workers_cpu"] - a["workers_cpu"]) / dt, 3),
            "pg_cores": round((b["pg_cpu"] - a["pg_cpu"]) / dt, 3),
            "hub_rss_mb_end": round(b["rss"] / 2**20, 1),
        }


def pct(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    f = int(k)
    c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)
