"""Question files in and out: Moodle GIFT, Aiken and XML, and the bank as a spreadsheet.

Pure logic (no app, no database): each parser returns an ImportResult holding the
single-answer questions it could read and an issue for everything it could not, so the
organizer sees the whole list before anything is saved.
"""
from .aiken import parse_aiken
from .common import ImportIssue, ImportResult, ParsedChoice, ParsedQuestion, fold, normalize_text
from .gift import parse_gift
from .moodle_xml import parse_moodle_xml
from .question_table import export_questions_csv, export_questions_xlsx, parse_question_table
from .table import Column, TableError, cell, header_key, locate_columns, read_table

__all__ = [
    "Column",
    "ImportIssue",
    "ImportResult",
    "ParsedChoice",
    "ParsedQuestion",
    "TableError",
    "cell",
    "export_questions_csv",
    "export_questions_xlsx",
    "fold",
    "header_key",
    "locate_columns",
    "normalize_text",
    "parse_aiken",
    "parse_gift",
    "parse_moodle_xml",
    "parse_question_table",
    "read_table",
]
