"""A DomainError family, mapped to HTTP pages and to Socket.IO acks.

Every refusal carries a stable `code` (for socket acks, logs and tests) and a message
for people (Vietnamese by default, through `_`).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l


class DomainError(Exception):
    code = "error"
    http_status = 400
    default_message = _l("Yêu cầu không hợp lệ.")

    def __init__(self, code: str | None = None, message: Any = None, **details: Any):
        self.code = code or self.code
        self.message = str(message if message is not None else self.default_message)
        self.details = details
        super().__init__(f"{self.code}: {self.message}")

    def to_ack(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"ok": False, "error": error}


class BadInput(DomainError):
    code = "bad_input"
    default_message = _l("Dữ liệu gửi lên không hợp lệ.")


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    default_message = _l("Không tìm thấy.")


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403
    default_message = _l("Bạn không có quyền thực hiện thao tác này.")


class Unauthenticated(DomainError):
    code = "unauthenticated"
    http_status = 401
    default_message = _l("Bạn cần đăng nhập.")


class Busy(DomainError):
    code = "server.busy"
    http_status = 503
    default_message = _l("Máy chủ đang bận, vui lòng gửi lại sau ít giây.")


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
    default_message = _l("Thao tác không phù hợp với trạng thái hiện tại.")


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(err: DomainError):
        from .. import extensions

        extensions.db.session.rollback()
        if _wants_json():
            return jsonify(err.to_ack()), err.http_status
        return render_template("errors/error.html", error=err), err.http_status

    for status in (403, 404, 405, 413, 500):
        app.register_error_handler(status, _http_error)

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def _csrf_error(err):
        from flask_babel import gettext as _

        error = DomainError("csrf.invalid", _("Phiên làm việc của biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang và thử lại."))
        if _wants_json():
            return jsonify(error.to_ack()), 400
        return render_template("errors/error.html", error=error), 400


def _http_error(err):
    from flask_babel import gettext as _
    from werkzeug.exceptions import HTTPException

    status = err.code if isinstance(err, HTTPException) else 500
    messages = {
        403: _("Bạn không có quyền xem trang này."),
        404: _("Không tìm thấy trang."),
        405: _("Phương thức không được hỗ trợ."),
        413: _("Tệp gửi lên quá lớn."),
        500: _("Có lỗi ở máy chủ. Vui lòng thử lại."),
    }
    error = DomainError(code=f"http_{status}", message=messages.get(status, str(err)))
    if _wants_json():
        return jsonify(error.to_ack()), status
    return render_template("errors/error.html", error=error), status
