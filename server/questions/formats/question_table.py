"""The question bank as a spreadsheet: one question per row, choices in columns A–F.

Import and export use the same columns, so an organizer can export the bank, correct it
in Excel and import it again without losing anything.
"""
from __future__ import annotations

import csv
import io
import re

from flask_babel import gettext as _

from .common import ImportIssue, ImportResult, ParsedChoice, ParsedQuestion, ResultBuilder, normalize_text
from .table import Column, cell, locate_columns

LETTERS = "ABCDEF"
TOPIC, QUESTION, ANSWER = "Chuyên đề", "Câu hỏi", "Đáp án"
QUESTION_COLUMNS = [
    Column("topic", TOPIC, ("topic",), required=False),
    Column("text", QUESTION, ("question", "Nội dung câu hỏi")),
    *(Column(letter, letter, required=letter in "AB") for letter in LETTERS),
    Column("answer", ANSWER, ("answer", "Đáp án đúng")),
]
_ONE_LETTER = re.compile(r"([A-F])[.)]?")
_SEVERAL_LETTERS = re.compile(r"[A-F](\s*[,;/&+ ]\s*[A-F])+")


class _Row:
    """One data row with the organizer's own header names for the issue list."""

    def __init__(self, number: int, cells: list[str], found: dict[str, int], header: list[str]) -> None:
        self.number, self.cells, self.found, self.header = number, cells, found, header
        self.issues: list[ImportIssue] = []

    def get(self, key: str) -> str:
        return cell(self.cells, self.found.get(key))

    def label(self, key: str) -> str:
        return self.header[self.found[key]] if key in self.found else key

    def report(self, key: str, code: str, reason: str) -> None:
        self.issues.append(ImportIssue(self.number, self.label(key), code, reason))


def _check_choices(row: _Row, letters: list[str]) -> list[str]:
    """The filled choices, in order; reports gaps, too few and repeated choices."""
    values = [row.get(letter) for letter in letters]
    last = max((i for i, v in enumerate(values) if v), default=-1)
    for i in range(last):
        if not values[i]:
            row.report(letters[i], "choice_gap", _(
                "Phương án %(letter)s để trống nhưng phương án sau nó có nội dung.", letter=letters[i]))
    filled = [v for v in values if v]
    if len(filled) < 2:
        missing = next((letter for letter, v in zip(letters, values) if not v), "B")
        row.report(missing, "too_few_choices", _("Câu hỏi cần ít nhất 2 phương án (A và B)."))
    for i, value in enumerate(values):
        if value and value in values[:i]:
            row.report(letters[i], "duplicate_choice", _(
                "Phương án %(letter)s trùng với phương án %(other)s.",
                letter=letters[i], other=letters[values.index(value)]))
    return values


def _check_answer(row: _Row, letters: list[str], values: list[str]) -> str:
    raw = row.get("answer").upper()
    if not raw:
        row.report("answer", "missing_answer", _("Chưa ghi đáp án đúng."))
        return ""
    match = _ONE_LETTER.fullmatch(raw)
    if match is None:
        if _SEVERAL_LETTERS.fullmatch(raw):
            row.report("answer", "multiple_correct", _(
                "Chỉ được một đáp án đúng, tệp ghi «%(answer)s».", answer=raw))
        else:
            row.report("answer", "bad_answer_letter", _(
                "Đáp án phải là một chữ cái %(letters)s, tệp ghi «%(answer)s».",
                letters=", ".join(letters), answer=raw))
        return ""
    letter = match.group(1)
    if letter not in letters or not values[letters.index(letter)]:
        row.report("answer", "bad_answer_letter", _(
            "Đáp án là %(letter)s nhưng phương án %(letter)s để trống.", letter=letter))
        return ""
    return letter


def _read_row(row: _Row, default_topic: str | None, kind: str) -> ParsedQuestion | None:
    text = row.get("text")
    if not text:
        row.report("text", "empty_text", _("Câu hỏi để trống."))
    letters = [letter for letter in LETTERS if letter in row.found]
    values = _check_choices(row, letters)
    answer = _check_answer(row, letters, values)
    if row.issues:
        return None
    choices = [ParsedChoice(v, letter == answer) for letter, v in zip(letters, values) if v]
    return ParsedQuestion(row.get("topic") or default_topic, text, choices, f"{kind}:dòng {row.number}")


def parse_question_table(
    header: list[str],
    rows: list[tuple[int, list[str]]],
    default_topic: str | None = None,
    *,
    kind: str = "xlsx",
) -> ImportResult:
    """Questions from rows of `read_table`; every problem is reported with row and column.

    `kind` ("xlsx" or "csv") only prefixes the `source` of each question. A row whose known
    columns are all empty (a template row with only its STT filled) is skipped.
    """
    found, header_issues = locate_columns(header, QUESTION_COLUMNS)
    if header_issues:
        return ImportResult([], header_issues)
    out = ResultBuilder()
    default_topic = normalize_text(default_topic) or None
    for number, cells in rows:
        row = _Row(number, [normalize_text(c) for c in cells], found, header)
        if not any(row.get(key) for key in found):
            continue
        question = _read_row(row, default_topic, kind)
        for issue in row.issues:
            out.issue(issue)
        if question is not None:
            out.add(question, number, row.label("text"))
    return out.result


def _export_table(questions: list[ParsedQuestion]) -> tuple[list[str], list[list[str]]]:
    width = max([4, *(len(q.choices) for q in questions)])
    if width > len(LETTERS):
        raise ValueError(f"a question has {width} choices; the spreadsheet holds {len(LETTERS)}")
    header = [TOPIC, QUESTION, *LETTERS[:width], ANSWER]
    rows = []
    for question in questions:
        texts = [c.text for c in question.choices] + [""] * (width - len(question.choices))
        answer = ",".join(LETTERS[i] for i, c in enumerate(question.choices) if c.correct)
        rows.append([question.topic or "", question.text, *texts, answer])
    return header, rows


def export_questions_csv(questions: list[ParsedQuestion]) -> bytes:
    """The bank as CSV in UTF-8 with a BOM, which is what makes Excel show Vietnamese right."""
    header, rows = _export_table(questions)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def export_questions_xlsx(questions: list[ParsedQuestion]) -> bytes:
    """The bank as .xlsx with the import's columns; every cell is text, never a formula."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    header, rows = _export_table(questions)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Câu hỏi"))
    for letter, width in zip("ABCDEFGHI", [30, 80] + [30] * (len(header) - 3) + [10]):
        sheet.column_dimensions[letter].width = width

    def text_cell(value: str, bold: bool = False) -> WriteOnlyCell:
        result = WriteOnlyCell(sheet, value=value)
        result.data_type = "s"  # a stem starting with "=" must stay text
        if bold:
            result.font = Font(bold=True)
        return result

    sheet.append([text_cell(v, bold=True) for v in header])
    for row in rows:
        sheet.append([text_cell(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
