"""Cross-cutting pieces: errors, time, permissions, i18n, socket plumbing."""
from flask import Flask


def init_app(app: Flask) -> None:
    from . import errors, i18n

    errors.init_app(app)
    i18n.init_app(app)
