"""The judge: reply parsing, G-Eval weighting and calibration by hand; plumbing against the real
SmolLM2 behind llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evals.judge import (
    CaseJudge,
    GEval,
    JudgeClient,
    RagMetrics,
    Verdict,
    agreement,
    calibration_set,
    parse_json_reply,
    weighted_score,
)
from evals.suite import EvalCase, JudgeSpec


def test_replies_that_are_not_json_objects_say_why() -> None:
    assert parse_json_reply('{"score": 4}') == ({"score": 4}, None)
    assert parse_json_reply('```json\n{"score": 2}\n```') == ({"score": 2}, None)
    data, reason = parse_json_reply('{"score": ')
    assert data is None and reason is not None and "unparseable" in reason
    assert parse_json_reply("[1, 2]")[1] == "reply is not a JSON object: '[1, 2]'"
    assert parse_json_reply("  ")[1] == "empty reply"


def test_g_eval_weights_the_score_digits_by_probability() -> None:
    # p(4) = 0.6, p(5) = 0.3, p(3) = 0.1 -> 3*0.1 + 4*0.6 + 5*0.3 = 4.2
    logprobs = {"4": math.log(0.6), "5": math.log(0.3), " 3": math.log(0.1), "}": math.log(0.5)}
    assert weighted_score(logprobs) == pytest.approx(4.2)
    assert weighted_score({"x": 0.0}) is None


def _cases() -> list[EvalCase]:
    return [
        EvalCase(question="What do keybullet kin drop?", reference_answer="A key."),
        EvalCase(question="Who leads the loony party?", reference_answer="Howling Laud Hope."),
        EvalCase(question="Unanswerable?", answerable=False),
    ]


def test_calibration_set_perturbs_references_into_labelled_items() -> None:
    items = calibration_set(_cases(), 2)
    assert [i["kind"] for i in items] == ["correct", "wrong", "unsupported"] * 2
    correct, wrong, unsupported = items[:3]
    assert correct["answer"] == "A key." and correct["contexts"] == ["A key."]
    assert wrong["answer"] == "Howling Laud Hope."  # another question's reference
    assert unsupported["answer"] == "A key." and unsupported["contexts"] == ["Howling Laud Hope."]
    assert calibration_set(_cases()[:1], 4) == []


def test_agreement_counts_only_measured_verdicts() -> None:
    items = calibration_set(_cases(), 1)
    verdicts = [
        {"g_eval": Verdict(1.0)},  # correct: agrees
        {"g_eval": Verdict(0.75)},  # wrong: disagrees
        {"g_eval": Verdict(None, "unparseable reply")},
    ]
    assert agreement(items, verdicts, "g_eval") == {"agreement": 0.5, "scored": 2, "not_measured": 1}


@pytest.mark.models
async def test_constrained_judge_output_parses_against_llama_cpp(llama_server: str) -> None:
    client = JudgeClient(base_url=llama_server, model="smollm2", max_tokens=48)
    try:
        geval = GEval(client, "The answer is correct and supported by the sources.")
        geval.steps = ["Check the answer against the sources."]  # skip writing steps: keeps the test short
        verdict = await geval.score("What do keybullet kin drop?", "A key.", ["Keybullet kin drop a key."])
        assert verdict.reason is None
        assert verdict.value is not None and 0.0 <= verdict.value <= 1.0
        assert verdict.details["score"] in (1, 2, 3, 4, 5)
        # llama-cpp-python's server refuses OpenAI's json_schema format; the client fell back
        assert client.response_format == "json_object"
        # the schema fixes the number of verdicts, so each statement gets one
        verdicts, reason = await RagMetrics(client, None)._verdicts(
            "Can each statement be inferred from the text?", "Kin drop keys.", ["a", "b", "c"]
        )
        assert reason is None and verdicts is not None and len(verdicts) == 3
    finally:
        await client.close()


@pytest.mark.models
async def test_an_unparseable_judge_reply_is_not_measured(llama_server: str) -> None:
    # unconstrained and cut off after 3 tokens: the reply cannot be JSON
    client = JudgeClient(base_url=llama_server, model="smollm2", max_tokens=3, constrained=False)
    try:
        judge = CaseJudge(client, JudgeSpec(metrics=["g_eval", "faithfulness"]))
        judge._geval.steps = ["Check the answer."]
        verdicts = await judge.verdicts("Q?", "An answer.", ["A source."], None)
    finally:
        await client.close()
    for verdict in verdicts.values():
        assert verdict.value is None
        assert verdict.reason is not None and "max_tokens=3" in verdict.reason


@pytest.mark.models
async def test_a_judged_run_reports_agreement_and_not_measured_counts(
    llama_server: str, tmp_path: Path
) -> None:
    from evals import reports
    from evals.judge import calibrate
    from evals.runner import Run, summarize
    from tests.evals.test_runner import Scripted, _suite

    suite = _suite(1, judge={"enabled": True, "metrics": ["g_eval"], "calibration_size": 2})
    client = JudgeClient(base_url=llama_server, model="smollm2", max_tokens=16)
    try:
        judge = CaseJudge(client, suite.judge)
        judge._geval.steps = ["Check the answer against the sources."]
        calibration = await calibrate(judge, suite.judge, _cases(), model="smollm2")
        records = await Run(suite, Scripted(), tmp_path, None, judge).execute()
    finally:
        await client.close()
    assert calibration["size"] == 6
    assert set(calibration["agreement"]) == {"g_eval"}
    # a 135M judge is not trusted, and the report says so
    assert calibration["warning"] is None or "not trustworthy" in calibration["warning"]
    summary = summarize(suite, records)
    g_eval = summary["metric_details"]["g_eval"]
    assert g_eval["measured"] + g_eval["not_measured"] == 1
    page = reports.html_report(
        {
            "summary": summary,
            "cases": records,
            "gates": [],
            "judge": {"model": "smollm2", "calibration": calibration},
        }
    )
    assert "judge agreement" in page


def test_contexts_are_cut_to_the_judges_budget() -> None:
    from evals.judge import fit_contexts

    assert fit_contexts(["a" * 5, "b" * 5, "c" * 5], 8) == ["aaaaa", "bbb"]
    assert fit_contexts(["abc"], 100) == ["abc"]


@pytest.mark.models
async def test_the_in_process_judge_is_constrained_and_weighted_by_logprobs() -> None:
    from core.components.llm import smollm2_path
    from core.settings import Settings
    from evals.judge import LlamaCppJudgeClient

    # no endpoint configured: the judge is SmolLM2 in process
    client = JudgeClient.for_suite(JudgeSpec(max_tokens=16), Settings())
    assert isinstance(client, LlamaCppJudgeClient) and client.model == smollm2_path().stem
    try:
        geval = GEval(client, "The answer is correct.")
        geval.steps = ["Check the answer."]
        verdict = await geval.score("What do kin drop?", "A key.", ["Kin drop a key."])
    finally:
        await client.close()
    assert verdict.reason is None and verdict.value is not None
    assert verdict.details["weighted"] is not None  # logprobs came back


async def test_calibration_says_plainly_when_a_small_judge_disagrees() -> None:
    from evals.judge import calibrate

    class Contrary:
        """Scores every item 0.6 (a judge that always says 'good')."""

        async def verdicts(
            self, question: str, answer: str, contexts: list[str], reference: str | None
        ) -> dict[str, Verdict]:
            return {"g_eval": Verdict(0.6)}

    spec = JudgeSpec(metrics=["g_eval"], calibration_size=2)
    calibration = await calibrate(Contrary(), spec, _cases(), model="SmolLM2-135M-Instruct")  # type: ignore[arg-type]
    assert calibration["agreement"]["g_eval"]["agreement"] == pytest.approx(2 / 6)
    assert "not trustworthy" in calibration["warning"] and "SmolLM2-135M cannot" in calibration["warning"]
    capable = await calibrate(Contrary(), spec, _cases(), model="qwen-72b")  # type: ignore[arg-type]
    assert "SmolLM2" not in capable["warning"]


def test_the_servers_llm_key_never_goes_to_a_suites_own_judge_url() -> None:
    from core.settings import LLMSettings, Settings
    from evals.judge import JudgeClient

    settings = Settings(llm=LLMSettings(base_url="http://llm.internal/v1", api_key="server-secret"))
    own = JudgeClient.for_suite(JudgeSpec(base_url="http://127.0.0.1:9/v1"), settings)
    servers = JudgeClient.for_suite(JudgeSpec(), settings)
    assert own.client.api_key != "server-secret"
    assert servers.client.api_key == "server-secret"
