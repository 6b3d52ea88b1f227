from flask import Flask


def init_app(app: Flask) -> None:
    from . import auth, cli, models  # noqa: F401
    from .views import bp

    auth.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(cli.users)
