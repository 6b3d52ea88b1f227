"""Vietnamese first: the message ids are Vietnamese, dates are dd/mm/yyyy in Asia/Ho_Chi_Minh."""
from __future__ import annotations

from datetime import datetime

from flask import Flask

from .timeutil import local


def fmt_datetime(value: datetime | None, with_seconds: bool = False) -> str:
    value = local(value)
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y %H:%M:%S" if with_seconds else "%d/%m/%Y %H:%M")


def fmt_number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return ""
    text = f"{value:,.{digits}f}"
    # Vietnamese: dot for thousands, comma for decimals.
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def init_app(app: Flask) -> None:
    from ..extensions import babel

    babel.init_app(app, locale_selector=lambda: "vi", timezone_selector=lambda: "Asia/Ho_Chi_Minh")
    app.jinja_env.filters["dt"] = fmt_datetime
    app.jinja_env.filters["num"] = fmt_number
