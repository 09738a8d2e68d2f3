import math

import pytest

from evals import metrics


def test_hit_and_reciprocal_rank_by_hand() -> None:
    ranked = ["d3", "d1", "d2"]
    assert metrics.first_relevant_rank(ranked, {"d1"}) == 2
    assert metrics.hit_at_k(ranked, {"d1"}, 1) == 0.0
    assert metrics.hit_at_k(ranked, {"d1"}, 2) == 1.0
    assert metrics.reciprocal_rank(ranked, {"d1", "d2"}) == pytest.approx(0.5)
    assert metrics.reciprocal_rank(ranked, {"x"}) == 0.0


def test_mrr_ignores_documents_judged_not_relevant() -> None:
    # a qrels row with relevance 0 names a document that does not count as a hit
    assert metrics.reciprocal_rank(["a", "b", "c"], {"a": 0, "c": 2}) == pytest.approx(1 / 3)


def test_several_chunks_of_one_document_count_once() -> None:
    assert metrics.dedupe(["a", "a", "b", "a", "c"]) == ["a", "b", "c"]
    assert metrics.reciprocal_rank(metrics.dedupe(["x", "x", "x", "ref"]), {"ref"}) == pytest.approx(0.5)


def test_ndcg_with_graded_relevance_by_hand() -> None:
    # gains 2 at rank 1 and 1 at rank 3; ideal order puts 2, 1, 1 at ranks 1-3
    ranked = ["a", "x", "b", "y"]
    relevant = {"a": 2, "b": 1, "c": 1}
    dcg = 2 / math.log2(2) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert metrics.ndcg_at_k(ranked, relevant, 10) == pytest.approx(0.7985, abs=1e-4)
    assert metrics.ndcg_at_k(["a", "c", "b"], relevant, 10) == pytest.approx(1.0)
    # cut at k: only rank 1 counts, against the ideal's first gain
    assert metrics.ndcg_at_k(ranked, relevant, 1) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(["x"], relevant, 10) == 0.0
    assert metrics.ndcg_at_k(["x"], {}, 10) is None


def test_ndcg_agrees_with_the_retrieval_benchmark() -> None:
    from bench.retrieval import ndcg_at, recall_at

    ranked = ["d4", "d1", "d9", "d2", "d7"]
    relevant = {"d1": 1, "d2": 2, "d3": 1}
    assert metrics.ndcg_at_k(ranked, relevant, 10) == pytest.approx(ndcg_at(ranked, relevant, 10))
    assert metrics.recall_at_k(ranked, relevant, 3) == pytest.approx(recall_at(ranked, relevant, 3))


def test_recall_at_k_by_hand() -> None:
    assert metrics.recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 2) == pytest.approx(0.25)
    assert metrics.recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, 3) == pytest.approx(0.5)
    assert metrics.recall_at_k(["a"], set(), 3) is None


def test_token_f1_and_exact_match_by_hand() -> None:
    # normalised: "keybullet kin drop key upon death" vs "they drop key"
    # common tokens: drop, key -> precision 2/6, recall 2/3, F1 = 2*(1/3)*(2/3)/(1/3+2/3) = 4/9
    assert metrics.token_f1("Keybullet Kin drop a key upon death.", "They drop the key") == pytest.approx(
        4 / 9
    )
    assert metrics.token_f1("Python 3.11", "python 311") == pytest.approx(1.0)
    assert metrics.token_f1("nothing shared", "other words") == 0.0
    assert metrics.exact_match("The Answer!", "answer") == 1.0
    assert metrics.exact_match("an answer here", "answer") == 0.0


def test_citation_validity_and_refusal() -> None:
    assert metrics.citation_validity(3, 1) == pytest.approx(0.75)
    assert metrics.citation_validity(0, 0) is None
    assert metrics.refusal_correct(refused=True, answerable=False) == 1.0
    assert metrics.refusal_correct(refused=True, answerable=True) == 0.0
    assert metrics.refusal_correct(refused=False, answerable=True) == 1.0


def test_mean_of_nothing_is_not_zero() -> None:
    assert metrics.mean([]) is None
    assert metrics.mean([None, float("nan")]) is None
    assert metrics.mean([1.0, 0.0, None]) == 0.5


def test_percentiles_and_spread() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert metrics.percentile(values, 50) == 30.0
    assert metrics.percentile(values, 95) == pytest.approx(48.0)
    assert metrics.percentile([], 50) is None
    spread = metrics.spread([0.62, 0.58, 0.61])
    assert spread is not None
    assert spread["min"] == 0.58 and spread["max"] == 0.62
    assert spread["mean"] == pytest.approx(0.6033, abs=1e-4)
