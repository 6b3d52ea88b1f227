from flask import Flask


def init_app(app: Flask) -> None:
    from ..extensions import socketio
    from . import cli, models  # noqa: F401
    from .events import ExamNamespace, BoardNamespace
    from .views import bp

    app.register_blueprint(bp)
    socketio.on_namespace(ExamNamespace("/exam"))
    socketio.on_namespace(BoardNamespace("/board"))
    app.cli.add_command(cli.exam)
    if app.config["RUN_SCHEDULER"]:
        from .. import realtime
        from . import ticker

        realtime.on_serve(app, ticker.run)
