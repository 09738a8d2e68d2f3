"""The kind of answer a question asks for, and whether a text holds one.

A question that asks how many, when something happened, how long, which version, what colour or
what temperature is answered only by a sentence holding a number, a date, a duration, a version,
a colour or a temperature. When the sentences chosen to answer it hold none, the documents do not
answer it, however close the sentences are in topic: "How many wings did Balduran have?" against
a page about Balduran that never counts his wings. This is the classic answer-type check of
question answering, made without a model: patterns for the question and for the answer.

Questions of other kinds (what, why, how to) have no expected type, and nothing is checked.
"""

from __future__ import annotations

import re
from enum import StrEnum


class AnswerType(StrEnum):
    NUMBER = "number"
    DATE = "date"
    DURATION = "duration"
    VERSION = "version"
    COLOUR = "colour"
    TEMPERATURE = "temperature"


# Most specific first: "how long" asks for a duration, not any number.
_ASKS: tuple[tuple[AnswerType, re.Pattern[str]], ...] = (
    (
        AnswerType.TEMPERATURE,
        re.compile(r"\b(?:what|which)\b.*\btemperatures?\b|^\s*how (?:hot|cold)\b", re.I),
    ),
    (AnswerType.VERSION, re.compile(r"\b(?:what|which) (?:version|release)s?\b", re.I)),
    (AnswerType.COLOUR, re.compile(r"\b(?:what|which) colou?rs?\b", re.I)),
    (AnswerType.DURATION, re.compile(r"^\s*how long\b", re.I)),
    (AnswerType.NUMBER, re.compile(r"^\s*(?:how (?:many|much|old)|what percentage)\b", re.I)),
    (
        AnswerType.DATE,
        re.compile(
            r"^\s*(?:when (?:was|were|did)\b|(?:in |on )?(?:what|which) (?:year|date|day|month)\b)", re.I
        ),
    ),
)

_NUMBER_WORDS = (
    "zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|"
    "single|double|twice|half|none"
)
_NUMBER = re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.I)
_TIME_UNIT = r"(?:second|minute|hour|day|night|week|fortnight|month|year|decade|century|centuries|lifetime)s?"
_DURATION = re.compile(
    rf"(?:\d|\b(?:{_NUMBER_WORDS}|a|an|several|few|many)\b)[\s-]*(?:\w+[\s-]+)?{_TIME_UNIT}\b"
    r"|\b(?:forever|indefinitely|permanently|life (?:sentence|imprisonment))\b",
    re.I,
)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE = re.compile(
    rf"\b(?:1[5-9]\d\d|20\d\d)s?\b|\b(?:{_MONTHS})\b|\b\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}\b"
    r"|\b(?:century|centuries|decade|yesterday|today|ago|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)\b",
    re.I,
)
_VERSION = re.compile(r"\bv?\d+(?:\.\d+)+[a-z]?\b|\bversions? \d+\b|\brelease \d+\b", re.I)
_COLOURS = (
    "red|orange|yellow|green|blue|purple|violet|pink|brown|black|white|grey|gray|gold|golden|silver|"
    "cyan|magenta|teal|turquoise|beige|crimson|scarlet|maroon|navy|indigo|lavender|amber|ivory|tan|"
    "bronze|copper|colou?rless|transparent|reddish|bluish|greenish|yellowish|blonde|auburn"
)
_COLOUR = re.compile(rf"\b(?:{_COLOURS})\b", re.I)
_TEMPERATURE = re.compile(
    r"\d\s*(?:°|º|degrees?\b|deg\b|[CFK]\b|celsius|fahrenheit|kelvin)|\b(?:celsius|fahrenheit|kelvin)\b", re.I
)

_HOLDS: dict[AnswerType, re.Pattern[str]] = {
    AnswerType.NUMBER: _NUMBER,
    # In software, "when" is also answered by a release: "in patch 1.4.0".
    AnswerType.DATE: re.compile(f"{_DATE.pattern}|{_VERSION.pattern}", re.I),
    AnswerType.DURATION: _DURATION,
    AnswerType.VERSION: _VERSION,
    AnswerType.COLOUR: _COLOUR,
    AnswerType.TEMPERATURE: _TEMPERATURE,
}


def expected_type(question: str) -> AnswerType | None:
    """What kind of answer ``question`` asks for, when it asks for one of the checked kinds."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return None


def holds(text: str, kind: AnswerType) -> bool:
    """Whether ``text`` holds an answer of ``kind`` (a number, a date...): a necessary condition
    for it to answer such a question, not a sufficient one."""
    return _HOLDS[kind].search(text) is not None
