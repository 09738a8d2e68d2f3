"""The runner with a scripted backend: resumable records, concurrency, failures, scoring."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from core.errors import BackendError
from evals.runner import RECORDS_FILE, Answered, Run, score_case
from evals.suite import EvalCase, Suite


def _suite(n: int, **overrides: object) -> Suite:
    suite = Suite.model_validate({"name": "t", "corpus": "c", "k": 2, **overrides})
    suite.cases = [
        EvalCase(question=f"question {i}", reference_answer="the cat sat", reference_documents=["a.md"])
        for i in range(n)
    ]
    return suite


class Scripted:
    """Answers every question citing a.md; fails the questions named in ``fail``."""

    def __init__(self, fail: set[str] | None = None, delay_s: float = 0.0) -> None:
        self.asked: list[str] = []
        self.fail = fail or set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay_s = delay_s

    async def run(self, suite: Suite, case: EvalCase) -> Answered:
        self.asked.append(case.question)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(self.delay_s)
        self.in_flight -= 1
        if case.question in self.fail:
            raise BackendError("the LLM endpoint is down")
        passage = {"document_id": "d1", "source": "/docs/b.md", "title": "B", "text": "x"}
        cited = {"document_id": "d2", "source": "/docs/a.md", "title": "A", "text": "the cat sat", "n": 2}
        return Answered(
            answer="The cat sat.",
            retrieved=[passage, cited],
            citations=[cited],
            unsupported_citations=[passage | {"n": 1}],
            timings={"total_ms": 5.0},
            usage={"prompt_tokens": 10, "completion_tokens": 3},
        )


async def test_a_killed_run_continues_without_asking_recorded_questions_again(tmp_path: Path) -> None:
    suite = _suite(4)
    first = Scripted(fail={"question 2"})
    records = await Run(suite, first, tmp_path).execute()
    assert len(records) == 4
    assert [r["question"] for r in records if r.get("error")] == ["question 2"]
    # a kill mid-write leaves a torn last line: it is dropped, and that case is asked again
    path = tmp_path / RECORDS_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    again = Scripted()
    records = await Run(suite, again, tmp_path).execute()
    assert sorted(again.asked) == sorted(json.loads(line)["question"] for line in lines[2:])
    assert [r["question"] for r in records] == [c.question for c in suite.cases]
    assert len(path.read_text().splitlines()) == 4


async def test_concurrency_limit_holds(tmp_path: Path) -> None:
    backend = Scripted(delay_s=0.01)
    await Run(_suite(8, concurrency=3), backend, tmp_path).execute()
    assert backend.most_in_flight == 3


async def test_repeats_record_each_case_once_per_repeat(tmp_path: Path) -> None:
    records = await Run(_suite(2, repeats=3), Scripted(), tmp_path).execute()
    assert sorted((r["case_id"], r["repeat"]) for r in records) == sorted(
        (c.id, rep) for c in _suite(2).cases for rep in range(3)
    )


async def test_scores_match_documents_by_file_name_and_count_unsupported_citations() -> None:
    suite = _suite(1)
    answered = await Scripted().run(suite, suite.cases[0])

    async def embed(text: str) -> list[float]:
        return [1.0, 0.0] if "cat" in text else [0.0, 1.0]

    scored = await score_case(suite, suite.cases[0], answered, embed)
    m = scored["metrics"]
    assert m["hit@2"] == 1.0 and m["mrr"] == 0.5 and m["recall@2"] == 1.0
    assert m["token_f1"] == 1.0 and m["exact_match"] == 1.0
    assert m["semantic_similarity"] == 1.0
    assert m["citation_validity"] == 0.5
    assert m["refusal_accuracy"] == 1.0


async def test_unanswerable_questions_score_refusal_only() -> None:
    suite = _suite(0)
    case = EvalCase(question="How tall is it?", answerable=False)
    answered = Answered(
        answer="The documents do not say.", retrieved=[], refused=True, unsupported_citations=[]
    )
    scored = await score_case(suite, case, answered, None)
    assert scored["metrics"] == {"refusal_accuracy": 1.0}
    assert scored["not_measured"] == {"citation_validity": "the answer cites nothing"}


async def test_an_unreachable_server_fails_each_question_not_the_run(tmp_path: Path) -> None:
    import socket

    from evals.runner import RemoteBackend

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = RemoteBackend(f"http://127.0.0.1:{port}", "key", timeout_s=2)
    try:
        records = await Run(_suite(2), backend, tmp_path).execute()
    finally:
        await backend.close()
    assert [bool(r.get("error")) for r in records] == [True, True]
    assert "/v1/search failed" in records[0]["error"]
