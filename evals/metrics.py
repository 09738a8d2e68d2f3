"""Metric functions over plain values (pure): retrieval ranks, answer overlap, summaries.

Ranked lists hold document labels, best first; ``relevant`` maps a label to its graded relevance
(a set counts every member as relevance 1). Functions return None where a metric is undefined
(no relevant document, no reference), which callers report as "not measured", never as 0.
"""

from __future__ import annotations

import math
import re
import statistics
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

Relevance = Mapping[str, int] | set[str] | frozenset[str]


def _graded(relevant: Relevance) -> dict[str, int]:
    if isinstance(relevant, Mapping):
        return {doc: int(gain) for doc, gain in relevant.items()}
    return dict.fromkeys(relevant, 1)


def first_relevant_rank(ranked: Sequence[str], relevant: Relevance) -> int | None:
    """1-based rank of the first relevant item, or None."""
    gains = _graded(relevant)
    for rank, item in enumerate(ranked, start=1):
        if gains.get(item, 0) > 0:
            return rank
    return None


def hit_at_k(ranked: Sequence[str], relevant: Relevance, k: int) -> float:
    """1.0 when a relevant item is in the top ``k``, else 0.0."""
    rank = first_relevant_rank(ranked, relevant)
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: Relevance) -> float:
    """1/rank of the first relevant item, 0.0 when none is retrieved."""
    rank = first_relevant_rank(ranked, relevant)
    return 1.0 / rank if rank is not None else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Relevance, k: int) -> float | None:
    """Share of the relevant items found in the top ``k``; None when nothing is relevant."""
    wanted = {doc for doc, gain in _graded(relevant).items() if gain > 0}
    if not wanted:
        return None
    return len(wanted & set(ranked[:k])) / len(wanted)


def ndcg_at_k(ranked: Sequence[str], relevant: Relevance, k: int = 10) -> float | None:
    """nDCG@k with graded gains, as BEIR and pytrec_eval compute it (gain = relevance, log2(rank+1))."""
    gains = _graded(relevant)
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    if not idcg:
        return None
    dcg = sum(gains.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    return dcg / idcg


def dedupe(ranked: Sequence[str]) -> list[str]:
    """Items in first-seen order: several chunks of one document count once, at its best rank."""
    seen: dict[str, None] = {}
    for item in ranked:
        seen.setdefault(item, None)
    return list(seen)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised answer equals the normalised reference."""
    return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between the normalised answer and reference (bags of words)."""
    predicted = normalize_answer(prediction).split()
    wanted = normalize_answer(reference).split()
    if not predicted or not wanted:
        return 1.0 if predicted == wanted else 0.0
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def citation_validity(supported: int, unsupported: int) -> float | None:
    """Share of an answer's citations that their sources support; None for an answer citing nothing."""
    total = supported + unsupported
    return supported / total if total else None


def refusal_correct(refused: bool, answerable: bool) -> float:
    """1.0 when Lore refused exactly the questions the documents cannot answer."""
    return 1.0 if refused != answerable else 0.0


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the measured values (None ones skipped); None when none was measured."""
    measured = [v for v in values if v is not None and not math.isnan(v)]
    return sum(measured) / len(measured) if measured else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """Mean, sample standard deviation, min and max of repeated measurements."""
    if not values:
        return None
    return {
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }
