"""Moodle XML import: `multichoice` with one right answer and `truefalse`; the rest reported.

The file comes from outside, so it is parsed with expat directly: a document with a DTD
is refused before any entity could expand (defusedxml is not a dependency), and each
`<question>` keeps its line number for the issue list.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat

from flask_babel import gettext as _

from .common import (
    ImportIssue,
    ImportResult,
    ParsedChoice,
    ParsedQuestion,
    ResultBuilder,
    fraction_issue,
    html_to_text,
    judge_fractions,
    last_category_segment,
    normalize_text,
    shorten,
    true_false_choices,
    unsupported,
)

# Moodle renders both as HTML, so both are reduced to text.
_HTML_FORMATS = {"html", "moodle_auto_format"}
_KIND_ALIASES = {"matching": "match"}


class _Refused(Exception):
    """The document declares a DTD or entities."""


def _parse(data: bytes) -> tuple[ET.Element, dict[ET.Element, int]]:
    """The element tree plus the line where each element starts."""
    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    def refuse(*_args: object) -> None:
        raise _Refused()

    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.Parse(data, True)
    return builder.close(), lines


def _text_of(node: ET.Element | None) -> str:
    """The plain text of a Moodle `<… format="…"><text>…</text>` node."""
    if node is None:
        return ""
    raw = node.findtext("text") or ""
    if node.get("format", "html") in _HTML_FORMATS:
        return html_to_text(raw)
    return normalize_text(raw)


def _fraction(answer: ET.Element) -> float:
    try:
        return float(answer.get("fraction", "0"))
    except ValueError:
        return 0.0


def _multichoice(question: ET.Element, row: int, stem: str) -> list[ParsedChoice] | ImportIssue:
    answers = question.findall("answer")
    texts = [_text_of(answer) for answer in answers]
    fractions = [_fraction(answer) for answer in answers]
    if len(texts) < 2:
        return ImportIssue(row, None, "too_few_choices", _(
            "Câu hỏi «%(stem)s» cần ít nhất 2 phương án.", stem=shorten(stem)))
    if not all(texts):
        return ImportIssue(row, None, "empty_text", _(
            "Câu hỏi «%(stem)s» có phương án để trống.", stem=shorten(stem)))
    single = (question.findtext("single") or "true").strip().lower() in ("true", "1")
    verdict = judge_fractions(fractions, single)
    if verdict:
        return fraction_issue(row, verdict, stem)
    return [ParsedChoice(text, fraction > 0) for text, fraction in zip(texts, fractions)]


def _truefalse(question: ET.Element, row: int, stem: str) -> list[ParsedChoice] | ImportIssue:
    right = [a for a in question.findall("answer") if _fraction(a) >= 100]
    if len(right) != 1:
        return fraction_issue(row, ("missing_answer", ""), stem)
    return true_false_choices(_text_of(right[0]).casefold() == "true")


class _XmlReader:
    def __init__(self, default_topic: str | None, lines: dict[ET.Element, int]) -> None:
        self.default_topic = normalize_text(default_topic) or None
        self.topic = self.default_topic
        self.lines = lines
        self.number = 0
        self.out = ResultBuilder()

    def read(self, question: ET.Element) -> None:
        kind = question.get("type", "")
        if kind == "category":
            path = question.findtext("category/text") or ""
            self.topic = last_category_segment(path) or self.default_topic
            return
        self.number += 1
        row = self.lines.get(question)
        stem = _text_of(question.find("questiontext"))
        label = stem or normalize_text(question.findtext("name/text"))
        if kind not in ("multichoice", "truefalse"):
            self.out.issue(unsupported(row, _KIND_ALIASES.get(kind, kind), label))
            return
        if not stem:
            self.out.issue(ImportIssue(row, None, "empty_text", _(
                "Câu hỏi «%(name)s» không có nội dung.", name=shorten(label))))
            return
        reader = _multichoice if kind == "multichoice" else _truefalse
        choices = reader(question, row, stem)
        if isinstance(choices, ImportIssue):
            self.out.issue(choices)
            return
        self.out.add(ParsedQuestion(self.topic, stem, choices, f"xml:question {self.number}"), row)


def parse_moodle_xml(data: bytes, default_topic: str | None = None) -> ImportResult:
    """Read a Moodle XML export; category pseudo-questions set the topic (last path segment).

    A malformed document, or one with a DTD, gives a single "parse_error" and no questions:
    a half-read file would look like a complete import.
    """
    try:
        root, lines = _parse(data)
    except _Refused:
        return ImportResult([], [ImportIssue(None, None, "parse_error", _(
            "Tệp XML có khai báo DOCTYPE/ENTITY; vì lý do an toàn hệ thống không đọc tệp này."))])
    except expat.ExpatError as error:
        return ImportResult([], [ImportIssue(error.lineno, None, "parse_error", _(
            "Tệp XML bị lỗi ở dòng %(line)s: %(error)s.", line=error.lineno,
            error=expat.ErrorString(error.code)))])
    if root.tag != "quiz":
        return ImportResult([], [ImportIssue(1, None, "parse_error", _(
            "Đây không phải tệp câu hỏi Moodle XML (thiếu thẻ <quiz>)."))])
    reader = _XmlReader(default_topic, lines)
    for question in root.findall("question"):
        reader.read(question)
    return reader.out.result
