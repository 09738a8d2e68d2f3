"""Output moderation: the judge's score read from its reply, and sampling."""

from __future__ import annotations

import random

import pytest

from retrieval.moderation import judge, moderation_messages, parse_score, sampled


@pytest.mark.parametrize(
    ("reply", "score"),
    [("Score: 4", 4), ("**Score:** 1", 1), ("score=5. Fine.", 5), ("3", 3), (" 2. ", 2), ("Score: 9", None)],
)
def test_the_score_is_read_from_the_reply(reply: str, score: int | None) -> None:
    assert parse_score(reply) == score


def test_a_reply_without_a_score_is_not_measured_never_a_pass() -> None:
    result = judge(parse_score("I cannot rate this."), flag_at=2, reply="I cannot rate this.")
    assert result.verdict == "not measured" and result.score is None and "cannot rate" in result.reason
    assert judge(2, flag_at=2).verdict == "flagged"
    assert judge(3, flag_at=2).verdict == "passed"


def test_the_prompt_gives_criteria_steps_and_the_exchange() -> None:
    user = moderation_messages("Q?", "A.", "No insults.")[-1]["content"]
    assert user.index("No insults.") < user.index("Evaluation steps") < user.index("Q?") < user.index("A.")
    assert user.rstrip().endswith("Score:")


def test_sampling_takes_about_the_configured_share() -> None:
    rng = random.Random(3)
    assert not sampled(0.0, rng) and sampled(1.0, rng)
    share = sum(sampled(0.25, rng) for _ in range(4000)) / 4000
    assert 0.22 < share < 0.28
