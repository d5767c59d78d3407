"""`python -m training.paired`: gained and lost rows and the exact McNemar p-value."""

from __future__ import annotations

import pytest

from training.paired import paired


def _rows(labels: list[str], truths: list[str | None]) -> list[dict[str, object]]:
    return [{"id": f"rs-{i:04d}", "truth": t, "label": label} for i, (label, t) in enumerate(zip(labels, truths))]


def test_counts_discordant_rows_and_leaves_out_rows_without_truth() -> None:
    truth = ["a", "a", "b", "b", None, "c"]
    a = _rows(["a", "x", "b", "x", "a", "c"], truth)
    b = _rows(["a", "a", "x", "b", "x", "x"], truth)
    result = paired(a, b)
    assert (result.n, result.gained, result.lost) == (5, 2, 2)
    assert (result.accuracy_a, result.accuracy_b) == (0.6, 0.6)
    assert result.p_value == 1.0


def test_p_value_is_the_exact_two_sided_binomial() -> None:
    truth = ["a"] * 10
    a = _rows(["x"] * 10, truth)
    b = _rows(["a"] * 9 + ["x"], truth)
    result = paired(a, b)
    assert (result.gained, result.lost) == (9, 0)
    assert result.p_value == pytest.approx(2 * 0.5**9)


def test_refuses_files_of_other_rows() -> None:
    a = _rows(["a"], ["a"])
    b = [{**a[0], "id": "rs-9999"}]
    with pytest.raises(ValueError, match="same rows"):
        paired(a, b)
