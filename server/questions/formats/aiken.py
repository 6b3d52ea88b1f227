"""Moodle Aiken import: a stem line, `A)`/`A.` choice lines, then `ANSWER: X`.

The line rules follow Moodle's importer (question/format/aiken/format.php), including its
tolerance of `A)Text` without a space; where Moodle silently discards a question (choices
without a stem, a question that never gets its ANSWER line) this importer reports it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _

from .common import (
    ImportIssue,
    ImportResult,
    ParsedChoice,
    ParsedQuestion,
    ResultBuilder,
    normalize_text,
    shorten,
)

_CHOICE = re.compile(r"^([A-Z])[).][ \t]?")
_ANSWER = re.compile(r"^ANSWER\s*:", re.IGNORECASE)


@dataclass
class _Open:
    """A question whose ANSWER line has not been read yet."""

    line: int
    stem: str
    labels: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)


class _AikenReader:
    def __init__(self, default_topic: str | None) -> None:
        self.topic = normalize_text(default_topic) or None
        self.open: _Open | None = None
        self.number = 0
        self.out = ResultBuilder()

    def read(self, number: int, line: str) -> None:
        if len(line) < 2:  # Moodle skips blank and one-character lines
            return
        choice = _CHOICE.match(line)
        if choice:
            self._choice(number, choice.group(1), line[choice.end():])
        elif _ANSWER.match(line):
            self._answer(number, line.split(":", 1)[1].strip().upper())
        else:
            self.finish_unanswered()
            self.open = _Open(number, normalize_text(line))

    def finish_unanswered(self) -> None:
        """A new stem (or the end of file) while a question still waits for ANSWER."""
        if self.open is not None:
            self.number += 1
            self.out.issue(ImportIssue(self.open.line, None, "missing_answer", _(
                "Câu hỏi «%(stem)s» không có dòng ANSWER nên chưa hoàn chỉnh.",
                stem=shorten(self.open.stem))))
            self.open = None

    def _choice(self, number: int, label: str, text: str) -> None:
        if self.open is None:
            self.out.issue(ImportIssue(number, None, "empty_text", _(
                "Phương án %(label)s không thuộc câu hỏi nào (thiếu dòng nội dung câu hỏi phía trên).",
                label=label)))
            return
        self.open.labels.append(label)
        self.open.choices.append(normalize_text(text))

    def _answer(self, number: int, letter: str) -> None:
        question, self.open = self.open, None
        if question is None:
            self.out.issue(ImportIssue(number, None, "empty_text", _(
                "Dòng ANSWER không thuộc câu hỏi nào (thiếu nội dung câu hỏi và các phương án).")))
            return
        self.number += 1
        issue = self._check(question, number, letter)
        if issue:
            self.out.issue(issue)
            return
        pairs = zip(question.labels, question.choices)
        choices = [ParsedChoice(text, label == letter[:1]) for label, text in pairs]
        source = f"aiken:câu {self.number}"
        self.out.add(ParsedQuestion(self.topic, question.stem, choices, source), question.line)

    @staticmethod
    def _check(question: _Open, number: int, letter: str) -> ImportIssue | None:
        stem = shorten(question.stem)
        if len(question.choices) < 2:
            return ImportIssue(number, None, "too_few_choices", _(
                "Câu hỏi «%(stem)s» cần ít nhất 2 phương án.", stem=stem))
        if not all(question.choices):
            return ImportIssue(number, None, "empty_text", _(
                "Câu hỏi «%(stem)s» có phương án để trống.", stem=stem))
        if len(set(question.labels)) != len(question.labels):
            return ImportIssue(number, None, "parse_error", _(
                "Câu hỏi «%(stem)s» có hai phương án cùng một chữ cái.", stem=stem))
        if not letter or letter[:1] not in question.labels or (len(letter) > 1 and letter[1].isalnum()):
            return ImportIssue(number, None, "bad_answer_letter", _(
                "Đáp án «%(letter)s» của câu hỏi «%(stem)s» không phải là một trong các "
                "phương án %(labels)s.",
                letter=letter, stem=stem, labels=", ".join(question.labels)))
        return None


def parse_aiken(text: str, default_topic: str | None = None) -> ImportResult:
    """Read a Moodle Aiken file; every question gets `default_topic` (Aiken has no categories).

    Issue rows are line numbers: the ANSWER line for a bad answer, the stem line for a
    question left without ANSWER, the stray line for choices without a stem.
    """
    reader = _AikenReader(default_topic)
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, start=1):
        reader.read(number, line.strip())
    reader.finish_unanswered()
    return reader.out.result
