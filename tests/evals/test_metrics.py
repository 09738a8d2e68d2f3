import pytest

from evals import metrics


def test_hit_and_reciprocal_rank_by_hand() -> None:
    ranked = ["d3", "d1", "d2"]
    assert metrics.first_relevant_rank(ranked, {"d1"}) == 2
    assert metrics.hit_at_k(ranked, {"d1"}, 1) == 0.0
    assert metrics.hit_at_k(ranked, {"d1"}, 2) == 1.0
    assert metrics.reciprocal_rank(ranked, {"d1", "d2"}) == pytest.approx(0.5)
    assert metrics.reciprocal_rank(ranked, {"x"}) == 0.0


def test_several_chunks_of_one_document_count_once() -> None:
    assert metrics.dedupe(["a", "a", "b", "a", "c"]) == ["a", "b", "c"]
    assert metrics.reciprocal_rank(metrics.dedupe(["x", "x", "x", "ref"]), {"ref"}) == pytest.approx(0.5)


def test_mean_of_nothing_is_not_zero() -> None:
    assert metrics.mean([]) is None
    assert metrics.mean([1.0, 0.0]) == 0.5
