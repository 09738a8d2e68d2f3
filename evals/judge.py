"""The LLM judge: ragas's RAG metrics and a G-Eval rubric over an OpenAI-compatible endpoint, and
a calibration set that measures how far the judge's verdicts can be trusted.

Judge requests ask for JSON-schema constrained output and a generous ``max_tokens``: small local
judges otherwise reply with truncated or free-form JSON. A reply that still cannot be parsed, a
NaN, or a failed request is recorded as *not measured* with its reason, never as 0.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from core.errors import ConfigurationError
from core.settings import Settings
from evals.metrics import cosine
from evals.suite import EvalCase, JudgeSpec, Suite
from ingestion.crawl.urls import try_normalise

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from evals.runner import Answered, Embed

RAGAS_METRICS = (
    "faithfulness",
    "answer_relevancy",
    "context_precision",
    "context_recall",
    "answer_correctness",
)
# Below this agreement with the calibration labels, the report says the judge is not to be trusted.
TRUSTED_AGREEMENT = 0.8
_SCORE_DIGITS = ("1", "2", "3", "4", "5")


@dataclass(slots=True)
class Verdict:
    """One judged value in [0, 1], or the reason it was not measured."""

    value: float | None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Raw:
    """An endpoint's reply as text, with the generated tokens' top logprobs where it gave them."""

    content: str
    finish_reason: str | None
    tokens: list[str] = field(default_factory=list)
    top: list[dict[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class Reply:
    data: dict[str, Any] | None
    reason: str | None
    logprobs: list[dict[str, float]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


def parse_json_reply(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in a judge's reply, or why there is none (truncated, not JSON, not an object)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    if not stripped:
        return None, "empty reply"
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        return None, f"unparseable reply ({exc.msg}): {stripped[:80]!r}"
    if not isinstance(data, dict):
        return None, f"reply is not a JSON object: {stripped[:80]!r}"
    return data, None


def weighted_score(candidates: dict[str, float]) -> float | None:
    """G-Eval's score: the rubric digits 1-5 weighted by their probabilities at the score's token."""
    probabilities = {
        int(t.strip()): math.exp(lp) for t, lp in candidates.items() if t.strip() in _SCORE_DIGITS
    }
    total = sum(probabilities.values())
    if not total:
        return None
    return sum(score * p for score, p in probabilities.items()) / total


def endpoint_key(url: str) -> str | None:
    """What two judge base URLs must share to be the same endpoint: scheme, host, port and path
    (escapes, dot segments and a trailing slash aside); None for a URL that is not http(s)."""
    normalised = try_normalise(url)
    if normalised is None:
        return None
    parts = urlsplit(normalised)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), parts.query, ""))


def allowed_endpoint(base_url: str, allowed: Sequence[str]) -> str | None:
    """The entry of ``allowed`` naming the same endpoint as ``base_url``, or None."""
    key = endpoint_key(base_url)
    if key is None:
        return None
    return next((entry for entry in allowed if endpoint_key(entry) == key), None)


class JudgeClient:
    """An OpenAI-compatible chat endpoint used as the judge (vLLM, llama.cpp's server, any other)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_tokens: int = 1024,
        constrained: bool = True,
        timeout_s: float = 300.0,
    ) -> None:
        from openai import AsyncOpenAI

        self.base_url = base_url
        self.model = model
        self.max_tokens = max_tokens
        # How output is constrained: OpenAI's json_schema (vLLM, llama.cpp's llama-server), falling
        # back to json_object with a schema (llama-cpp-python's server) when the endpoint refuses it.
        self.response_format = "json_schema" if constrained else "none"
        self.client: AsyncOpenAI = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", max_retries=1, timeout=timeout_s
        )

    @classmethod
    def for_suite(cls, spec: JudgeSpec, settings: Settings) -> JudgeClient:
        base_url = spec.base_url or settings.llm.base_url
        if not base_url:
            from core.components.llm import smollm2_path

            path = Path(settings.llm.model_path) if settings.llm.model_path else smollm2_path()
            return LlamaCppJudgeClient(
                model_path=path, max_tokens=spec.max_tokens, threads=settings.llm.threads
            )
        return cls(
            base_url=base_url,
            model=spec.model or settings.llm.model,
            # The server's key goes only to the server's own endpoint, never to a suite's base_url.
            api_key=spec.api_key if spec.base_url else settings.llm.api_key,
            max_tokens=spec.max_tokens,
            constrained=spec.constrained,
        )

    async def close(self) -> None:
        await self.client.close()

    async def json(
        self, messages: Sequence[dict[str, str]], schema: dict[str, Any], *, logprobs: bool = False
    ) -> Reply:
        """A JSON object matching ``schema``, constrained by the endpoint where it supports it."""
        raw = await self._complete(messages, schema, logprobs=logprobs)
        if isinstance(raw, str):
            return Reply(None, raw)
        data, reason = parse_json_reply(raw.content)
        if data is None and raw.finish_reason == "length":
            reason = f"reply cut off at max_tokens={self.max_tokens}: {reason}"
        return Reply(data, reason, raw.top, raw.tokens)

    async def _complete(
        self, messages: Sequence[dict[str, str]], schema: dict[str, Any], *, logprobs: bool
    ) -> Raw | str:
        """The endpoint's reply, or why there is none."""
        from openai import APIStatusError, OpenAIError

        extra: dict[str, Any] = {"logprobs": True, "top_logprobs": 5} if logprobs else {}
        while True:
            request = dict(extra)
            if self.response_format == "json_schema":
                request["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "verdict", "schema": schema, "strict": True},
                }
            elif self.response_format == "json_object":
                request["response_format"] = {"type": "json_object", "schema": schema}
            try:
                out = await self.client.chat.completions.create(
                    model=self.model,
                    messages=list(messages),  # type: ignore[arg-type]
                    max_tokens=self.max_tokens,
                    temperature=0.0,
                    **request,
                )
                break
            except APIStatusError as exc:
                # llama-cpp-python's server knows only {"type": "json_object", "schema": ...}, and
                # says so with a 500 naming json_object.
                refused = exc.status_code in (400, 422) or "json_object" in str(exc)
                if self.response_format == "json_schema" and refused:
                    self.response_format = "json_object"
                    continue
                return f"judge request failed: {str(exc)[:200]}"
            except OpenAIError as exc:
                return f"judge request failed: {str(exc)[:200]}"
        choice = out.choices[0]
        raw = Raw(choice.message.content or "", choice.finish_reason)
        if choice.logprobs is not None and choice.logprobs.content:
            for item in choice.logprobs.content:
                raw.tokens.append(item.token)
                raw.top.append(
                    {alt.token: alt.logprob for alt in item.top_logprobs or []} or {item.token: item.logprob}
                )
        return raw


class LlamaCppJudgeClient(JudgeClient):
    """The judge in process: a GGUF model through llama.cpp, its output constrained by a grammar
    made from the schema (one generation at a time, in a worker thread)."""

    def __init__(self, *, model_path: Path, max_tokens: int = 1024, threads: int | None = None) -> None:
        from llama_cpp import Llama

        if not model_path.is_file():
            raise ConfigurationError(f"judge model file not found: {model_path}")
        self.base_url = "in-process llama.cpp"
        self.model = model_path.stem
        self.max_tokens = max_tokens
        self.response_format = "json_object"
        self._llama: Any = Llama(
            model_path=str(model_path),
            n_ctx=4096,
            n_threads=threads or os.cpu_count() or 1,
            logits_all=True,  # logprobs of every generated token, for G-Eval's weighting
            verbose=False,
        )
        self._lock = threading.Lock()

    async def close(self) -> None:
        close = getattr(self._llama, "close", None)
        if close is not None:
            close()

    def _complete_sync(
        self, messages: Sequence[dict[str, str]], schema: dict[str, Any], logprobs: bool
    ) -> Raw:
        with self._lock:
            out = self._llama.create_chat_completion(
                messages=list(messages),
                response_format={"type": "json_object", "schema": schema},
                max_tokens=self.max_tokens,
                temperature=0.0,
                logprobs=logprobs,
                top_logprobs=5 if logprobs else None,
            )
        choice = out["choices"][0]
        raw = Raw(choice["message"].get("content") or "", choice.get("finish_reason"))
        for item in ((choice.get("logprobs") or {}).get("content")) or []:
            raw.tokens.append(item["token"])
            raw.top.append({alt["token"]: alt["logprob"] for alt in item.get("top_logprobs") or []})
        return raw

    async def _complete(
        self, messages: Sequence[dict[str, str]], schema: dict[str, Any], *, logprobs: bool
    ) -> Raw | str:
        try:
            return await asyncio.to_thread(self._complete_sync, messages, schema, logprobs)
        except (ValueError, RuntimeError) as exc:  # llama.cpp's errors: grammar, context overflow
            return f"judge generation failed: {str(exc)[:200]}"


# -- G-Eval ---------------------------------------------------------------------------------------

_STEPS_SCHEMA = {
    "type": "object",
    "properties": {"steps": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5}},
    "required": ["steps"],
}
_SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
    "required": ["score"],
}


class GEval:
    """A G-Eval rubric: evaluation steps written once from the criteria, then a 1-5 score per answer,
    weighted by the score token's probabilities where the endpoint returns logprobs."""

    def __init__(self, client: JudgeClient, criteria: str) -> None:
        self._client = client
        self.criteria = criteria
        self.steps: list[str] | None = None

    async def _steps(self) -> list[str]:
        if self.steps is None:
            reply = await self._client.json(
                [
                    {
                        "role": "system",
                        "content": "You write evaluation steps for grading answers. Reply in JSON.",
                    },
                    {
                        "role": "user",
                        "content": f"Criteria: {self.criteria}\nWrite 3 short steps to check an answer "
                        'against these criteria, as {"steps": [...]}.',
                    },
                ],
                _STEPS_SCHEMA,
            )
            steps = (reply.data or {}).get("steps")
            # The criteria themselves serve as the one step when the judge cannot write any.
            self.steps = [str(s) for s in steps] if isinstance(steps, list) and steps else [self.criteria]
        return self.steps

    async def score(self, question: str, answer: str, contexts: Sequence[str]) -> Verdict:
        steps = await self._steps()
        sources = "\n\n".join(f"[{i}] {c}" for i, c in enumerate(contexts, 1)) or "(none)"
        reply = await self._client.json(
            [
                {"role": "system", "content": "You grade answers from 1 (worst) to 5 (best). Reply in JSON."},
                {
                    "role": "user",
                    "content": f"Criteria: {self.criteria}\nSteps:\n"
                    + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
                    + f"\n\nSources:\n{sources}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
                    'Reply as {"score": N} with N from 1 to 5.',
                },
            ],
            _SCORE_SCHEMA,
            logprobs=True,
        )
        if reply.data is None:
            return Verdict(None, reply.reason)
        raw = reply.data.get("score")
        if not isinstance(raw, int) or not 1 <= raw <= 5:
            return Verdict(None, f"score out of range: {raw!r}")
        weighted = None
        for position, token in enumerate(reply.tokens):
            if token.strip() == str(raw):
                weighted = weighted_score(reply.logprobs[position])
                break
        score = weighted if weighted is not None else float(raw)
        return Verdict((score - 1) / 4, details={"score": raw, "weighted": weighted, "steps": steps})


# -- RAG metrics (ragas's definitions) ------------------------------------------------------------

_STATEMENTS_SCHEMA = {
    "type": "object",
    "properties": {"statements": {"type": "array", "items": {"type": "string"}, "maxItems": 6}},
    "required": ["statements"],
}


def verdicts_schema(count: int) -> dict[str, Any]:
    """Exactly ``count`` 0/1 verdicts: small judges otherwise return a fixed-length list whatever they
    were given, which ragas then cannot match to the statements."""
    verdict = {"type": "integer", "enum": [0, 1]}
    return {
        "type": "object",
        "properties": {"verdicts": {"type": "array", "items": verdict, "minItems": count, "maxItems": count}},
        "required": ["verdicts"],
    }


_QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "noncommittal": {"type": "integer", "enum": [0, 1]}},
    "required": ["question", "noncommittal"],
}


def _numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))


class RagMetrics:
    """Faithfulness, answer relevancy, context precision and recall, and answer correctness as
    ragas 0.4 defines them, with Lore's constrained JSON requests (ragas itself cannot be
    installed beside Lore's pins: its `instructor` dependency caps `rich` below 15 and `jiter`
    below what openai 3 needs)."""

    def __init__(self, client: JudgeClient, embed: Embed | None) -> None:
        self._client = client
        self._embed = embed

    async def _statements(self, question: str, text: str) -> tuple[list[str] | None, str | None]:
        reply = await self._client.json(
            [
                {
                    "role": "system",
                    "content": "You split text into short standalone factual statements. Reply in JSON.",
                },
                {
                    "role": "user",
                    "content": f"Question: {question}\nText: {text}\n"
                    'List the statements the text makes, as {"statements": ["...", ...]}.',
                },
            ],
            _STATEMENTS_SCHEMA,
        )
        statements = (reply.data or {}).get("statements")
        if reply.data is None:
            return None, reply.reason
        if not isinstance(statements, list) or not all(isinstance(x, str) for x in statements):
            return None, "statements missing from the reply"
        return [x for x in statements if x.strip()], None

    async def _verdicts(
        self, instruction: str, context: str, items: Sequence[str]
    ) -> tuple[list[int] | None, str | None]:
        reply = await self._client.json(
            [
                {"role": "system", "content": "You check statements against a text. Reply in JSON."},
                {
                    "role": "user",
                    "content": f"Text:\n{context}\n\n{instruction}\n{_numbered(items)}\n"
                    f'Reply as {{"verdicts": [...]}} with one 1 (yes) or 0 (no) '
                    f"for each of the {len(items)} items.",
                },
            ],
            verdicts_schema(len(items)),
        )
        if reply.data is None:
            return None, reply.reason
        verdicts = reply.data.get("verdicts")
        if not isinstance(verdicts, list) or len(verdicts) != len(items):
            return None, f"expected {len(items)} verdicts, got {verdicts!r}"[:200]
        return [1 if v == 1 else 0 for v in verdicts], None

    async def faithfulness(self, question: str, answer: str, contexts: Sequence[str]) -> Verdict:
        """Share of the answer's statements the retrieved context supports."""
        if not contexts:
            return Verdict(None, "no retrieved context")
        statements, reason = await self._statements(question, answer)
        if statements is None:
            return Verdict(None, reason)
        if not statements:
            return Verdict(None, "the answer makes no statement")
        verdicts, reason = await self._verdicts(
            "Can each statement be inferred from the text?", "\n\n".join(contexts), statements
        )
        if verdicts is None:
            return Verdict(None, reason)
        return Verdict(
            sum(verdicts) / len(verdicts), details={"statements": statements, "verdicts": verdicts}
        )

    async def answer_relevancy(self, question: str, answer: str) -> Verdict:
        """Cosine between the question and one the judge infers back from the answer (0 when noncommittal)."""
        if self._embed is None:
            return Verdict(None, "answer relevancy needs the embedder")
        reply = await self._client.json(
            [
                {"role": "system", "content": "You infer the question an answer responds to. Reply in JSON."},
                {
                    "role": "user",
                    "content": f"Answer: {answer}\nWrite the question this answers, and noncommittal 1 "
                    "if the answer is evasive or says it does not know, else 0: "
                    '{"question": "...", "noncommittal": 0}.',
                },
            ],
            _QUESTION_SCHEMA,
        )
        if reply.data is None:
            return Verdict(None, reply.reason)
        generated = reply.data.get("question")
        if not isinstance(generated, str) or not generated.strip():
            return Verdict(None, "no question in the reply")
        if reply.data.get("noncommittal") == 1:
            return Verdict(0.0, details={"question": generated, "noncommittal": True})
        a, b = await self._embed(question), await self._embed(generated)
        return Verdict(max(0.0, cosine(a, b)), details={"question": generated})

    async def context_precision(
        self, question: str, contexts: Sequence[str], reference: str | None
    ) -> Verdict:
        """Average precision of the retrieved chunks, each judged useful or not for the reference."""
        if not contexts:
            return Verdict(None, "no retrieved context")
        if not reference:
            return Verdict(None, "no reference answer")
        verdicts, reason = await self._verdicts(
            f"Question: {question}\nIs each passage below useful for reaching this answer?",
            reference,
            [c[:600] for c in contexts],
        )
        if verdicts is None:
            return Verdict(None, reason)
        if not any(verdicts):
            return Verdict(0.0, details={"verdicts": verdicts})
        hits, total = 0, 0.0
        for rank, useful in enumerate(verdicts, 1):
            if useful:
                hits += 1
                total += hits / rank
        return Verdict(total / hits, details={"verdicts": verdicts})

    async def context_recall(self, question: str, contexts: Sequence[str], reference: str | None) -> Verdict:
        """Share of the reference answer's statements the retrieved context supports."""
        if not contexts:
            return Verdict(None, "no retrieved context")
        if not reference:
            return Verdict(None, "no reference answer")
        statements, reason = await self._statements(question, reference)
        if statements is None:
            return Verdict(None, reason)
        if not statements:
            return Verdict(None, "the reference makes no statement")
        verdicts, reason = await self._verdicts(
            "Can each statement be attributed to the text?", "\n\n".join(contexts), statements
        )
        if verdicts is None:
            return Verdict(None, reason)
        return Verdict(
            sum(verdicts) / len(verdicts), details={"statements": statements, "verdicts": verdicts}
        )

    async def answer_correctness(self, question: str, answer: str, reference: str | None) -> Verdict:
        """ragas's weighting: 0.75 x F1 of the answer's statements against the reference's, 0.25 x cosine."""
        if not reference:
            return Verdict(None, "no reference answer")
        statements, reason = await self._statements(question, answer)
        if statements is None:
            return Verdict(None, reason)
        truths, reason = await self._statements(question, reference)
        if truths is None:
            return Verdict(None, reason)
        if not statements or not truths:
            return Verdict(None, "no statements to compare")
        supported, reason = await self._verdicts("Does the text state each of these?", reference, statements)
        if supported is None:
            return Verdict(None, reason)
        covered, reason = await self._verdicts("Does the text state each of these?", answer, truths)
        if covered is None:
            return Verdict(None, reason)
        tp, fp, fn = sum(supported), len(supported) - sum(supported), len(covered) - sum(covered)
        f1 = tp / (tp + 0.5 * (fp + fn)) if tp else 0.0
        similarity = None
        if self._embed is not None:
            similarity = max(0.0, cosine(await self._embed(answer), await self._embed(reference)))
        value = f1 if similarity is None else 0.75 * f1 + 0.25 * similarity
        return Verdict(value, details={"f1": f1, "similarity": similarity})


def fit_contexts(contexts: Sequence[str], budget: int) -> list[str]:
    """The retrieved passages in rank order, cut to ``budget`` characters in all."""
    fitted = []
    for text in contexts:
        if budget <= 0:
            break
        fitted.append(text[:budget])
        budget -= len(fitted[-1])
    return fitted


# -- per case and calibration ---------------------------------------------------------------------


class CaseJudge:
    """Scores one answer with every judged metric the suite names."""

    def __init__(self, client: JudgeClient, spec: JudgeSpec, embed: Embed | None = None) -> None:
        self._spec = spec
        self._rag = RagMetrics(client, embed)
        self._geval = GEval(client, spec.criteria)

    async def verdicts(
        self, question: str, answer: str, contexts: list[str], reference: str | None
    ) -> dict[str, Verdict]:
        out: dict[str, Verdict] = {}
        for name in self._spec.metrics:
            if name == "g_eval":
                out[name] = await self._geval.score(question, answer, contexts)
            elif name == "faithfulness":
                out[name] = await self._rag.faithfulness(question, answer, contexts)
            elif name == "answer_relevancy":
                out[name] = await self._rag.answer_relevancy(question, answer)
            elif name == "context_precision":
                out[name] = await self._rag.context_precision(question, contexts, reference)
            elif name == "context_recall":
                out[name] = await self._rag.context_recall(question, contexts, reference)
            elif name == "answer_correctness":
                out[name] = await self._rag.answer_correctness(question, answer, reference)
            else:
                out[name] = Verdict(None, f"unknown judged metric {name!r}")
        return out

    async def __call__(self, case: EvalCase, answered: Answered) -> dict[str, Any]:
        contexts = fit_contexts(
            [str(p.get("text", "")) for p in answered.retrieved], self._spec.max_context_chars
        )
        verdicts = await self.verdicts(case.question, answered.answer or "", contexts, case.reference_answer)
        return {
            "metrics": {n: v.value for n, v in verdicts.items() if v.value is not None},
            "not_measured": {n: v.reason or "not measured" for n, v in verdicts.items() if v.value is None},
            "details": {n: v.details for n, v in verdicts.items() if v.details},
        }


# What each calibration variant should score, per metric: 1 good, 0 bad.
_LABELS: dict[str, dict[str, int]] = {
    "correct": dict.fromkeys(
        (
            "faithfulness",
            "answer_relevancy",
            "context_precision",
            "context_recall",
            "answer_correctness",
            "g_eval",
        ),
        1,
    ),
    "wrong": {
        "faithfulness": 0,
        "answer_relevancy": 0,
        "context_precision": 1,
        "context_recall": 1,
        "answer_correctness": 0,
        "g_eval": 0,
    },
    "unsupported": {
        "faithfulness": 0,
        "answer_relevancy": 1,
        "context_precision": 0,
        "context_recall": 0,
        "answer_correctness": 1,
        "g_eval": 0,
    },
}


def calibration_set(cases: Sequence[EvalCase], size: int) -> list[dict[str, Any]]:
    """Labelled items made from reference answers by perturbation: the reference itself with its
    own text as context (correct), another question's reference (wrong), and the reference with
    another question's text as context (unsupported by the context)."""
    usable = [c for c in cases if c.answerable and c.reference_answer]
    if len(usable) < 2:
        return []
    picked = usable[: max(size, 0)]
    items: list[dict[str, Any]] = []
    for i, case in enumerate(picked):
        other = usable[(i + 1) % len(usable)]
        reference, context = (
            case.reference_answer or "",
            case.reference_contexts or [case.reference_answer or ""],
        )
        other_context = other.reference_contexts or [other.reference_answer or ""]
        items += [
            {
                "kind": "correct",
                "question": case.question,
                "answer": reference,
                "contexts": context,
                "reference": reference,
            },
            {
                "kind": "wrong",
                "question": case.question,
                "answer": other.reference_answer,
                "contexts": context,
                "reference": reference,
            },
            {
                "kind": "unsupported",
                "question": case.question,
                "answer": reference,
                "contexts": other_context,
                "reference": reference,
            },
        ]
    return items


def agreement(items: list[dict[str, Any]], verdicts: list[dict[str, Verdict]], metric: str) -> dict[str, Any]:
    """Share of calibration items where the judge's verdict (score >= 0.5) matches the label."""
    matches = scored = missing = 0
    for item, verdict in zip(items, verdicts, strict=True):
        v = verdict.get(metric)
        if v is None or v.value is None:
            missing += 1
            continue
        scored += 1
        matches += int((v.value >= 0.5) == bool(_LABELS[item["kind"]][metric]))
    return {"agreement": matches / scored if scored else None, "scored": scored, "not_measured": missing}


async def calibrate(
    judge: CaseJudge, spec: JudgeSpec, cases: Sequence[EvalCase], *, model: str
) -> dict[str, Any]:
    """Score the calibration set and report each metric's agreement with its labels, plainly."""
    items = calibration_set(cases, spec.calibration_size)
    verdicts = [
        await judge.verdicts(i["question"], i["answer"], i["contexts"], i["reference"]) for i in items
    ]
    table = {m: agreement(items, verdicts, m) for m in spec.metrics if m in _LABELS["correct"]}
    poor = sorted(m for m, a in table.items() if a["agreement"] is None or a["agreement"] < TRUSTED_AGREEMENT)
    warning = None
    if not items:
        warning = "no calibration set: the suite has fewer than two questions with reference answers"
    elif poor:
        warning = (
            f"the judge ({model}) agrees with the calibration labels less than {TRUSTED_AGREEMENT:.0%} of "
            f"the time on {', '.join(poor)} (about 50% is chance). Its scores for these metrics are not "
            "trustworthy: treat them as plumbing checks, not measurements."
        )
        if "smollm" in model.lower() or "135m" in model.lower():
            warning += (
                " SmolLM2-135M cannot follow a grading rubric: use a capable judge (e.g. a 7B+ "
                "instruct model on vLLM) before reading anything into these scores."
            )
    return {
        "size": len(items),
        "agreement": table,
        "warning": warning,
        "items": [
            {
                "kind": i["kind"],
                "question": i["question"],
                "scores": {n: v.value for n, v in vs.items()},
                "not_measured": {n: v.reason for n, v in vs.items() if v.value is None},
            }
            for i, vs in zip(items, verdicts, strict=True)
        ],
    }


def open_judge(suite: Suite, settings: Settings, embed: Embed | None) -> tuple[JudgeClient, CaseJudge]:
    """The suite's judge endpoint and the per-case judge over it."""
    client = JudgeClient.for_suite(suite.judge, settings)
    return client, CaseJudge(client, suite.judge, embed)
