"""Outage tracking: one log line per outage and per recovery, every failure counted, a pause to retry."""

from __future__ import annotations

import logging

import pytest

from core.components.outage import Outage


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    counted: list[str] = []
    outage = Outage("the test Redis", on_error=counted.append)
    with caplog.at_level(logging.WARNING, logger="lore.outage"):
        for _ in range(5):
            outage.failed("get", ConnectionError("refused"))
        assert outage.down
        outage.succeeded()
        outage.succeeded()
    assert counted == ["get"] * 5
    assert not outage.down
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "the test Redis is unavailable (get failed: refused)" in messages[0]
    assert "the test Redis answers again" in messages[1]


def test_after_a_failure_the_backend_is_skipped_for_retry_s() -> None:
    clock = Clock()
    outage = Outage("x", retry_s=5.0, clock=clock)
    assert outage.should_try()
    outage.failed("hit", ConnectionError("refused"))
    clock.now += 4.9
    assert not outage.should_try()
    clock.now += 0.1
    assert outage.should_try()
    # a failed retry waits again; a success ends the wait
    outage.failed("hit", ConnectionError("refused"))
    assert not outage.should_try()
    outage.succeeded()
    assert outage.should_try()


def test_retry_zero_tries_every_call() -> None:
    outage = Outage("x", retry_s=0.0)
    outage.failed("get", ConnectionError("refused"))
    assert outage.should_try()
