from flask import Flask


def init_app(app: Flask) -> None:
    from . import models  # noqa: F401
    from .views import bp

    app.register_blueprint(bp)
