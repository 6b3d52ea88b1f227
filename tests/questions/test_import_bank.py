"""Importing into the bank: all or nothing, unsupported types reported, NFC kept."""
import io
import unicodedata

import sqlalchemy as sa
from openpyxl import Workbook

from conftest import SHARED, need
from server.extensions import db
from server.questions import operations
from server.questions.models import Question, Topic


def xlsx(rows):
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


HEADER = ["Chuyên đề", "Câu hỏi", "A", "B", "C", "D", "Đáp án"]


def count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(Question))


def test_a_good_sheet_is_imported_in_nfc(app):
    stem = unicodedata.normalize("NFD", "Nghị quyết nào được nhắc đến?")
    data = xlsx([HEADER, ["Chuyên đề 1", stem, "Một", "Hai", "Ba", "Bốn", "B"], ["Chuyên đề 1", "Câu hai?", "X", "Y", "", "", "a"]])
    report = operations.import_questions(data, "bank.xlsx")
    assert report.ok and report.created == 2
    db.session.commit()
    q = db.session.scalar(sa.select(Question).order_by(Question.id))
    assert q.text == unicodedata.normalize("NFC", stem)
    assert [c.text for c in q.choices if c.is_correct] == ["Hai"]
    # importing the same file again adds nothing and says why
    again = operations.import_questions(data, "bank.xlsx")
    assert not again.ok and {i.code for i in again.issues} == {"already_in_bank"}
    assert count() == 2


def test_one_bad_row_imports_nothing_and_names_row_and_column(app):
    data = xlsx([HEADER, ["Chủ đề", "Tốt?", "A1", "B1", "", "", "A"], ["Chủ đề", "Hỏng?", "A1", "B1", "", "", "D"]])
    report = operations.import_questions(data, "bank.xlsx")
    assert not report.ok and report.created == 0
    [issue] = report.issues
    assert issue.row == 3 and issue.column == "Đáp án" and issue.reason
    assert count() == 0 and db.session.scalar(sa.select(sa.func.count()).select_from(Topic)) == 0


def test_a_broken_spreadsheet_is_refused(app):
    report = operations.import_questions(b"PK\x03\x04 not really a zip", "bank.xlsx")
    assert not report.ok and report.issues[0].reason
    assert count() == 0


def test_moodle_gift_unsupported_types_reported_then_skipped_on_request(app):
    need((SHARED / "fixtures/moodle").is_dir(), "Moodle fixtures missing")
    data = (SHARED / "fixtures/moodle/moodle_gift_questions.gift.txt").read_bytes()
    report = operations.import_questions(data, "questions.gift.txt", default_topic="Moodle")
    assert not report.ok and count() == 0
    assert "unsupported_type" in {i.code for i in report.issues}
    if report.only_skippable:
        skipped = operations.import_questions(data, "questions.gift.txt", default_topic="Moodle", skip_unsupported=True)
        assert skipped.ok and skipped.created >= 1 and skipped.skipped
        assert count() == skipped.created
    else:  # junk lines block the import even with consent
        blocked = operations.import_questions(data, "questions.gift.txt", default_topic="Moodle", skip_unsupported=True)
        assert not blocked.ok and count() == 0


def test_export_then_import_round_trips(app):
    from server.questions.models import Choice

    data = xlsx([HEADER, ["Chuyên đề 2", "Câu một?", "Đúng", "Sai", "", "", "A"], ["Chuyên đề 3", "Câu hai?", "1", "2", "3", "4", "D"]])
    assert operations.import_questions(data, "bank.xlsx").ok
    db.session.commit()
    before = [(q.topic.name, q.text, [(c.text, c.is_correct) for c in q.choices])
              for q in db.session.scalars(sa.select(Question).order_by(Question.id))]
    for fmt, name in (("xlsx", "x.xlsx"), ("csv", "x.csv")):
        exported = operations.export_questions(fmt)
        db.session.execute(sa.delete(Choice))
        db.session.execute(sa.delete(Question))
        db.session.commit()
        assert operations.import_questions(exported, name).ok
        db.session.commit()
        after = [(q.topic.name, q.text, [(c.text, c.is_correct) for c in q.choices])
                 for q in db.session.scalars(sa.select(Question).order_by(Question.id))]
        assert after == before
