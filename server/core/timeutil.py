"""One clock. Store UTC, show Asia/Ho_Chi_Minh."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they are UTC by construction."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def to_ms(value: datetime | None) -> int | None:
    value = as_utc(value)
    return None if value is None else int(value.timestamp() * 1000)


def local(value: datetime | None) -> datetime | None:
    value = as_utc(value)
    return None if value is None else value.astimezone(VN)


def parse_local(text: str) -> datetime:
    """Parse 'dd/mm/yyyy HH:MM' or ISO 'yyyy-mm-ddTHH:MM' as Vietnam time; return UTC."""
    text = text.strip()
    for fmt in ("%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=VN).astimezone(timezone.utc)
    raise ValueError(text)
