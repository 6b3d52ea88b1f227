"""Results statistics per district and bridge point, straight from the attempts.

One GROUP BY over the exam's attempts: with scores written at close, the statistics
are ready the moment the exam closes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import gettext as _

from ..core.permissions import scope_clause
from ..exam.models import Attempt, Exam
from ..exam.scoring import DEFAULT_BANDS, top_labels
from ..extensions import db
from ..places.models import BridgePoint, District


@dataclass
class Stats:
    name: str
    registered: int = 0
    took_part: int = 0
    score_sum: float = 0.0
    bands: dict[str, int] = field(default_factory=dict)
    good_labels: tuple[str, ...] = ()

    @property
    def mean(self) -> float | None:
        return round(self.score_sum / self.took_part, 2) if self.took_part else None

    @property
    def good(self) -> int:
        return sum(self.bands.get(label, 0) for label in self.good_labels)

    @property
    def good_share(self) -> float | None:
        return round(100.0 * self.good / self.took_part, 2) if self.took_part else None

    def add(self, other: "Stats") -> None:
        self.registered += other.registered
        self.took_part += other.took_part
        self.score_sum += other.score_sum
        for k, v in other.bands.items():
            self.bands[k] = self.bands.get(k, 0) + v


@dataclass
class ExamReport:
    exam: Exam
    band_labels: list[str]
    total: Stats
    districts: list[tuple[Stats, list[Stats]]]


def exam_report(exam: Exam, viewer) -> ExamReport:
    bands = exam.bands or [list(b) for b in DEFAULT_BANDS]
    labels = [b[0] for b in bands]
    good = tuple(top_labels(bands))
    took = Attempt.started_at.is_not(None)
    rows = db.session.execute(
        sa.select(
            District.id, District.name, BridgePoint.id, BridgePoint.code, BridgePoint.name, Attempt.band,
            sa.func.count(), sa.func.count().filter(took), sa.func.coalesce(sa.func.sum(Attempt.score).filter(took), 0),
        )
        .select_from(Attempt)
        .join(BridgePoint, BridgePoint.id == Attempt.bridge_point_id)
        .join(District, District.id == Attempt.district_id)
        .where(Attempt.exam_id == exam.id, scope_clause(viewer, Attempt.district_id, Attempt.bridge_point_id))
        .group_by(District.id, District.name, BridgePoint.id, BridgePoint.code, BridgePoint.name, Attempt.band)
    ).all()
    per_bp: dict[int, Stats] = {}
    bp_district: dict[int, tuple[int, str]] = {}
    for d_id, d_name, bp_id, bp_code, bp_name, band, n, n_took, total in rows:
        s = per_bp.setdefault(bp_id, Stats(f"{bp_code} – {bp_name}", good_labels=good))
        bp_district[bp_id] = (d_id, d_name)
        s.registered += n
        s.took_part += n_took
        s.score_sum += float(total or 0)
        if band:
            s.bands[band] = s.bands.get(band, 0) + n_took
    districts: dict[int, tuple[Stats, list[Stats]]] = {}
    for bp_id, s in per_bp.items():
        d_id, d_name = bp_district[bp_id]
        d = districts.setdefault(d_id, (Stats(d_name, good_labels=good), []))
        d[0].add(s)
        d[1].append(s)
    total = Stats(_("Toàn tỉnh"), good_labels=good)
    ordered = sorted(districts.values(), key=lambda item: item[0].name)
    for d_stats, bps in ordered:
        total.add(d_stats)
        bps.sort(key=lambda s: s.name)
    return ExamReport(exam, labels, total, ordered)
