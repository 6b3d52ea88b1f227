from flask import Flask


def init_app(app: Flask) -> None:
    from ..extensions import socketio
    from . import models  # noqa: F401
    from .events import LiveNamespace
    from .media import MediaNamespace
    from .views import bp

    app.register_blueprint(bp)
    from .. import realtime
    from . import health

    # every hub process writes its kiosks' reports in batches once it serves.
    realtime.on_serve(app, health.run)
    socketio.on_namespace(LiveNamespace("/live"))
    socketio.on_namespace(MediaNamespace("/media"))
    from . import media

    media.init_app(app)
