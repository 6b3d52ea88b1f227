from flask import Flask


def init_app(app: Flask) -> None:
    from .attendance_views import bp as attendance_bp
    from .views import bp

    app.register_blueprint(bp)
    app.register_blueprint(attendance_bp)
