"""Attendance: check-in at bridge points, and camera snapshots analysed for proctors."""
from flask import Flask


def init_app(app: Flask) -> None:
    from .. import realtime
    from ..extensions import socketio
    from . import analysis, cli, models  # noqa: F401
    from .events import ProctorNamespace
    from .views import bp, camera_mount

    app.register_blueprint(bp)
    from .checkin_views import bp as checkin_bp

    app.register_blueprint(checkin_bp)
    app.add_template_global(camera_mount)
    socketio.on_namespace(ProctorNamespace("/proctor"))
    app.cli.add_command(cli.group)
    # each serving hub process runs its analysis workers and the offline-camera ticker.
    realtime.on_serve(app, analysis.run)
