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


@bp.route("/socket.io/", methods=["GET", "POST"])
@bp.route("/socket.io/", endpoint="socketio_websocket", websocket=True)
def socketio_path():
    """Never reached: the Socket.IO middleware answers this path before Flask does.

    It exists for the request context Flask-SocketIO builds for every socket event from
    the socket's handshake: without a rule for this path, routing it raises NotFound each
    time, and the exception's traceback ties up ~50 objects in a cycle that only the full
    garbage collection frees: 10,000 learners left a million of them (docs/benchmarks.md).
    """
    from flask import abort

    abort(404)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
