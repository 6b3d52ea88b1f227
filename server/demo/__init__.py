from flask import Flask


def init_app(app: Flask) -> None:
    from . import cli

    app.cli.add_command(cli.demo)
