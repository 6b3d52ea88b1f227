"""What every question format shares: the parsed shapes, text normalisation and the checks
that do not depend on the file format (one correct answer, no duplicate in the file)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser

from flask_babel import gettext as _

#: the labels a true/false question is imported with; the bank only holds multiple choice.
TRUE_LABEL = "Đúng"
FALSE_LABEL = "Sai"

_WHITESPACE = re.compile(r"\s+")
# C0/C1 controls other than whitespace: invisible, and openpyxl refuses them on export.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


@dataclass(frozen=True)
class ParsedChoice:
    text: str
    correct: bool


@dataclass(frozen=True)
class ParsedQuestion:
    topic: str | None
    text: str
    choices: list[ParsedChoice]
    #: where it came from, for people: "gift:Q3", "aiken:câu 2", "xml:question 5", "xlsx:dòng 12".
    source: str


@dataclass(frozen=True)
class ImportIssue:
    #: 1-based line (text formats) or row (spreadsheets) in the file; None for the whole file.
    row: int | None
    #: the column header for spreadsheets, None for text formats.
    column: str | None
    #: stable machine code, e.g. "unsupported_type", "missing_answer", "duplicate_in_file".
    code: str
    #: a Vietnamese sentence for the organizer.
    reason: str


@dataclass
class ImportResult:
    questions: list[ParsedQuestion] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


def normalize_text(s: str | None) -> str:
    """NFC, no control characters, one space between words, trimmed.

    Vietnamese typed on macOS or pasted from PDFs arrives decomposed (NFD); stored as is,
    the same stem would compare unequal to itself and duplicates would slip through.
    """
    if s is None:
        return ""
    s = unicodedata.normalize("NFC", str(s))
    s = _CONTROL.sub("", s)
    return _WHITESPACE.sub(" ", s).strip()


def fold(s: str | None) -> str:
    """A comparison key: case- and accent-insensitive ("Huyện Tam Đường" == "huyen tam duong").

    Used only to match things people type differently (headers, district names), never
    stored: the diacritics carry meaning in Vietnamese.
    """
    s = normalize_text(s).casefold().replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def shorten(text: str, limit: int = 60) -> str:
    """A stem short enough to quote in an issue sentence."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class _TextExtractor(HTMLParser):
    """Keeps the text of an HTML fragment; block boundaries become spaces."""

    BLOCKS = {"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2",
              "h3", "h4", "h5", "h6", "blockquote", "pre", "hr"}
    SKIPPED = {"script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of a Moodle HTML fragment: tags dropped, entities unescaped.

    Learners see stems as text on kiosks and in Excel reports; markup from Moodle would
    show up as noise there, so it is not kept.
    """
    extractor = _TextExtractor()
    extractor.feed(fragment)
    extractor.close()
    return normalize_text("".join(extractor.parts))


def last_category_segment(path: str) -> str | None:
    """The topic from a Moodle category path: "$course$/Iota/Kappa" → "Kappa".

    Moodle's "$course$"/"$system$" context tokens and "top" are not topics.
    """
    segments = [normalize_text(s) for s in path.split("/")]
    segments = [s for s in segments if s and not (s.startswith("$") and s.endswith("$"))]
    if segments and segments[-1].casefold() != "top":
        return segments[-1]
    return None


def type_name(kind: str) -> str:
    """The Vietnamese name of a question type we do not import."""
    names = {
        "essay": _("tự luận"),
        "match": _("ghép cặp"),
        "numerical": _("số"),
        "shortanswer": _("trả lời ngắn"),
        "multiresponse": _("nhiều đáp án đúng"),
        "missingword": _("điền từ vào chỗ trống"),
        "multianswer": _("câu hỏi nhúng (cloze)"),
        "description": _("mô tả (không có câu trả lời)"),
        "partialcredit": _("đáp án tính điểm một phần"),
        "calculated": _("tính toán"),
        "ddwtos": _("kéo thả vào chỗ trống"),
        "gapselect": _("chọn từ điền vào chỗ trống"),
    }
    return names.get(kind, kind)


def unsupported(row: int | None, kind: str, stem: str) -> ImportIssue:
    """An issue for a question of a type the bank cannot hold (it only holds single-answer)."""
    return ImportIssue(row, None, "unsupported_type", _(
        "Câu hỏi «%(stem)s» thuộc dạng %(kind)s; hệ thống chỉ nhận câu trắc nghiệm "
        "một đáp án đúng và câu Đúng/Sai.", stem=shorten(stem), kind=type_name(kind)))


def judge_fractions(fractions: list[float], single: bool) -> tuple[str, str] | None:
    """Whether Moodle grades (fractions in percent) describe exactly one right choice.

    Returns None if they do, else (code, kind) where kind names an unsupported type for
    code "unsupported_type". A multi-response question is a type we do not hold; a
    single-choice question with no or two right answers is an authoring error.
    """
    positive = [f for f in fractions if f > 0]
    if len(positive) == 1 and positive[0] >= 100:
        return None
    if not positive:
        return ("missing_answer", "")
    if not single:
        return ("unsupported_type", "multiresponse")
    if any(f < 100 for f in positive):
        return ("unsupported_type", "partialcredit")
    return ("multiple_correct", "")


def fraction_issue(row: int | None, verdict: tuple[str, str], stem: str) -> ImportIssue:
    """The issue for a verdict of `judge_fractions`."""
    code, kind = verdict
    if code == "unsupported_type":
        return unsupported(row, kind, stem)
    if code == "missing_answer":
        return ImportIssue(row, None, code, _(
            "Câu hỏi «%(stem)s» không có đáp án đúng.", stem=shorten(stem)))
    return ImportIssue(row, None, code, _(
        "Câu hỏi «%(stem)s» có nhiều hơn một đáp án đúng.", stem=shorten(stem)))


def true_false_choices(answer_is_true: bool) -> list[ParsedChoice]:
    """A true/false question as the two-choice question the bank holds."""
    return [ParsedChoice(TRUE_LABEL, answer_is_true), ParsedChoice(FALSE_LABEL, not answer_is_true)]


def duplicate_key(topic: str | None, text: str) -> tuple[str, str]:
    """Two stems are the same question if they match after NFC and whitespace collapse."""
    return (normalize_text(topic), normalize_text(text))


class ResultBuilder:
    """Collects questions and issues; keeps the first of two identical questions.

    A duplicate in one file is almost always a copy-paste slip, and drawn twice it would
    put the same question twice into one exam code, so it is reported, not imported.
    """

    def __init__(self) -> None:
        self.result = ImportResult()
        self._seen: dict[tuple[str, str], int | None] = {}

    def issue(self, issue: ImportIssue) -> None:
        self.result.issues.append(issue)

    def add(self, question: ParsedQuestion, row: int | None, column: str | None = None) -> None:
        key = duplicate_key(question.topic, question.text)
        if key in self._seen:
            self.issue(ImportIssue(row, column, "duplicate_in_file", _(
                "Câu hỏi «%(stem)s» trùng với câu ở dòng %(first)s (cùng chuyên đề).",
                stem=shorten(question.text), first=self._seen[key])))
            return
        self._seen[key] = row
        self.result.questions.append(question)
