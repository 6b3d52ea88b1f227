"""Site-wide routes: the home page sends each role where it works; a health check."""
from flask import Blueprint, Flask, jsonify, redirect, url_for
from flask_login import current_user

from .accounts.models import Role

bp = Blueprint("site", __name__)


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login"))
    if current_user.role == Role.learner:
        return redirect(url_for("exam.my_exams"))
    if current_user.role == Role.rapporteur:
        return redirect(url_for("webcast.lectures"))
    return redirect(url_for("exam.index"))


@bp.get("/healthz")
def healthz():
    return jsonify({"ok": True})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
