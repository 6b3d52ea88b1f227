"""An exam code as the hub serves it: the learner's paper, the key, and sealing.

A code's layout is fixed once the exam is scheduled, and an exam's grading (score shown
or not, bands) when it is created, so each hub process may keep the derived `CodeData`
in memory: it is a pure function of rows that never change again, so two processes can
never disagree about it.
"""
from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..extensions import db
from ..questions.models import Choice, Question
from .models import ExamCode
from flask_babel import gettext as _


@dataclass(frozen=True)
class CodeData:
    code_id: int
    exam_id: int
    label: str
    #: question id → the choice ids allowed for it.
    allowed: dict[int, frozenset[int]]
    #: question id → the right choice id.
    key: dict[int, int]
    #: what the learner's page shows: questions in the code's order, choices shuffled.
    paper: list[dict[str, Any]] = field(hash=False)
    seal_key: bytes = field(repr=False, default=b"")
    #: the paper sealed once per process (10,000 joins need not encrypt it 10,000 times).
    sealed: dict = field(hash=False, repr=False, default_factory=dict)
    #: the exam's grading, fixed when it was created: whether learners see their score,
    #: and the bands as ((label, minimum), ...).
    show_score: bool = True
    bands: tuple = ()

    @property
    def n_questions(self) -> int:
        return len(self.paper)


_cache: dict[int, CodeData] = {}
_lock = threading.Lock()


def load_code(code_id: int) -> CodeData:
    """The code's data, from this process's cache or from the database once."""
    data = _cache.get(code_id)
    if data is not None:
        return data
    code = db.session.get(ExamCode, code_id)
    if code is None:
        from ..core.errors import NotFound

        raise NotFound("exam.unknown_code", _("Mã đề không tồn tại."))
    data = build_code_data(code)
    with _lock:
        _cache[code_id] = data
    return data


def build_code_data(code: ExamCode) -> CodeData:
    qids = [item["q"] for item in code.layout]
    questions = {
        q.id: q for q in db.session.scalars(sa.select(Question).where(Question.id.in_(qids)))
    }
    choices: dict[int, Choice] = {
        c.id: c for c in db.session.scalars(sa.select(Choice).where(Choice.question_id.in_(qids)))
    }
    paper, allowed, key = [], {}, {}
    for number, item in enumerate(code.layout, start=1):
        q = questions[item["q"]]
        ids = item["c"]
        allowed[q.id] = frozenset(ids)
        key[q.id] = next(cid for cid in ids if choices[cid].is_correct)
        paper.append(
            {
                "id": q.id,
                "n": number,
                "text": q.text,
                "choices": [{"id": cid, "text": choices[cid].text} for cid in ids],
            }
        )
    from .scoring import DEFAULT_BANDS

    exam = code.exam
    bands = tuple((str(label), float(minimum)) for label, minimum in (exam.bands or DEFAULT_BANDS))
    return CodeData(code.id, code.exam_id, code.label, allowed, key, paper, code.seal_key,
                    seal(paper, code.seal_key), exam.show_score, bands)


def forget(code_ids: list[int] | None = None) -> None:
    with _lock:
        if code_ids is None:
            _cache.clear()
        for cid in code_ids or ():
            _cache.pop(cid, None)


def new_seal_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seal(paper: list[dict[str, Any]], key: bytes) -> dict[str, str]:
    """AES-GCM-encrypt a paper so it can reach a learner before the start and be read only
    when the start releases the key: the start is then a tiny broadcast for everyone."""
    nonce = os.urandom(12)
    plain = json.dumps(paper, ensure_ascii=False, separators=(",", ":")).encode()
    return {"nonce": b64(nonce), "data": b64(AESGCM(key).encrypt(nonce, plain, None))}


def unseal(sealed: dict[str, str], key: bytes) -> list[dict[str, Any]]:
    plain = AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["data"]), None)
    return json.loads(plain)
