"""Fixtures: a fresh database per test (migrated by Alembic, real commits), factories,
a live hub on loopback, PostgreSQL and Redis where the machine has them.

Tests that need Chromium, PostgreSQL or Redis skip with a reason where those are
absent, and fail instead when the environment variable CI is set.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("DIEMCAU_ASYNC_MODE", "threading")

SHARED = ROOT.parent / "shared"


def need(condition: bool, reason: str) -> None:
    """Skip with a reason where a resource is missing; in CI, fail instead."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    need(SHARED.is_dir(), f"{SHARED} is missing")
    return SHARED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_config(db_url: str, instance: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": db_url,
        "ASYNC_MODE": "threading",
        "WTF_CSRF_ENABLED": False,
        "RUN_SCHEDULER": False,
    }


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once through Alembic; each test gets a copy."""
    from flask_migrate import upgrade

    from server import create_app

    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    app = create_app(base_config(f"sqlite:///{path}", path.parent))
    with app.app_context():
        upgrade()
        from server.extensions import db

        db.engine.dispose()  # the last connection's close checkpoints the WAL into the file
    return path


@pytest.fixture
def db_url(tmp_path, migrated_template) -> str:
    path = tmp_path / "hub.sqlite3"
    shutil.copy(migrated_template, path)
    return f"sqlite:///{path}"


from flask.testing import FlaskClient  # noqa: E402


class FreshContextClient(FlaskClient):
    """Each request in its own application context, as in production.

    The `app` fixture keeps one app context pushed for the whole test; a request would
    reuse it and with it `g`, where Flask-Login caches the current user, so a login would
    leak into later requests of other clients.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(db_url, tmp_path):
    from server import create_app
    from server.exam import papers

    papers.forget()
    app = create_app(base_config(db_url, tmp_path))
    app.test_client_class = FreshContextClient
    with app.app_context():
        yield app
        from server.extensions import db

        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_app(db_url, tmp_path):
    """An app with CSRF protection on, as in production."""
    from server import create_app

    cfg = base_config(db_url, tmp_path)
    cfg["WTF_CSRF_ENABLED"] = True
    app = create_app(cfg)
    app.test_client_class = FreshContextClient
    with app.app_context():
        yield app


# PostgreSQL and Redis -------------------------------------------------------------

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN, connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database, migrated by Alembic, dropped afterwards."""
    need(_pg_available(), f"PostgreSQL is not reachable at {PG_ADMIN}")
    import uuid

    import psycopg2

    name = f"diemcau_t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        cur = admin.cursor()
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture
def redis_url():
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        ok = True
    except Exception:
        ok = False
    need(ok, f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


def migrate(db_url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    from server import create_app

    app = create_app(base_config(db_url, instance))
    with app.app_context():
        upgrade()


@pytest.fixture
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    need(Path(path).exists(), f"Chromium is not installed at {path}")
    return path


@pytest.fixture
def world(app):
    from factories import make_world

    return make_world()


@pytest.fixture
def hub_factory(tmp_path):
    """Start live hubs on loopback against a given database; all stopped at teardown."""
    from hub import LiveHub

    hubs = []

    def start(db_url: str, mode: str = "gevent", port: int | None = None, **env) -> LiveHub:
        hub = LiveHub(db_url, tmp_path, port or free_port(), mode, {k: str(v) for k, v in env.items()})
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


def socket_token_for(app, user_id: int) -> str:
    from server.accounts.auth import socket_token
    from server.accounts.models import User
    from server.extensions import db

    with app.test_request_context():
        return socket_token(db.session.get(User, user_id))


@pytest.fixture
def pg_app(pg_url, tmp_path):
    """Like `app`, on a fresh PostgreSQL database."""
    from server import create_app
    from server.exam import papers

    migrate(pg_url, tmp_path)
    papers.forget()
    app = create_app(base_config(pg_url, tmp_path))
    with app.app_context():
        yield app
        from server.extensions import db

        db.session.remove()
        db.engine.dispose()
