"""Moodle GIFT import.

The bank holds single-answer multiple choice only, so GIFT multiple choice (`=right ~wrong`)
and true/false (imported as "Đúng"/"Sai") come in; every other GIFT type is reported by
name, never dropped, so the organizer knows what is missing from the bank. The block and
type rules follow Moodle's own importer (question/format/gift/format.php).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

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

# Escaped control characters are swapped for private-use placeholders while the block is
# cut up, then put back (Moodle's escapedchar_pre/post).
_ESCAPES = {"\\:": ":", "\\#": "#", "\\=": "=", "\\{": "{", "\\}": "}", "\\~": "~", "\\n": "\n"}
_PLACEHOLDERS = {seq: chr(0xE000 + i) for i, seq in enumerate(_ESCAPES)}
_BACKSLASH = chr(0xE0FF)
_FORMATS = {"html", "plain", "markdown", "moodle"}
_FORMAT_PREFIX = re.compile(r"^\[(\w+)\]")
_WEIGHT = re.compile(r"^%(-?\d{1,3}(?:\.\d*)?)%")
_TRUE_FALSE = {"T": True, "TRUE": True, "F": False, "FALSE": False}
_WORD = re.compile(r"\w")


@dataclass
class _Block:
    """One question (or $CATEGORY line): lines between blank lines, comments blanked."""

    first_line: int
    text: str

    def line_of(self, position: int) -> int:
        return self.first_line + self.text.count("\n", 0, position)


def _protect(text: str) -> str:
    text = text.replace("\\\\", _BACKSLASH)
    for sequence, placeholder in _PLACEHOLDERS.items():
        text = text.replace(sequence, placeholder)
    return text.replace(_BACKSLASH, "\\")


def _restore(text: str) -> str:
    for sequence, placeholder in _PLACEHOLDERS.items():
        text = text.replace(placeholder, _ESCAPES[sequence])
    return text


def _blocks(text: str) -> list[_Block]:
    """Split on blank lines as Moodle does; comment lines keep their place for line numbers."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[_Block] = []
    current: list[str] = []
    first = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            if current:
                blocks.append(_Block(first, _protect("\n".join(current).strip())))
            current = []
        elif stripped.startswith("//"):
            if current:
                current.append("")
        else:
            if not current:
                first = number
            current.append(line)
    if current:
        blocks.append(_Block(first, _protect("\n".join(current).strip())))
    return blocks


def _split_format(text: str, default: str) -> tuple[str, str]:
    """`[html]text` → ("html", "text"); an unknown [word] is part of the text, as in Moodle."""
    match = _FORMAT_PREFIX.match(text)
    if match and match.group(1).lower() in _FORMATS:
        return match.group(1).lower(), text[match.end():]
    return default, text


def _to_text(text: str, text_format: str) -> str:
    text = _restore(text)
    return html_to_text(text) if text_format == "html" else normalize_text(text)


def _answer_kind(answer: str) -> str:
    """Moodle's order of type detection on the text between the braces."""
    if not answer:
        return "essay"
    if answer.startswith("#"):
        return "numerical"
    if "~" in answer:
        return "multichoice"
    if "=" in answer and "->" in answer:
        return "match"
    if answer.split("#", 1)[0].strip().upper() in _TRUE_FALSE:
        return "truefalse"
    return "shortanswer"


def _multichoice(answer: str, text_format: str, row: int, stem: str) -> list[ParsedChoice] | ImportIssue:
    parts = answer.replace("=", "~=").split("~")
    if parts and not parts[0].strip():
        parts = parts[1:]
    texts: list[str] = []
    fractions: list[float] = []
    for part in parts:
        part = part.strip()
        weight = 0.0
        if part.startswith("="):
            weight, part = 100.0, part[1:]
        match = _WEIGHT.match(part)
        if match:
            weight, part = float(match.group(1)), part[match.end():]
        choice_format, body = _split_format(part.split("#", 1)[0].strip(), text_format)
        texts.append(_to_text(body, choice_format))
        fractions.append(weight)
    if len(texts) < 2:
        return ImportIssue(row, None, "too_few_choices", _(
            "Câu hỏi «%(stem)s» cần ít nhất 2 phương án.", stem=shorten(stem)))
    if not all(texts):
        return ImportIssue(row, None, "empty_text", _(
            "Câu hỏi «%(stem)s» có phương án để trống.", stem=shorten(stem)))
    verdict = judge_fractions(fractions, single="=" in answer)
    if verdict:
        return fraction_issue(row, verdict, stem)
    return [ParsedChoice(text, fraction > 0) for text, fraction in zip(texts, fractions)]


class _GiftReader:
    """Walks the blocks of one file, carrying the current category."""

    def __init__(self, default_topic: str | None) -> None:
        self.default_topic = normalize_text(default_topic) or None
        self.topic = self.default_topic
        self.number = 0
        self.out = ResultBuilder()

    def read(self, block: _Block) -> None:
        text = block.text
        if text.startswith("$CATEGORY:"):
            self.topic = last_category_segment(_restore(text[len("$CATEGORY:"):])) or self.default_topic
            return
        self.number += 1
        title, offset = "", 0
        if text.startswith("::"):
            end = text.find("::", 2)
            title, offset = (text[2:end], end + 2) if end >= 0 else ("", 2)
        start, finish = text.find("{", offset), text.find("}", offset)
        row = block.first_line
        excerpt = shorten(normalize_text(_restore(text)))
        if start < 0 and finish < 0:
            self.out.issue(ImportIssue(row, None, "parse_error", _(
                "Không đọc được «%(text)s»: không có phần đáp án trong ngoặc nhọn {…}.", text=excerpt)))
            return
        if start < 0 or finish < start:
            self.out.issue(ImportIssue(row, None, "parse_error", _(
                "Không đọc được «%(text)s»: thiếu dấu { hoặc }.", text=excerpt)))
            return
        self._read_question(block, title, text[offset:start], text[start + 1:finish], finish)

    def _read_question(self, block: _Block, title: str, stem_raw: str, answer: str, finish: int) -> None:
        row = block.first_line
        after = block.text[finish + 1:].strip()
        if after and not _WORD.search(after):
            self.out.issue(ImportIssue(block.line_of(finish), None, "parse_error", _(
                "Ký tự thừa «%(junk)s» sau dấu } đã bị bỏ qua; hãy xoá khỏi tệp.", junk=shorten(after, 20))))
        general = answer.rfind("####")
        answer = (answer[:general] if general >= 0 else answer).strip()
        text_format, stem_body = _split_format(stem_raw.strip(), "moodle")
        stem = _to_text(stem_body, text_format)
        label = stem or normalize_text(_restore(title))
        kind = _answer_kind(answer)
        if kind not in ("multichoice", "truefalse"):
            self.out.issue(unsupported(row, kind, label))
            return
        if _WORD.search(after):
            self.out.issue(unsupported(row, "missingword", label))
            return
        if not stem:
            self.out.issue(ImportIssue(row, None, "empty_text", _("Câu hỏi không có nội dung.")))
            return
        if kind == "truefalse":
            choices = true_false_choices(_TRUE_FALSE[answer.split("#", 1)[0].strip().upper()])
        else:
            choices = _multichoice(answer, text_format, row, stem)
        if isinstance(choices, ImportIssue):
            self.out.issue(choices)
            return
        self.out.add(ParsedQuestion(self.topic, stem, choices, f"gift:Q{self.number}"), row)


def parse_gift(text: str, default_topic: str | None = None) -> ImportResult:
    """Read a Moodle GIFT file into single-answer questions and a list of what was refused.

    `$CATEGORY:` lines switch the topic to the last segment of the category path; before
    any of them, questions get `default_topic`. Issue rows are line numbers in the file.
    """
    reader = _GiftReader(default_topic)
    for block in _blocks(text):
        reader.read(block)
    return reader.out.result
