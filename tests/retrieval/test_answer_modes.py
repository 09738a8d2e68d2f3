"""answer.mode: generated, extracted or auto answers through the one answer path, and refusal for
terms no document in scope mentions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from core.errors import OverloadedError
from core.resources import Resources
from retrieval import service
from tests.fakes import ScriptedLLM
from tests.retrieval.test_grounding import QUESTION, corpus  # noqa: F401 (the fixture)

pytestmark = pytest.mark.models


class SmallLLM(ScriptedLLM):
    """A scripted stand-in for the shipped small model: auto extracts instead of asking it."""

    small = True


class BusyLLM(ScriptedLLM):
    """An LLM whose queue is full: every stream is refused before its first piece."""

    async def stream(self, messages: Sequence[object], **_: object) -> AsyncIterator[str]:  # type: ignore[override]
        raise OverloadedError("the LLM is busy", retry_after_s=1)
        yield ""


def _ask(question: str = QUESTION) -> service.Ask:
    return service.Ask(question, corpus="c", use_cache=False)


async def test_extract_answers_with_the_sources_own_sentences_and_never_calls_the_llm(
    corpus: Resources,  # noqa: F811
) -> None:
    llm = ScriptedLLM("The warranty lasts forever [1].")
    corpus._llm = llm
    corpus.settings.answer.mode = "extract"
    result = await service.answer(corpus, _ask())
    assert result.answer_kind == "extracted" and not result.refused and llm.calls == 0
    assert "The Alpha widget warranty lasts two years from the date of purchase. [1]" in result.answer
    assert [c.n for c in result.citations] == [1] and result.model == service.EXTRACTIVE_MODEL
    assert result.guardrails["groundedness"].endswith("0 dropped")
    assert result.guardrails["extract_support"].split()[1] == "at"


async def test_auto_extracts_with_the_small_model_and_generates_with_another(
    corpus: Resources,  # noqa: F811
) -> None:
    reply = "The warranty lasts two years from purchase [1]."
    corpus._llm = SmallLLM(reply)
    assert (await service.answer(corpus, _ask())).answer_kind == "extracted"
    corpus._llm = ScriptedLLM(reply)
    generated = await service.answer(corpus, _ask())
    assert generated.answer_kind == "generated" and generated.answer == reply


async def test_auto_answers_by_extraction_when_the_llm_is_overloaded(corpus: Resources) -> None:  # noqa: F811
    corpus._llm = BusyLLM("unused")
    result = await service.answer(corpus, _ask())
    assert result.answer_kind == "extracted" and "two years" in result.answer
    corpus.settings.answer.mode = "generate"
    with pytest.raises(OverloadedError):
        await service.answer(corpus, _ask())


async def test_an_extract_below_the_support_threshold_is_a_refusal(corpus: Resources) -> None:  # noqa: F811
    corpus.settings.answer.mode = "extract"
    corpus.settings.answer.min_extract_support = 5.0
    result = await service.answer(corpus, _ask())
    assert result.refused and result.answer_kind == "refusal"
    assert result.answer == service.NO_EXTRACT_ANSWER and result.citations == []
    assert "below 5.0" in result.guardrails["extract_support"]


async def test_a_question_about_something_no_document_mentions_is_refused_naming_it(
    corpus: Resources,  # noqa: F811
) -> None:
    corpus._llm = llm = ScriptedLLM("The SharePoint warranty lasts two years [1].")
    result = await service.answer(corpus, _ask("How long does the SharePoint warranty last?"))
    assert result.refused and result.answer_kind == "refusal" and llm.calls == 0
    assert result.answer == "The documents never mention “SharePoint”, so I cannot answer that from them."
    assert result.guardrails["corpus_terms"] == "never mentioned: SharePoint"
    # Without the check the LLM is asked, and verification alone catches the invented name.
    corpus.settings.answer.refuse_unmentioned = False
    drafted = await service.answer(corpus, _ask("How long does the SharePoint warranty last?"))
    assert llm.calls == 1 and drafted.refused and "corpus_terms" not in drafted.guardrails


async def test_a_stream_of_an_extract_sends_its_text_then_citations_then_done(
    corpus: Resources,  # noqa: F811
) -> None:
    corpus.settings.answer.mode = "extract"
    events = [e async for e in await service.stream_answer(corpus, _ask())]
    assert [type(e).__name__ for e in events] == ["TokenEvent", "CitationsEvent", "DoneEvent"]
    done = events[-1]
    assert isinstance(done, service.DoneEvent) and done.answer.answer_kind == "extracted"


async def test_an_extract_without_the_kind_of_answer_asked_for_is_a_refusal(
    corpus: Resources,  # noqa: F811
) -> None:
    corpus.settings.answer.mode = "extract"
    # The warranty page says how long, never what colour: the closest sentences do not answer it.
    refused = await service.answer(corpus, _ask("What colour is the Alpha widget warranty?"))
    assert refused.refused and refused.answer_kind == "refusal" and refused.citations == []
    assert (
        refused.guardrails["answer_type"] == "the question asks for a colour; no relevant sentence holds one"
    )
    answered = await service.answer(corpus, _ask())  # how long: "two years"
    assert not answered.refused and "two years" in answered.answer
    assert (
        answered.guardrails["answer_type"]
        == "the question asks for a duration; the answer's sentences hold one"
    )
    corpus.settings.answer.check_answer_type = False
    assert not (await service.answer(corpus, _ask("What colour is the Alpha widget warranty?"))).refused
