"""Question import/export: Moodle's own fixture files, then synthetic cases in tables."""
from __future__ import annotations

import io
import os
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pytest

from server.questions.formats import (
    ImportResult,
    ParsedChoice,
    ParsedQuestion,
    TableError,
    export_questions_csv,
    export_questions_xlsx,
    normalize_text,
    parse_aiken,
    parse_gift,
    parse_moodle_xml,
    parse_question_table,
    read_table,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "moodle"
T, F = True, False


def fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Moodle fixture missing in CI: {path}")
        pytest.skip(f"Moodle fixture not available: {path}")
    return path


def summary(result: ImportResult) -> list[tuple]:
    """(source, topic, stem, [(choice, correct), ...]) per imported question."""
    return [(q.source, q.topic, q.text, [(c.text, c.correct) for c in q.choices]) for q in result.questions]


def issue_codes(result: ImportResult) -> list[tuple]:
    return [(i.row, i.column, i.code) for i in result.issues]


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# --- Moodle fixtures -------------------------------------------------------------------


def test_gift_fixture_imports_multichoice_and_true_false_and_reports_the_rest():
    result = parse_gift(fixture("moodle_gift_questions.gift.txt").read_text(encoding="utf-8"))

    assert summary(result) == [
        ("gift:Q3", None, "What's between orange and green in the spectrum?",
         [("yellow", T), ("red", F), ("blue", F)]),
        ("gift:Q7", None, "42 is the Absolute Answer to everything.", [("Đúng", F), ("Sai", T)]),
        ("gift:Q8", None, "TSL is blablabla.", [("Đúng", T), ("Sai", F)]),
    ]
    assert issue_codes(result) == [
        (2, None, "unsupported_type"),   # essay {}
        (5, None, "unsupported_type"),   # matching ->
        (22, None, "unsupported_type"),  # multi-response %50%
        (31, None, "parse_error"),       # junk "; after the numeric question
        (31, None, "unsupported_type"),  # numeric {#3:2}
        (34, None, "unsupported_type"),  # short answer
        (43, None, "parse_error"),       # junk "; after the true/false question
        (49, None, "duplicate_in_file"), # {TRUE} repeats the {T} question word for word
    ]
    kinds = [i.reason for i in result.issues if i.code == "unsupported_type"]
    for reason, kind in zip(kinds, ["tự luận", "ghép cặp", "nhiều đáp án đúng", "số", "trả lời ngắn"]):
        assert f"dạng {kind};" in reason
    assert not result.ok


def test_gift_fixture_with_category_sets_topic_and_unescapes_html():
    result = parse_gift(fixture("moodle_gift_questions_in_category.gift.txt").read_text(encoding="utf-8"),
                        default_topic="ignored once a category is set")

    topic = "Default for New Features"
    assert summary(result) == [
        ("gift:Q2", topic, "Listen to this greeting: What language is being spoken?",
         [("English", F), ("French", T), ("German", F), ("Spanish", F)]),
        ("gift:Q4", topic, "Moodle is an acronym for Modular Object-Oriented Dynamic Learning Environment.",
         [("Đúng", T), ("Sai", F)]),
    ]
    assert issue_codes(result) == [(5, None, "unsupported_type"), (22, None, "unsupported_type")]
    assert "ghép cặp" in result.issues[0].reason
    assert "trả lời ngắn" in result.issues[1].reason


def test_aiken_fixture_gives_two_questions_and_keeps_html_as_text():
    result = parse_aiken(fixture("moodle_aiken_questions.aiken.txt").read_text(encoding="utf-8"), "Moodle")

    assert result.ok
    assert summary(result) == [
        ("aiken:câu 1", "Moodle", "The Moodle project was started by:",
         [("Petr Skoda", F), ("Martin Dougiamas", T), ("Eloy Lafuente", F), ("Tim Hunt", F)]),
        ("aiken:câu 2", "Moodle",
         "Moodle's abilities include handling user input that includes <html class=\"cool\"> & images:",
         [("True", T), ("False", F)]),
    ]


def test_aiken_error_fixture_imports_what_moodle_imports_and_reports_each_error_line():
    result = parse_aiken(fixture("moodle_aiken_errors.txt").read_text(encoding="utf-8"))

    assert summary(result) == [
        ("aiken:câu 2", None, "A good question", [("Correct", T), ("Incorrect", F)]),
        ("aiken:câu 4", None, "A second good question",
         [("Incorrect (No space)", F), ("Correct (No space)", T)]),
    ]
    assert issue_codes(result) == [
        (3, None, "too_few_choices"),  # ANSWER after a single choice
        (5, None, "empty_text"),       # a choice before any stem
        (7, None, "empty_text"),       # an ANSWER line before any stem
        (14, None, "missing_answer"),  # the stem of the question that never got ANSWER
    ]


def test_moodle_xml_fixture_takes_topics_from_nested_categories_and_reports_the_essay():
    result = parse_moodle_xml(fixture("moodle_xml_nested_categories_with_questions.xml").read_bytes(), "X")

    yes_no = [("Đúng", T), ("Sai", F)]
    assert summary(result) == [
        ("xml:question 1", "Iota", "Testing Iota Question", yes_no),
        ("xml:question 3", "Kappa", "Testing Kappa Question", yes_no),
        ("xml:question 4", "Lambda", "Testing Lambda Question", yes_no),
        ("xml:question 5", "Mu", "Testing Mu Question", yes_no),
    ]
    assert issue_codes(result) == [(55, None, "unsupported_type")]
    assert "tự luận" in result.issues[0].reason
    assert "Testing Kappa Essay Question" in result.issues[0].reason


# --- GIFT, synthetic -------------------------------------------------------------------


@pytest.mark.parametrize("gift, code, kind", [
    ("Thủ đô? {=Hà Nội ~Huế}", None, None),
    ("Đúng không? {T}", None, None),
    ("Đúng không? {false#sai rồi}", None, None),
    ("Trình bày ý kiến. {}", "unsupported_type", "tự luận"),
    ("Năm nào? {#1930:0}", "unsupported_type", "số"),
    ("Tên Bác? {=Hồ Chí Minh =Nguyễn Ái Quốc}", "unsupported_type", "trả lời ngắn"),
    ("Ghép {=Hà Nội -> thủ đô =Huế -> cố đô}", "unsupported_type", "ghép cặp"),
    ("Chọn {~%50%a ~%50%b ~%-100%c}", "unsupported_type", "nhiều đáp án đúng"),
    ("Chọn {=a ~%50%b ~c}", "unsupported_type", "đáp án tính điểm một phần"),
    ("Đảng ra đời năm {~1920 =1930 ~1945} tại Hương Cảng.", "unsupported_type", "điền từ vào chỗ trống"),
    ("Chọn {=a =b ~c}", "multiple_correct", None),
    ("Chọn {~a ~b}", "missing_answer", None),
    ("Chọn {~a}", "too_few_choices", None),
    ("Chọn {=a ~ #chỉ có phản hồi}", "empty_text", None),
    ("::Chỉ có tên:: {=a ~b}", "empty_text", None),
    ("một dòng rác không có đáp án", "parse_error", None),
    ("Thiếu ngoặc {=a ~b", "parse_error", None),
])
def test_gift_question_kinds(gift, code, kind):
    result = parse_gift(gift)

    if code is None:
        assert result.ok and len(result.questions) == 1
    else:
        assert result.questions == []
        assert issue_codes(result) == [(1, None, code)]
        if kind:
            assert f"dạng {kind};" in result.issues[0].reason


@pytest.mark.parametrize("gift, stem, choices", [
    ("2 \\= 2 \\{ok\\} {=yes ~no \\~ maybe}", "2 = 2 {ok}", [("yes", T), ("no ~ maybe", F)]),
    ("[html]<p>A &amp; B<br>C</p> {=[plain]<b>x</b> ~y}", "A & B C", [("<b>x</b>", T), ("y", F)]),
    ("[html]Chọn {=<i>x</i> ~y &lt; z}", "Chọn", [("x", T), ("y < z", F)]),
    ("[markdown]**đậm** {=x ~y}", "**đậm**", [("x", T), ("y", F)]),
    ("Q {=a # đúng ~b # sai ####nhận xét chung}", "Q", [("a", T), ("b", F)]),
    ("Q {=%100%a ~%-50%b ~c}", "Q", [("a", T), ("b", F), ("c", F)]),
    ("Q {\n  ~b\n  =a\n}", "Q", [("b", F), ("a", T)]),
    (nfd("Chủ tịch Hồ Chí Minh   đọc\tTuyên ngôn? {=Ba Đình ~Tân Trào}"),
     "Chủ tịch Hồ Chí Minh đọc Tuyên ngôn?", [("Ba Đình", T), ("Tân Trào", F)]),
])
def test_gift_text_is_unescaped_stripped_and_nfc(gift, stem, choices):
    result = parse_gift(gift)

    assert result.ok, result.issues
    [question] = result.questions
    assert question.text == stem
    assert unicodedata.is_normalized("NFC", question.text)
    assert [(c.text, c.correct) for c in question.choices] == choices


def test_gift_categories_comments_and_line_numbers():
    text = (
        "// ngân hàng câu hỏi\r\n"
        "Câu không chuyên đề {=a ~b}\r\n"
        "\r\n"
        "$CATEGORY: $course$/top/Chuyên đề 1\r\n"
        "\r\n"
        "// chú thích\r\n"
        "::C1:: Câu một\r\n"
        "// chú thích giữa câu\r\n"
        "{=a ~b}\r\n"
        "\r\n"
        "::C2:: Câu hai {}\r\n"
    )
    result = parse_gift(text, default_topic="Chung")

    assert [(q.source, q.topic, q.text) for q in result.questions] == [
        ("gift:Q1", "Chung", "Câu không chuyên đề"),
        ("gift:Q2", "Chuyên đề 1", "Câu một"),
    ]
    assert issue_codes(result) == [(11, None, "unsupported_type")]


def test_gift_same_stem_in_two_topics_is_not_a_duplicate():
    text = "$CATEGORY: A\n\nQ {=a ~b}\n\n$CATEGORY: B\n\nQ {=a ~b}\n\nQ {=a ~b}\n"
    result = parse_gift(text)

    assert [(q.topic, q.source) for q in result.questions] == [("A", "gift:Q1"), ("B", "gift:Q2")]
    assert issue_codes(result) == [(9, None, "duplicate_in_file")]
    assert "dòng 7" in result.issues[0].reason


# --- Aiken, synthetic ------------------------------------------------------------------


@pytest.mark.parametrize("aiken, codes", [
    ("Câu hỏi\nA. Một\nB. Hai\nanswer: b\n", []),
    ("Câu hỏi\nA) Một\nB) Hai\nANSWER: E\n", [(4, None, "bad_answer_letter")]),
    ("Câu hỏi\nA) Một\nB) Hai\nANSWER:\n", [(4, None, "bad_answer_letter")]),
    ("Câu hỏi\nA) Một\nB) Hai\nANSWER: AB\n", [(4, None, "bad_answer_letter")]),
    ("Câu hỏi\nA) Một\nA) Hai\nANSWER: A\n", [(4, None, "parse_error")]),
    ("Câu hỏi\nA) Một\nB) Hai", [(1, None, "missing_answer")]),
    ("Câu hỏi\nA) Một\nB) Hai\nANSWER: A\n\nCâu hỏi\nA) Ba\nB) Bốn\nANSWER: B\n",
     [(6, None, "duplicate_in_file")]),
])
def test_aiken_errors(aiken, codes):
    assert issue_codes(parse_aiken(aiken)) == codes


def test_aiken_nfd_input_is_stored_nfc_with_topic():
    result = parse_aiken(nfd("Nghị quyết nào?\r\nA) Nghị quyết   số 1\r\nB) Nghị quyết số 2\r\nANSWER: A"),
                         default_topic=nfd("Chuyên đề 2"))

    assert summary(result) == [("aiken:câu 1", "Chuyên đề 2", "Nghị quyết nào?",
                                [("Nghị quyết số 1", T), ("Nghị quyết số 2", F)])]
    q = result.questions[0]
    assert all(unicodedata.is_normalized("NFC", s) for s in [q.topic, q.text, *(c.text for c in q.choices)])


# --- Moodle XML, synthetic -------------------------------------------------------------


def xml_quiz(*questions: str) -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<quiz>\n" + "\n".join(questions) + "\n</quiz>\n").encode()


def xml_question(kind: str, stem: str, answers: list[tuple[str, str]] = (), extra: str = "") -> str:
    body = "".join(f'<answer fraction="{f}" format="html"><text><![CDATA[{t}]]></text></answer>'
                   for f, t in answers)
    return (f'<question type="{kind}"><name><text>n</text></name>'
            f'<questiontext format="html"><text><![CDATA[{stem}]]></text></questiontext>{extra}{body}</question>')


@pytest.mark.parametrize("question, code, kind", [
    (xml_question("multichoice", "<p>Chọn</p>", [("100", "a"), ("0", "b")], "<single>true</single>"), None, None),
    (xml_question("multichoice", "Chọn", [("100", "a"), ("0", "b")], "<single>false</single>"), None, None),
    (xml_question("multichoice", "Chọn", [("50", "a"), ("50", "b")], "<single>false</single>"),
     "unsupported_type", "nhiều đáp án đúng"),
    (xml_question("multichoice", "Chọn", [("100", "a"), ("100", "b")], "<single>true</single>"),
     "multiple_correct", None),
    (xml_question("multichoice", "Chọn", [("0", "a"), ("0", "b")]), "missing_answer", None),
    (xml_question("multichoice", "Chọn", [("100", "a")]), "too_few_choices", None),
    (xml_question("multichoice", "", [("100", "a"), ("0", "b")]), "empty_text", None),
    (xml_question("truefalse", "Đúng?", [("0", "true"), ("0", "false")]), "missing_answer", None),
    (xml_question("essay", "Viết"), "unsupported_type", "tự luận"),
    (xml_question("matching", "Ghép"), "unsupported_type", "ghép cặp"),
    (xml_question("shortanswer", "Tên?", [("100", "x")]), "unsupported_type", "trả lời ngắn"),
    (xml_question("numerical", "Số?", [("100", "3")]), "unsupported_type", "số"),
    (xml_question("multianswer", "{1:MC:=a~b}"), "unsupported_type", "câu hỏi nhúng (cloze)"),
    (xml_question("description", "Đọc"), "unsupported_type", "mô tả"),
])
def test_moodle_xml_question_kinds(question, code, kind):
    result = parse_moodle_xml(xml_quiz(question))

    if code is None:
        assert result.ok and len(result.questions) == 1
    else:
        assert result.questions == []
        assert issue_codes(result) == [(3, None, code)]
        if kind:
            assert f"dạng {kind}" in result.issues[0].reason


def test_moodle_xml_html_text_false_answer_and_default_topic():
    data = xml_quiz(
        xml_question("truefalse", nfd("<p>Hội nghị &amp; <b>thành lập</b> Đảng</p>"),
                     [("0", "true"), ("100", "false")]),
        xml_question("multichoice", "<div>Năm?</div>", [("0", "<p>1925</p>"), ("100", "1930 &lt;x&gt;")],
                     "<single>1</single>"),
    )
    result = parse_moodle_xml(data, default_topic="Lịch sử Đảng")

    assert summary(result) == [
        ("xml:question 1", "Lịch sử Đảng", "Hội nghị & thành lập Đảng", [("Đúng", F), ("Sai", T)]),
        ("xml:question 2", "Lịch sử Đảng", "Năm?", [("1925", F), ("1930 <x>", T)]),
    ]


@pytest.mark.parametrize("data, row", [
    (b"<?xml version='1.0'?>\n<quiz>\n<question type='essay'>\n</quiz>", 4),
    (b"", 1),
    (b"not xml at all", 1),
    (b"<?xml version='1.0'?>\n<!DOCTYPE quiz [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>\n"
     b"<quiz><question type='essay'><questiontext><text>&b;</text></questiontext></question></quiz>", None),
    (b"<?xml version='1.0'?>\n<!DOCTYPE quiz SYSTEM 'http://example.invalid/x.dtd'>\n<quiz/>", None),
    (b"<?xml version='1.0'?>\n<html><body/></html>", 1),
])
def test_moodle_xml_malformed_or_unsafe_gives_one_parse_error(data, row):
    result = parse_moodle_xml(data)

    assert result.questions == []
    assert issue_codes(result) == [(row, None, "parse_error")]


# --- spreadsheets ----------------------------------------------------------------------


def make_xlsx(rows: list[list[object]], first_row: int = 1) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for offset, row in enumerate(rows):
        for column, value in enumerate(row, start=1):
            if value is not None:
                sheet.cell(row=first_row + offset, column=column, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_read_table_xlsx_keeps_excel_row_numbers_and_skips_empty_rows():
    data = make_xlsx([
        ["Chuyên đề", "Câu hỏi", "A", "B", "Đáp án"],
        [None],
        ["CĐ1", nfd("Câu   một"), 12.0, 3.5, "A"],
        [None],
        [None],
        ["CĐ1", "Câu hai", "x", "y", "B", None, None],
    ])
    header, rows = read_table(data, "Ngân hàng.XLSX")

    assert header == ["Chuyên đề", "Câu hỏi", "A", "B", "Đáp án"]
    assert rows == [(3, ["CĐ1", "Câu một", "12", "3.5", "A"]), (6, ["CĐ1", "Câu hai", "x", "y", "B"])]


@pytest.mark.parametrize("data", [
    "\ufeffChuyên đề,Câu hỏi,A,B,Đáp án\r\nCĐ1,\"Câu, có phẩy\",x,y,A\r\n,,,,\r\nCĐ1,Câu hai,x,y,B\r\n".encode(),
    "Chuyên đề;Câu hỏi;A;B;Đáp án\nCĐ1;Câu, có phẩy;x;y;A\n\nCĐ1;Câu hai;x;y;B\n".encode(),
])
def test_read_table_csv_with_bom_or_semicolons(data):
    header, rows = read_table(data, "cau-hoi.csv")

    assert header == ["Chuyên đề", "Câu hỏi", "A", "B", "Đáp án"]
    assert rows == [(2, ["CĐ1", "Câu, có phẩy", "x", "y", "A"]), (4, ["CĐ1", "Câu hai", "x", "y", "B"])]


def zip_without_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "không phải Excel")
    return buffer.getvalue()


@pytest.mark.parametrize("data, filename, code", [
    (os.urandom(512), "random.xlsx", "not_a_spreadsheet"),
    (b"PK\x03\x04 truncated", "cut.xlsx", "not_a_spreadsheet"),
    (zip_without_workbook(), "other.xlsx", "not_a_spreadsheet"),
    ("Câu hỏi".encode("utf-16"), "utf16.csv", "not_a_spreadsheet"),
    (b"\xff\xfe\x00garbage", "binary.csv", "not_a_spreadsheet"),
    (b"a,b\n1,2\n", "old.xls", "bad_extension"),
    (b"a,b\n1,2\n", "no-extension", "bad_extension"),
    (b"\xef\xbb\xbf\r\n,,\r\n", "empty.csv", "empty_file"),
])
def test_read_table_refuses_what_is_not_a_table(data, filename, code):
    with pytest.raises(TableError) as caught:
        read_table(data, filename)
    assert caught.value.code == code
    assert caught.value.reason


HEADER = ["STT", "Chuyên đề", "Câu hỏi", "A", "B", "C", "D", "Đáp án"]


def test_question_table_good_rows_with_default_topic_and_template_rows():
    rows = [
        (2, ["1", "Lịch sử", "Năm thành lập Đảng?", "1925", "1930", "1945", "", "b"]),
        (3, ["2", "", nfd("Đúng hay sai: Đảng ra đời năm 1930"), "Đúng", "Sai", "", "", " A "]),
        (4, ["3"]),  # a numbered template row with nothing else
    ]
    result = parse_question_table(HEADER, rows, default_topic="Chung", kind="csv")

    assert result.ok
    assert summary(result) == [
        ("csv:dòng 2", "Lịch sử", "Năm thành lập Đảng?", [("1925", F), ("1930", T), ("1945", F)]),
        ("csv:dòng 3", "Chung", "Đúng hay sai: Đảng ra đời năm 1930", [("Đúng", T), ("Sai", F)]),
    ]


@pytest.mark.parametrize("cells, expected", [
    (["", "", "x", "y", "", "", "A"], [("Câu hỏi", "empty_text")]),
    (["", "Q", "x", "", "", "", "A"], [("B", "too_few_choices")]),
    (["", "Q", "x", "y", "", "w", "A"], [("C", "choice_gap")]),
    (["", "Q", "", "y", "z", "", "B"], [("A", "choice_gap")]),
    (["", "Q", "x", "y", "x", "", "A"], [("C", "duplicate_choice")]),
    (["", "Q", "x", "y", "", "", ""], [("Đáp án", "missing_answer")]),
    (["", "Q", "x", "y", "", "", "C"], [("Đáp án", "bad_answer_letter")]),
    (["", "Q", "x", "y", "", "", "G"], [("Đáp án", "bad_answer_letter")]),
    (["", "Q", "x", "y", "", "", "1"], [("Đáp án", "bad_answer_letter")]),
    (["", "Q", "x", "y", "", "", "A, B"], [("Đáp án", "multiple_correct")]),
    (["", "", "x", "", "", "", "B"], [("Câu hỏi", "empty_text"), ("B", "too_few_choices"),
                                       ("Đáp án", "bad_answer_letter")]),
])
def test_question_table_row_errors_name_row_and_column(cells, expected):
    rows = [(2, ["1", "CĐ", "Câu đúng", "a", "b", "", "", "A"]), (7, ["2", *cells])]
    result = parse_question_table(HEADER, rows)

    assert [q.source for q in result.questions] == ["xlsx:dòng 2"]
    assert issue_codes(result) == [(7, column, code) for column, code in expected]
    assert all(i.reason for i in result.issues)


def test_question_table_duplicates_within_a_topic_only():
    rows = [
        (2, ["", "CĐ1", "Câu  hỏi", "a", "b", "", "", "A"]),
        (3, ["", "CĐ2", "Câu hỏi", "a", "b", "", "", "A"]),
        (4, ["", "CĐ1", nfd("Câu hỏi "), "c", "d", "", "", "B"]),
    ]
    result = parse_question_table(HEADER, rows)

    assert [q.source for q in result.questions] == ["xlsx:dòng 2", "xlsx:dòng 3"]
    assert issue_codes(result) == [(4, "Câu hỏi", "duplicate_in_file")]
    assert "dòng 2" in result.issues[0].reason


@pytest.mark.parametrize("header, ok", [
    (["topic", "QUESTION", "a", "b", "Answer"], True),
    (["chuyen de", " CÂU  HỎI ", "A", "B", "C", "D", "E", "F", "đáp án"], True),
    ([nfd("Chuyên đề"), nfd("Câu hỏi"), "A", "B", nfd("Đáp án")], True),
    (["Câu hỏi", "A", "B", "Đáp án"], True),  # topic is optional
    (["Chuyên đề", "A", "B", "Đáp án"], False),
    (["Chuyên đề", "Câu hỏi", "A", "Đáp án"], False),
    (["Chuyên đề", "Câu hỏi", "A", "B"], False),
    (["Câu hỏi", "Câu hỏi", "A", "B", "Đáp án"], False),
])
def test_question_table_header_matching(header, ok):
    result = parse_question_table(header, [])

    if ok:
        assert result.ok
    else:
        assert [(i.row, i.code) for i in result.issues] == [(1, "bad_header")]


BANK = [
    ParsedQuestion("Chuyên đề 1: Lịch sử Đảng", "Đảng Cộng sản Việt Nam ra đời năm nào?",
                   [ParsedChoice("1925", False), ParsedChoice("1930", True),
                    ParsedChoice("1945", False), ParsedChoice("1954", False)], "ui"),
    ParsedQuestion("Chuyên đề 1: Lịch sử Đảng", "Câu có dấu phẩy, \"ngoặc kép\" và ; chấm phẩy",
                   [ParsedChoice("=5", False), ParsedChoice("007", True)], "ui"),
    ParsedQuestion(None, "Câu sáu phương án", [ParsedChoice(c, c == "F") for c in "ABCDEF"], "ui"),
    ParsedQuestion("Tư tưởng Hồ Chí Minh", "Đúng hay sai?", [ParsedChoice("Đúng", False),
                                                            ParsedChoice("Sai", True)], "ui"),
]


@pytest.mark.parametrize("export, filename", [(export_questions_xlsx, "bank.xlsx"),
                                              (export_questions_csv, "bank.csv")])
def test_export_then_import_round_trips(export, filename):
    header, rows = read_table(export(BANK), filename)
    result = parse_question_table(header, rows, kind=filename[-4:])

    assert header == ["Chuyên đề", "Câu hỏi", "A", "B", "C", "D", "E", "F", "Đáp án"]
    assert result.ok, result.issues
    strip = [(q.topic, q.text, q.choices) for q in result.questions]
    assert strip == [(q.topic, q.text, q.choices) for q in BANK]


def test_export_xlsx_writes_formula_looking_text_as_text():
    workbook = openpyxl.load_workbook(io.BytesIO(export_questions_xlsx(BANK[1:2])))
    cell = workbook.active["C2"]

    assert (cell.value, cell.data_type) == ("=5", "s")


def test_export_csv_has_bom_for_excel():
    assert export_questions_csv(BANK[:1]).startswith(b"\xef\xbb\xbfChuy")


# --- normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    (nfd("  Huyện   Tam Đường \n"), "Huyện Tam Đường"),
    ("a\u00a0\u00a0b\tc\r\nd", "a b c d"),
    ("a\x00b\x1bc", "abc"),
    (None, ""),
])
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected
    assert unicodedata.is_normalized("NFC", normalize_text(raw))
