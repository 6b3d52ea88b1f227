import pytest

from server.exam.scoring import DEFAULT_BANDS, BandError, band, score, top_labels, validate_bands


@pytest.mark.parametrize("n_correct,n,expected", [
    (50, 50, 10.0), (0, 50, 0.0), (45, 50, 9.0), (44, 50, 8.8), (33, 50, 6.6), (1, 3, 3.33), (2, 3, 6.67), (25, 50, 5.0),
])
def test_score_on_ten_point_scale(n_correct, n, expected):
    assert score(n_correct, n) == expected


@pytest.mark.parametrize("value,label", [
    (10, "Xuất sắc"), (9.0, "Xuất sắc"), (8.99, "Giỏi"), (8.0, "Giỏi"), (7.99, "Khá"), (6.5, "Khá"),
    (6.49, "Trung bình"), (5.0, "Trung bình"), (4.99, "Chưa đạt"), (0, "Chưa đạt"),
])
def test_default_bands(value, label):
    assert band(value, DEFAULT_BANDS) == label


def test_configurable_bands():
    bands = validate_bands([["Đạt", 5], ["Không đạt", 0]])
    assert band(5, bands) == "Đạt" and band(4.8, bands) == "Không đạt"
    assert top_labels(DEFAULT_BANDS) == ["Xuất sắc", "Giỏi"]


@pytest.mark.parametrize("bad", [
    [], [["A", 5]], [["A", 5], ["B", 6], ["C", 0]], [["", 5], ["B", 0]], [["A", "x"], ["B", 0]],
    [["A", 11], ["B", 0]], [["A", 5], ["A", 0]],
])
def test_bad_band_tables_are_refused(bad):
    with pytest.raises(BandError):
        validate_bands(bad)


def test_score_refuses_impossible_counts():
    with pytest.raises(ValueError):
        score(51, 50)
    with pytest.raises(ValueError):
        score(1, 0)
