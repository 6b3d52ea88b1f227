"""Drawing an exam's questions and generating its codes. Pure and deterministic.

Every random choice goes through `random.Random` seeded from the exam's seed and a
purpose string, so the same seed always yields the same exam and the codes can be
regenerated and checked at any time.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

#: a choice that refers to the others ("all of the above", "cả A và B") keeps the order.
_REFERS_TO_OTHERS = re.compile(
    r"(tất cả|cả\s+[a-f]\s*(,|và)|các (đáp án|phương án|ý) trên|cả \w+ đáp án|"
    r"không có (đáp án|phương án)|all of the above|none of the above|both [a-f] and)",
    re.IGNORECASE,
)


class QuotaError(ValueError):
    def __init__(self, topic_id: int, have: int, need: int):
        self.topic_id, self.have, self.need = topic_id, have, need
        super().__init__(f"topic {topic_id}: {have} questions, quota {need}")


@dataclass(frozen=True)
class ChoiceInfo:
    id: int
    text: str
    is_correct: bool


def _rng(seed: int, purpose: str) -> random.Random:
    return random.Random(f"{seed}:{purpose}")


def draw_questions(
    pool: Mapping[int, Sequence[int]], quotas: Mapping[int, int], seed: int
) -> list[int]:
    """Draw `quotas[topic]` question ids from each topic's pool; topic order, then id order."""
    drawn: list[int] = []
    for topic_id in sorted(quotas):
        need = quotas[topic_id]
        if need <= 0:
            continue
        candidates = sorted(pool.get(topic_id, ()))
        if len(candidates) < need:
            raise QuotaError(topic_id, len(candidates), need)
        drawn.extend(sorted(_rng(seed, f"draw:{topic_id}").sample(candidates, need)))
    return drawn


def keeps_choice_order(choices: Sequence[ChoiceInfo]) -> bool:
    return any(_REFERS_TO_OTHERS.search(c.text) for c in choices)


def _question_orders(question_ids: Sequence[int], n_codes: int, seed: int) -> list[list[int]]:
    """One order per code, each a permutation; a question avoids the position it has in
    earlier codes wherever the set is large enough, so neighbours see different items."""
    orders: list[list[int]] = []
    n = len(question_ids)
    for k in range(n_codes):
        rng = _rng(seed, f"order:{k}")
        order = list(question_ids)
        rng.shuffle(order)
        if n > 1:
            for _ in range(20):
                clashes = [i for i in range(n) if any(o[i] == order[i] for o in orders)]
                if not clashes:
                    break
                for i in clashes:
                    j = rng.randrange(n)
                    order[i], order[j] = order[j], order[i]
        orders.append(order)
    return orders


def _shuffle_choices(
    question_order: Sequence[int],
    choices: Mapping[int, Sequence[ChoiceInfo]],
    rng: random.Random,
) -> dict[int, list[int]]:
    """Shuffle each question's choices so that the right answer's letter is balanced over
    the code (about as many A as B, C and D), not left to chance."""
    targets: dict[int, int] = {}
    by_size: dict[int, list[int]] = {}
    for qid in question_order:
        by_size.setdefault(len(choices[qid]), []).append(qid)
    for size, qids in by_size.items():
        slots = [i % size for i in range(len(qids))]
        rng.shuffle(slots)
        targets.update(zip(qids, slots))
    out: dict[int, list[int]] = {}
    for qid in question_order:
        items = list(choices[qid])
        if keeps_choice_order(items):
            out[qid] = [c.id for c in items]
            continue
        right = [c for c in items if c.is_correct]
        others = [c for c in items if not c.is_correct]
        rng.shuffle(others)
        if len(right) == 1:
            others.insert(targets[qid], right[0])
        else:
            others = items[:]
            rng.shuffle(others)
        out[qid] = [c.id for c in others]
    return out


def generate_codes(
    question_ids: Sequence[int],
    choices: Mapping[int, Sequence[ChoiceInfo]],
    n_codes: int,
    seed: int,
) -> list[list[dict]]:
    """Layouts for `n_codes` codes: [{"q": question_id, "c": [choice_id, ...]}, ...]."""
    if n_codes < 1:
        raise ValueError("n_codes must be at least 1")
    layouts = []
    for k, order in enumerate(_question_orders(question_ids, n_codes, seed)):
        shuffled = _shuffle_choices(order, choices, _rng(seed, f"choices:{k}"))
        layouts.append([{"q": qid, "c": shuffled[qid]} for qid in order])
    return layouts


def code_labels(n_codes: int, first: int = 101) -> list[str]:
    return [str(first + i) for i in range(n_codes)]


def assign_codes(seats: Sequence[tuple[int | None, int]], n_codes: int) -> list[int]:
    """Code index for each (bridge_point_id, seat) in the given order.

    Within a bridge point, learners in seat order alternate codes, so neighbours never
    share one; each bridge point starts one code further on, so totals stay balanced
    even where rooms have odd sizes.
    """
    by_bp: dict[int | None, list[int]] = {}
    for i, (bp, _seat) in enumerate(seats):
        by_bp.setdefault(bp, []).append(i)
    result = [0] * len(seats)
    offset = 0
    for bp in sorted(by_bp, key=lambda b: (b is None, b or 0)):
        idxs = sorted(by_bp[bp], key=lambda i: seats[i][1])
        for rank, i in enumerate(idxs):
            result[i] = (offset + rank) % n_codes
        offset = (offset + len(idxs)) % n_codes
    return result
