"""Scores on a 10-point scale and grade bands. Pure: no Flask, no database."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

#: (label, minimum score), highest first. The default of the Lai Châu survey test.
DEFAULT_BANDS: tuple[tuple[str, float], ...] = (
    ("Xuất sắc", 9.0),
    ("Giỏi", 8.0),
    ("Khá", 6.5),
    ("Trung bình", 5.0),
    ("Chưa đạt", 0.0),
)


class BandError(ValueError):
    pass


def score(n_correct: int, n_questions: int) -> float:
    """10 × share of right answers, rounded half-up to 2 decimals (exact at band edges)."""
    if n_questions <= 0:
        raise ValueError("n_questions must be positive")
    if not 0 <= n_correct <= n_questions:
        raise ValueError("n_correct out of range")
    value = Decimal(10) * Decimal(n_correct) / Decimal(n_questions)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def validate_bands(bands: Sequence[Sequence]) -> list[tuple[str, float]]:
    """Check a band table: labels present and distinct, minimums strictly falling, the last 0."""
    out: list[tuple[str, float]] = []
    for item in bands:
        if len(item) != 2:
            raise BandError("Mỗi mức xếp loại cần một tên và một điểm tối thiểu.")
        label, minimum = str(item[0]).strip(), item[1]
        try:
            minimum = float(minimum)
        except (TypeError, ValueError):
            raise BandError(f"Điểm tối thiểu của mức “{label}” không phải là số.") from None
        if not label:
            raise BandError("Tên mức xếp loại không được để trống.")
        if not 0 <= minimum <= 10:
            raise BandError(f"Điểm tối thiểu của mức “{label}” phải từ 0 đến 10.")
        if out and minimum >= out[-1][1]:
            raise BandError("Điểm tối thiểu phải giảm dần từ mức cao nhất.")
        if any(label == seen for seen, _ in out):
            raise BandError(f"Mức “{label}” bị lặp.")
        out.append((label, minimum))
    if not out or out[-1][1] != 0:
        raise BandError("Mức thấp nhất phải bắt đầu từ 0 điểm.")
    return out


def band(value: float, bands: Sequence[Sequence] = DEFAULT_BANDS) -> str:
    """The first band whose minimum the score reaches."""
    for label, minimum in bands:
        if Decimal(str(value)) >= Decimal(str(minimum)):
            return str(label)
    return str(bands[-1][0])


def top_labels(bands: Sequence[Sequence] = DEFAULT_BANDS, n: int = 2) -> list[str]:
    """The labels counted as "Good or Excellent" in the statistics (the top two bands)."""
    return [str(label) for label, _ in bands[:n]]
