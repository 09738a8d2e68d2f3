"""Which signals tell answerable questions from unanswerable ones on single_topic_web (ROC AUC).

`bench/refusal.py` measures Lore's refusal at its thresholds; this bench measures how well each
candidate signal separates the two kinds of question at any threshold, per split, to decide which
signals are worth building into Lore. ROC AUC is the chance that an answerable question scores
above an unanswerable one: 0.5 is chance, 1.0 a perfect separation. Signals, each over the
sources Lore would give the model (``retrieval.service.find`` then ``fit_sources``):

- ``sentence cosine``: Lore's retrieval confidence, the best cosine between the question and one
  sentence of the sources;
- ``rare-word share``: the share of the question's content words, each weighted by its inverse
  frequency among the corpus's sentences, that the closest sentence holds; and ``cosine + 2 x
  share``, the best sum over the sentences;
- ``judge`` (``--judge``, about 10 minutes): SmolLM2 shown the three best sources and asked whether
  they answer the question, scored log P(yes) - log P(no) of its reply's first token;
- draft signals (``--drafts FILE``, repeatable: files of ``bench/refusal.py --record`` made with
  both checks off, ``LORE_RETRIEVAL__MIN_CONFIDENCE=0.0001 LORE_RETRIEVAL__CITATION_MIN_SUPPORT=0``):
  the longest run of the answer's words copied from a source, and the share of the words the
  answer adds to the question that occur in the sources.

    python bench/answerability.py --data-dir /tmp/lore-web
    python bench/answerability.py --data-dir /tmp/lore-web --judge --drafts train.jsonl --drafts test.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refusal import CORPUS, DEFAULT_DATASET, REPO, _ingest, questions, read_csv

SPLITS = ("train", "test")
JUDGE_SYSTEM = "You check whether a passage answers a question. Reply with yes or no."
JUDGE_USER = (
    "Passage:\n{passage}\n\nQuestion: {question}\n\nDoes the passage answer the question? Reply yes or no."
)


@dataclass
class Row:
    split: str
    question: str
    answerable: bool
    sentences: list[str]
    cosines: list[float]
    shares: list[float]
    sources: list[str]
    extra: dict[str, float] = field(default_factory=dict)


def auc(rows: Sequence[Row], signal: Callable[[Row], float]) -> float:
    """ROC AUC of ``signal`` for answerable (positive) against unanswerable rows; ties count half."""
    positive = [signal(r) for r in rows if r.answerable]
    negative = [signal(r) for r in rows if not r.answerable]
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def idf_table(dataset: Path) -> Callable[[str], float]:
    """Inverse frequency of a content word among the corpus's sentences (of 3 words or more)."""
    from retrieval.citations import content_words
    from retrieval.verification import sentences as sentences_of

    counts: Counter[str] = Counter()
    total = 0
    for row in read_csv(dataset / "documents.csv"):
        for sentence in sentences_of(row["text"]):
            if len(sentence.split()) >= 3:
                total += 1
                counts.update(content_words(sentence))
    return lambda word: math.log((total + 1) / (counts.get(word, 0) + 0.5))


async def retrieval_rows(resources: Any, dataset: Path) -> list[Row]:
    from retrieval.citations import content_words
    from retrieval.prompt import fit_sources
    from retrieval.service import find, max_source_chars
    from retrieval.verification import sentences as sentences_of

    idf = idf_table(dataset)
    rows = []
    for split in SPLITS:
        for asked in questions(dataset, split):
            hits = await find(resources, asked.text, corpus=CORPUS, k=resources.settings.retrieval.k)
            sources = fit_sources(hits, max_chars=max_source_chars(resources))
            query = await resources.embedder.embed_query(asked.text)
            sentences = [s for hit in sources for s in sentences_of(hit.text) if len(s.split()) >= 3][:32]
            vectors = await resources.embedder.embed(sentences) if sentences else []
            words = content_words(asked.text)
            weight = sum(idf(w) for w in words) or 1.0
            rows.append(
                Row(
                    split=split,
                    question=asked.text,
                    answerable=asked.answerable,
                    sentences=sentences,
                    cosines=[sum(a * b for a, b in zip(v, query, strict=True)) for v in vectors],
                    shares=[sum(idf(w) for w in words & content_words(s)) / weight for s in sentences],
                    sources=[hit.text for hit in sources],
                )
            )
    return rows


def judge(rows: Sequence[Row]) -> None:
    """SmolLM2's log P(yes) - log P(no) that the three best sources answer each question."""
    from llama_cpp import Llama
    from rich.progress import track

    from core.components.llm import smollm2_path

    model = Llama(model_path=str(smollm2_path()), n_ctx=2048, logits_all=True, verbose=False)
    for row in track(rows, description="judging", transient=True):
        passage = "\n\n".join(text[:1200] for text in row.sources[:3])
        reply = model.create_chat_completion(
            messages=[
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": JUDGE_USER.format(passage=passage, question=row.question)},
            ],
            max_tokens=1,
            temperature=0,
            logprobs=True,
            top_logprobs=20,
        )
        chances = {"yes": 0.0, "no": 0.0}
        for candidate in reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
            word = candidate["token"].strip().lower()
            if word in chances:
                chances[word] += math.exp(candidate["logprob"])
        row.extra["judge"] = math.log(chances["yes"] + 1e-6) - math.log(chances["no"] + 1e-6)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def longest_copy(answer: str, source: str) -> int:
    """Most consecutive words of ``answer`` that occur, in order, in ``source``."""
    haystack = f" {' '.join(_words(source))} "
    words = _words(answer)
    best = 0
    for start in range(len(words)):
        end = start + best + 1
        while end <= len(words) and f" {' '.join(words[start:end])} " in haystack:
            best = end - start
            end += 1
    return best


def add_drafts(rows: Sequence[Row], files: Sequence[Path]) -> None:
    from retrieval.citations import content_words

    by_question = {row.question: row for row in rows}
    for path in files:
        for line in path.read_text().splitlines():
            draft = json.loads(line)
            row = by_question.get(draft["question"])
            if row is None:
                raise SystemExit(f"{path}: {draft['question']!r} is not a single_topic_web question")
            sources = "\n".join(draft["sources"])
            added = content_words(draft["answer"]) - content_words(draft["question"])
            found = set().union(*(content_words(text) for text in draft["sources"]))
            row.extra["copied words"] = longest_copy(draft["answer"], sources)
            row.extra["added words found"] = len(added & found) / len(added) if added else 0.0


def closest(row: Row) -> int:
    return max(range(len(row.cosines)), key=row.cosines.__getitem__)


SIGNALS: dict[str, Callable[[Row], float]] = {
    "sentence cosine (Lore's retrieval confidence)": lambda r: max(r.cosines, default=0.0),
    "rare-word share of the closest sentence": lambda r: r.shares[closest(r)] if r.cosines else 0.0,
    "cosine + 2 x rare-word share, best sentence": lambda r: max(
        (c + 2 * s for c, s in zip(r.cosines, r.shares, strict=True)), default=0.0
    ),
}


def report(rows: Sequence[Row]) -> None:
    names = list(SIGNALS) + sorted({name for row in rows for name in row.extra})
    print(f"{'signal':<48} " + " ".join(f"{split + ' AUC':>10}" for split in SPLITS))
    for name in names:
        signal = SIGNALS.get(name) or (lambda r, name=name: r.extra[name])
        cells = []
        for split in SPLITS:
            picked = [r for r in rows if r.split == split and (name in SIGNALS or name in r.extra)]
            cells.append(f"{auc(picked, signal):>10.3f}" if picked else f"{'-':>10}")
        print(f"{name:<48} " + " ".join(cells))


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    from core.resources import open_resources
    from core.settings import Settings

    async with open_resources(Settings(data_dir=data_dir), with_llm=False, migrate_sqlite=True) as resources:
        await _ingest(resources, args.dataset)
        rows = await retrieval_rows(resources, args.dataset)
    if args.judge:
        judge(rows)
    add_drafts(rows, args.drafts)
    report(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="single_topic_web folder")
    parser.add_argument("--data-dir", type=Path, help="keep the ingested corpus here (reused by later runs)")
    parser.add_argument("--judge", action="store_true", help="also score SmolLM2 as a yes/no judge")
    parser.add_argument(
        "--drafts", type=Path, action="append", default=[], help="a bench/refusal.py --record file"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lore-bench-") as temporary:
        asyncio.run(run(args, args.data_dir or Path(temporary)))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
