"""Attendance: check-in at bridge points, and camera snapshots analysed for proctors."""
from flask import Flask


def init_app(app: Flask) -> None:
    from .. import realtime
    from ..extensions import socketio
    from . import analysis, cli, models  # noqa: F401
    from .events import ProctorNamespace
    from .views import bp, camera_mount

    app.register_blueprint(bp)
    from ..core.admission import Gate

    # every bridge point's camera may upload at the same moment: a few at a time.
    app.wsgi_app = Gate(app.wsgi_app, ("/api/snapshots",), app.config.get("SNAPSHOT_UPLOAD_SLOTS", 2),
                        app.config.get("SNAPSHOT_UPLOAD_WAIT_SECONDS", 20.0),
                        app.config.get("SNAPSHOT_UPLOAD_RATE", 0.0))
    from .checkin_views import bp as checkin_bp

    app.register_blueprint(checkin_bp)
    app.add_template_global(camera_mount)
    socketio.on_namespace(ProctorNamespace("/proctor"))
    app.cli.add_command(cli.group)
    # each serving hub process runs its analysis workers and the offline-camera ticker.
    realtime.on_serve(app, analysis.run)
