"""Changes to the bank: imports (all or nothing), exports, edits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import sqlalchemy as sa

from ..extensions import db
from .models import Choice, Question, Topic


#: problems that concern one question only: with the organizer's consent, the other
#: questions of the file are imported and these are listed as skipped.
SKIPPABLE = {"unsupported_type", "duplicate_in_file", "already_in_bank"}


@dataclass
class QuestionImportReport:
    created: int = 0
    issues: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def only_skippable(self) -> bool:
        return bool(self.issues) and all(i.code in SKIPPABLE for i in self.issues)


def parse_file(data: bytes, filename: str, default_topic: Optional[str]):
    from . import formats

    name = filename.lower()
    try:
        if name.endswith((".xlsx", ".csv")):
            header, rows = formats.read_table(data, filename)
            return formats.parse_question_table(header, rows, default_topic=default_topic)
        text = data.decode("utf-8-sig")
    except formats.TableError as err:
        return formats.ImportResult([], [formats.ImportIssue(None, None, err.code, err.reason)])
    except UnicodeDecodeError:
        return formats.ImportResult([], [formats.ImportIssue(None, None, "not_utf8", "Tệp không phải văn bản UTF-8.")])
    if name.endswith(".xml"):
        return formats.parse_moodle_xml(data, default_topic=default_topic)
    if name.endswith(".gift") or name.endswith(".gift.txt") or "::" in text or "{" in text:
        return formats.parse_gift(text, default_topic=default_topic)
    return formats.parse_aiken(text, default_topic=default_topic)


def _topic(name: str, cache: dict[str, Topic]) -> Topic:
    if name not in cache:
        topic = db.session.scalar(sa.select(Topic).where(Topic.name == name))
        if topic is None:
            position = (db.session.scalar(sa.select(sa.func.max(Topic.position))) or 0) + 1
            topic = Topic(name=name, position=position)
            db.session.add(topic)
        cache[name] = topic
    return cache[name]


def import_questions(data: bytes, filename: str, default_topic: str = "", skip_unsupported: bool = False) -> QuestionImportReport:
    """Import the questions of a file: all of them, or none if any is wrong.

    Unsupported question types, duplicates within the file and questions already in the
    bank block the import too, unless the organizer chose to skip them: then the others
    are imported and the skipped ones are listed, never dropped silently.
    """
    from .formats import ImportIssue, normalize_text

    result = parse_file(data, filename, normalize_text(default_topic) or None)
    issues = list(result.issues)
    existing = set(db.session.execute(sa.select(Topic.name, Question.text).join(Question.topic).where(Question.active)).all())
    keep = []
    for i, q in enumerate(result.questions, start=1):
        if not q.topic:
            issues.append(ImportIssue(i, "Chuyên đề", "no_topic", f"Câu “{q.text[:40]}” chưa có chuyên đề: hãy nhập tên chuyên đề mặc định."))
        elif (q.topic, q.text) in existing:
            issues.append(ImportIssue(i, None, "already_in_bank", f"Câu “{q.text[:40]}” đã có trong ngân hàng câu hỏi."))
        else:
            keep.append(q)
    report = QuestionImportReport(issues=issues)
    if issues and not (skip_unsupported and report.only_skippable):
        return report
    cache: dict[str, Topic] = {}
    for q in keep:
        question = Question(topic=_topic(q.topic, cache), text=q.text, source=q.source)
        question.choices = [Choice(position=i, text=c.text, is_correct=c.correct) for i, c in enumerate(q.choices)]
        db.session.add(question)
    db.session.flush()
    return QuestionImportReport(created=len(keep), skipped=issues)


def export_questions(fmt: str, topic_id: Optional[int] = None) -> bytes:
    from . import formats

    q = sa.select(Question).join(Topic).where(Question.active).order_by(Topic.position, Question.id)
    if topic_id:
        q = q.where(Question.topic_id == topic_id)
    parsed = [
        formats.ParsedQuestion(
            topic=question.topic.name,
            text=question.text,
            choices=[formats.ParsedChoice(c.text, c.is_correct) for c in question.choices],
            source=f"id:{question.id}",
        )
        for question in db.session.scalars(q)
    ]
    if fmt == "csv":
        return formats.export_questions_csv(parsed)
    return formats.export_questions_xlsx(parsed)


def update_question(question: Question, *, topic_id, text, choices, correct) -> list[str]:
    """Edit in place. A question already used by an exam is retired and copied instead,
    so the papers that were printed stay true."""
    from ..exam.models import ExamCode  # noqa: F401  (only to state the dependency)
    from .formats import normalize_text

    text = normalize_text(text)
    filled = [normalize_text(c) for c in choices]
    errors = []
    if not text:
        errors.append("Nội dung câu hỏi không được để trống.")
    while filled and not filled[-1]:
        filled.pop()
    if len(filled) < 2 or any(not c for c in filled):
        errors.append("Cần ít nhất 2 phương án, điền liền nhau từ A.")
    if correct is None or not 0 <= correct < len(filled):
        errors.append("Hãy chọn đáp án đúng trong các phương án đã điền.")
    if topic_id is None or db.session.get(Topic, topic_id) is None:
        errors.append("Chuyên đề không hợp lệ.")
    if errors:
        return errors
    if _used_in_exam(question.id):
        question.active = False
        question = Question(topic_id=topic_id, text=text, source=f"sửa từ #{question.id}")
        db.session.add(question)
    else:
        question.topic_id, question.text = topic_id, text
        question.choices.clear()
        db.session.flush()
    question.choices = [Choice(position=i, text=c, is_correct=(i == correct)) for i, c in enumerate(filled)]
    db.session.flush()
    return []


def _used_in_exam(question_id: int) -> bool:
    from ..exam.models import ExamCode

    for layout in db.session.scalars(sa.select(ExamCode.layout)):
        if any(item["q"] == question_id for item in layout):
            return True
    return False
