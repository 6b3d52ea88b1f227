"""Time one `exam_report` (the district statistics) and one `results_workbook` (the Excel
file) against the database in DATABASE_URL, as the organizer sees them. Prints JSON.

Run with the hub's environment: `python bench/report_timing.py [exam_id]`.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    exam_id = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    from server import create_app

    app = create_app({"ASYNC_MODE": "threading", "RUN_SCHEDULER": False})
    import sqlalchemy as sa

    from server.accounts.models import User
    from server.exam.models import Exam
    from server.extensions import db
    from server.reports.queries import exam_report
    from server.reports.xlsx import results_workbook

    with app.app_context():
        viewer = db.session.scalar(sa.select(User).where(User.username == "bantochuc"))
        exam = db.session.get(Exam, exam_id)
        t0 = time.perf_counter()
        report = exam_report(exam, viewer)
        t1 = time.perf_counter()
        data = results_workbook(report)
        t2 = time.perf_counter()
        print(json.dumps({
            "exam_report_s": t1 - t0, "workbook_s": t2 - t1, "xlsx_bytes": len(data),
            "districts": len(report.districts), "took_part": report.total.took_part,
            "registered": report.total.registered, "mean": report.total.mean, "good_share": report.total.good_share,
        }))


if __name__ == "__main__":
    main()
