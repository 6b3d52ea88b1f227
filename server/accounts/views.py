"""Login for every role, and the roster import."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..core.permissions import require_roles
from ..extensions import db
from .auth import socket_token
from .forms import LearnerLoginForm, RosterImportForm, StaffLoginForm
from .models import Role, User

bp = Blueprint("accounts", __name__)


def _safe_next() -> str:
    target = request.args.get("next") or ""
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("site.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    staff, learner = StaffLoginForm(prefix="staff"), LearnerLoginForm(prefix="learner")
    if request.method == "POST":
        if "staff-submit" in request.form and staff.validate_on_submit():
            user = db.session.scalar(sa.select(User).where(User.username == staff.username.data.strip()))
            if user and user.is_staff and user.active and user.check_password(staff.password.data):
                login_user(user)
                return redirect(_safe_next())
            flash(_("Tên đăng nhập hoặc mật khẩu không đúng."), "error")
        elif "learner-submit" in request.form and learner.validate_on_submit():
            code = learner.personal_code.data.strip().upper()
            user = db.session.scalar(sa.select(User).where(User.personal_code == code, User.role == Role.learner))
            if user and user.active:
                login_user(user)
                return redirect(_safe_next())
            flash(_("Không tìm thấy học viên với mã cá nhân này."), "error")
        else:
            flash(_("Vui lòng điền đầy đủ thông tin đăng nhập."), "error")
        return render_template("accounts/login.html", staff=staff, learner=learner), 400
    return render_template("accounts/login.html", staff=staff, learner=learner)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("accounts.login"))


@bp.get("/api/socket-token")
@login_required
def token():
    return jsonify({"ok": True, "token": socket_token(current_user)})


@bp.route("/roster/import", methods=["GET", "POST"])
@require_roles(Role.organizer)
def roster_import():
    from . import operations

    form = RosterImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        report = operations.import_roster(upload.read(), upload.filename or "", by=current_user)
        if report.ok:
            db.session.commit()
            flash(_("Đã nhập %(n)d học viên.", n=report.created), "success")
            return redirect(url_for("accounts.roster_import"))
        db.session.rollback()
    status = 400 if report is not None else 200
    return render_template("accounts/roster_import.html", form=form, report=report), status
