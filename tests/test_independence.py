import pytest

from council.meter.independence import kish_effective_votes, mean_off_diagonal


def test_kish_effective_votes_spans_one_to_n() -> None:
    assert kish_effective_votes(5, 0.0) == 5
    assert kish_effective_votes(5, 1.0) == 1
    # Nine judges at a mean correlation of 0.43 carry about two votes (arXiv 2605.29800's scale).
    assert kish_effective_votes(9, 0.43) == pytest.approx(9 / (1 + 8 * 0.43))
    assert kish_effective_votes(5, -0.3) == 5  # negative correlation is not banked
    with pytest.raises(ValueError, match="at least one vote"):
        kish_effective_votes(0, 0.2)


def test_mean_off_diagonal_ignores_the_diagonal() -> None:
    assert mean_off_diagonal([[1, 0.5, 0.1], [0.5, 1, 0.3], [0.1, 0.3, 1]]) == pytest.approx(0.3)
    assert mean_off_diagonal([[1.0]]) == 0.0
    with pytest.raises(ValueError, match="square"):
        mean_off_diagonal([[1, 0.2]])
