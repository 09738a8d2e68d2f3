"""The answer-type check: a question asking how many, when, how long, which version, what colour or
what temperature is answered only by a sentence holding one."""

from __future__ import annotations

import pytest

from retrieval.answer_types import AnswerType, expected_type, holds
from retrieval.extractive import Candidate, candidates, extract_answer


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many wings did Balduran have?", AnswerType.NUMBER),
        ("How much faster is the A100?", AnswerType.NUMBER),
        ("When was GPT 4 made available", AnswerType.DATE),
        ("In what year did the war end?", AnswerType.DATE),
        ("How long are the minimum prison sentences?", AnswerType.DURATION),
        ("In which versions were the SLIM models updated?", AnswerType.VERSION),
        ("What colour is Nan-E?", AnswerType.COLOUR),
        ("What is the rest temperature of the RTX 4090 GPU?", AnswerType.TEMPERATURE),
        ("When should I re-index a corpus?", None),  # a condition, not a date
        ("What is Lore and what can it do?", None),
        ("How do I ingest documents?", None),
    ],
)
def test_the_kind_a_question_asks_for(question: str, kind: AnswerType | None) -> None:
    assert expected_type(question) == kind


@pytest.mark.parametrize(
    ("text", "kind", "held"),
    [
        ("The widget has three wings.", AnswerType.NUMBER, True),
        ("Balduran founded a coastal village called Grey Harbour.", AnswerType.NUMBER, False),
        ("It was released on Wednesday 3rd April.", AnswerType.DATE, True),
        ("Mushroom trees stopped dropping wood in patch 1.4.0.", AnswerType.DATE, True),
        ("It was released to the public.", AnswerType.DATE, False),
        ("Inmates must survive three years of it.", AnswerType.DURATION, True),
        ("Inmates must survive it.", AnswerType.DURATION, False),
        ("Updated in v0.2.3 and 0.3.1.", AnswerType.VERSION, True),
        ("The robot is bluish grey.", AnswerType.COLOUR, True),
        ("The robot is friendly.", AnswerType.COLOUR, False),
        ("Past 80C it throttles itself.", AnswerType.TEMPERATURE, True),
        ("It throttles itself when hot.", AnswerType.TEMPERATURE, False),
    ],
)
def test_whether_a_text_holds_an_answer_of_a_kind(text: str, kind: AnswerType, held: bool) -> None:
    assert holds(text, kind) is held


def test_a_short_line_without_an_end_is_the_heading_of_the_sentences_under_it() -> None:
    text = (
        "# Changes\n\nWednesday, April 3 - v0.2.7 Update\n\nIncludes UTF-8 encoding for European languages."
    )
    (found,) = candidates([text])
    assert found.heading == "Wednesday, April 3 - v0.2.7 Update"
    (titled,) = candidates(["# Version 1.4.0\n\nMushroom trees no longer drop wood."])
    assert titled.heading == "Version 1.4.0"


def test_an_extract_required_to_hold_a_kind_picks_only_such_sentences_or_none() -> None:
    found = [
        Candidate(1, 0, "Balduran founded Grey Harbour and sailed away."),
        Candidate(1, 1, "Balduran's ship had three masts."),
    ]
    vectors = [[1.0, 0.0], [0.8, 0.6]]
    number = lambda c: holds(c.text, AnswerType.NUMBER)  # noqa: E731
    picked = extract_answer(
        "How many masts did Balduran's ship have?", [1.0, 0.0], found, vectors, required=number
    )
    assert picked.answer == "Balduran's ship had three masts. [1]"
    # Held only by a sentence far less relevant than the best: the documents do not answer it.
    weak = [[1.0, 0.0], [0.0, 1.0]]
    empty = extract_answer("How many wings did Balduran have?", [1.0, 0.0], found, weak, required=number)
    assert empty.answer == "" and empty.chosen == ()


def test_a_sentence_whose_answer_is_only_in_its_heading_is_led_by_the_heading() -> None:
    from retrieval.extractive import with_typed_heading

    under = Candidate(1, 0, "Mushroom trees no longer drop wood.", heading="1.4.0")
    assert with_typed_heading(under, AnswerType.DATE).text == "1.4.0: Mushroom trees no longer drop wood."
    # Left alone when the sentence holds it itself, or the heading does not either.
    dated = Candidate(1, 0, "In 1.4.0 mushroom trees stopped dropping wood.", heading="1.3.0")
    assert with_typed_heading(dated, AnswerType.DATE) is dated
    plain = Candidate(1, 0, "Mushroom trees no longer drop wood.", heading="Balance changes")
    assert with_typed_heading(plain, AnswerType.DATE) is plain
