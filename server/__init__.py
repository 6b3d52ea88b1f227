"""Điểm Cầu hub: the Flask application factory. It only wires; it queries nothing."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Flask is imported inside create_app, after realtime.patch() had its turn
    from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("core", "places", "accounts", "questions", "exam", "webcast", "attendance", "review", "reports", "demo")


def create_app(config: dict[str, Any] | None = None) -> "Flask":
    from flask import Flask

    import config as settings

    app = Flask(
        __name__,
        instance_path=os.environ.get("DIEMCAU_INSTANCE", str(ROOT / "instance")),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(settings.load(config))
    _fill_embedded_defaults(app)

    from . import extensions as ext

    ext.db.init_app(app)
    ext.migrate.init_app(app, ext.db, directory=str(ROOT / "server" / "migrations"), render_as_batch=True)
    ext.login_manager.init_app(app)
    ext.csrf.init_app(app)
    from .core.sockets import client_manager

    ext.socketio.init_app(
        app,
        async_mode=app.config["ASYNC_MODE"],
        client_manager=client_manager(app.config["REDIS_URL"]),
        # engine-level cap; each event also checks its own, smaller limit and says why.
        max_http_buffer_size=max(app.config["MAX_SOCKET_MESSAGE"] * 16, 1_000_000),
        ping_interval=app.config["SOCKET_PING_INTERVAL"],
        ping_timeout=app.config["SOCKET_PING_TIMEOUT"],
        cors_allowed_origins=app.config.get("CORS_ORIGINS"),
        logger=False,
        engineio_logger=False,
    )

    import importlib

    for name in DOMAINS:
        importlib.import_module(f".{name}", __name__).init_app(app)
    from . import views

    views.init_app(app)
    return app


def _fill_embedded_defaults(app: "Flask") -> None:
    """SQLite in the instance folder and a per-installation secret key, unless configured."""
    instance = Path(app.instance_path)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        instance.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'diemcau.sqlite3'}"
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgres://"):
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            # recycle instead of a ping per checkout: one round trip less per event.
            "pool_recycle": 1800, "pool_size": 20, "max_overflow": 20,
            # UPDATE executemany (scores at close) in pages, not one round trip per row.
            "executemany_mode": "values_plus_batch",
        }
    if not app.config.get("SECRET_KEY"):
        instance.mkdir(parents=True, exist_ok=True)
        key_file = instance / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        app.config["SECRET_KEY"] = key_file.read_text().strip()
