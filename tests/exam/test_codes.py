"""Code generation: same set, another order, deterministic, balanced."""
from collections import Counter

import pytest

from server.exam.codes import ChoiceInfo, QuotaError, assign_codes, draw_questions, generate_codes, keeps_choice_order


def bank(n_questions=50, n_choices=4):
    choices = {}
    for q in range(1, n_questions + 1):
        right = q % n_choices
        choices[q] = [ChoiceInfo(q * 10 + i, f"Phương án {i}", i == right) for i in range(n_choices)]
    return list(choices), choices


def test_codes_hold_the_same_questions_in_another_order():
    qids, choices = bank()
    a, b = generate_codes(qids, choices, 2, seed=7)
    order_a, order_b = [i["q"] for i in a], [i["q"] for i in b]
    assert sorted(order_a) == sorted(order_b) == sorted(qids)
    assert order_a != order_b
    # neighbours never see the same question at the same number
    assert all(x != y for x, y in zip(order_a, order_b))
    for item_a in a:
        item_b = next(i for i in b if i["q"] == item_a["q"])
        assert sorted(item_a["c"]) == sorted(item_b["c"]) == sorted(c.id for c in choices[item_a["q"]])


def test_generation_is_deterministic_per_seed():
    qids, choices = bank()
    assert generate_codes(qids, choices, 3, seed=11) == generate_codes(qids, choices, 3, seed=11)
    assert generate_codes(qids, choices, 3, seed=11) != generate_codes(qids, choices, 3, seed=12)


@pytest.mark.parametrize("n_questions,n_choices", [(50, 4), (49, 4), (30, 3), (10, 2)])
def test_right_answer_letters_are_balanced(n_questions, n_choices):
    qids, choices = bank(n_questions, n_choices)
    for layout in generate_codes(qids, choices, 2, seed=3):
        letters = Counter()
        for item in layout:
            right = next(c.id for c in choices[item["q"]] if c.is_correct)
            letters[item["c"].index(right)] += 1
        assert max(letters.values()) - min(letters.values()) <= 1, letters
        assert len(letters) == n_choices


def test_choices_that_refer_to_the_others_keep_their_order():
    choices = [ChoiceInfo(1, "Đoàn kết", False), ChoiceInfo(2, "Dân chủ", False),
               ChoiceInfo(3, "Kỷ cương", False), ChoiceInfo(4, "Tất cả các đáp án trên", True)]
    assert keeps_choice_order(choices)
    for seed in range(5):
        layout = generate_codes([1], {1: choices}, 2, seed=seed)
        assert all(code[0]["c"] == [1, 2, 3, 4] for code in layout)


def test_draw_respects_quotas_and_seed():
    pool = {1: list(range(100, 120)), 2: list(range(200, 210))}
    drawn = draw_questions(pool, {1: 5, 2: 3}, seed=1)
    assert len(drawn) == 8 and len(set(drawn)) == 8
    assert sum(q < 200 for q in drawn) == 5
    assert drawn == draw_questions(pool, {1: 5, 2: 3}, seed=1)
    with pytest.raises(QuotaError) as err:
        draw_questions(pool, {2: 11}, seed=1)
    assert (err.value.have, err.value.need) == (10, 11)


@pytest.mark.parametrize("sizes", [[6], [5, 7], [61, 60, 59, 3], [1, 1, 1, 1]])
def test_neighbours_get_different_codes_and_totals_balance(sizes):
    seats = [(bp, s) for bp, n in enumerate(sizes, start=1) for s in range(n, 0, -1)]
    codes = assign_codes(seats, 2)
    for bp, n in enumerate(sizes, start=1):
        in_room = sorted((s, c) for (b, s), c in zip(seats, codes) if b == bp)
        assert all(a[1] != b[1] for a, b in zip(in_room, in_room[1:]))
    totals = Counter(codes)
    assert abs(totals[0] - totals[1]) <= 1
