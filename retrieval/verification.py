"""Sentence-level verification of a drafted answer against its numbered sources (pure).

A draft is split into sentences, aware of Markdown: a fenced code block is one unit, each list
item, table row and heading is its own, and a full stop inside a code span ends nothing. A
sentence is supported by a source when enough of its content words occur there (those the
question lacks, when it has any: what a source must support is what the answer adds) and every
specific in it occurs there too: code spans, flags and the command before them, URLs, paths and
identifiers, quoted strings, numbers with their units and capitalised names. A small model
invents such specifics fluently (a flag, a number, a name) while the words around them still
overlap the source, so word overlap alone cannot catch them. Comparisons are made after folding
case, quotes and dashes.

The sources a sentence cites are tried first, then the others; its markers are rewritten to the
sources that support it. :class:`Verifier` takes the draft as it streams and judges each sentence
once it is complete, so a caller can show only what has been checked.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.types import UnsupportedSentence
from retrieval.citations import MARKER, content_words, is_stopword, marker_numbers, stem

# What happens to a sentence no source supports: removed, delivered with a mark, or delivered as is.
Policy = Literal["drop", "mark", "keep"]
Kind = Literal["prose", "code", "table", "structure"]
UNVERIFIED_MARK = "[unverified]"

_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "`": "",
    }
)
_NUMBER_WORDS = {
    word: str(n)
    for n, word in enumerate(
        [
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
            *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
            *("eighteen", "nineteen", "twenty"),
        ]
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000"}
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[a-z]+|%")

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_RULE = re.compile(r"^\s*(?:\*{3,}|-{3,}|_{3,})\s*$")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
# A sentence ends at a full stop (or ! or ?) before spacing, unless what follows is lower-case
# ("PATH... to print", "e.g. a folder").
_ENUMERATOR = re.compile(r"\s*\d{1,3}\.")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s+(?![a-z])|\s*$)")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|no|fig)|\b[A-Za-z])\.$", re.IGNORECASE)
_LEADING_MARKERS = re.compile(r"^((?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+)")
_PARTIAL_MARKER = re.compile(r"^\s*(?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)*\[?[\d\s,;]*$")

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_URL = re.compile(r"https?://[^\s<>()\[\]]+")
_PATH = re.compile(r"(?<![\w/])(?:~|\.{1,2})?/?[\w.-]+(?:/[\w.-]+)+/?")
_DOTTED = re.compile(r"\b[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+\b")
_SNAKE = re.compile(r"\b\w*[A-Za-z0-9]_\w+\b")
_CAMEL = re.compile(r"\b(?:[a-z]+[A-Z]|[A-Z][a-z0-9]+[A-Z]|[A-Za-z]+\d)[\w-]*")
_FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|(?<!\w)'([^'\n]{1,80})'(?!\w)")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(?:\s*(%|[A-Za-z]+))?")
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:['-][A-Za-z0-9]+)*")
# What stands where a specific was taken out, so that no later pattern joins its neighbours.
_GAP = " \u00b6 "
_ABBREVIATIONS = frozenset(["e.g", "i.e", "etc", "vs"])
# Words that may come before a flag in prose without naming a command ("pass --json").
_VERBS = frozenset(
    [
        *("use", "run", "pass", "add", "set", "type", "call", "try", "give", "put", "then", "also"),
        *("just", "simply", "command", "option", "flag"),
    ]
)
# The model saying, as its prompt asks, that the sources lack the answer.
_MODEL_REFUSAL = re.compile(
    r"\b(?:sources?|documents?|context|passages?|texts?)\s+(?:provided\s+|given\s+)?(?:do|does)\s+not\s+"
    r"(?:contain|mention|include|provide|say|state|specify)|\bno (?:information|mention)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Sentence:
    """One unit of a draft as written (markers included); ``separator`` is the spacing before it."""

    text: str
    separator: str = ""
    kind: Kind = "prose"


@dataclass(frozen=True, slots=True)
class Specific:
    """Something a sentence states exactly, which its source must hold as it is written."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A sentence judged: the sources that support it (none: unsupported, unless neutral).

    ``shown`` is what the reader gets of it, spacing first (None when it is dropped); a neutral
    sentence (no content words, no specifics: "Here is how:") needs no source and cites none.
    """

    sentence: Sentence
    sources: tuple[int, ...]
    reason: str | None
    shown: str | None

    @property
    def supported(self) -> bool:
        return bool(self.sources)


def normalise(text: str) -> str:
    """``text`` folded for comparison: case, curly quotes, dashes, backticks and spacing."""
    return " ".join(text.translate(_FOLD).casefold().split())


def _tokens(text: str) -> list[str]:
    """Words and numbers of normalised text, number words as digits, words stemmed."""
    return [_NUMBER_WORDS.get(t, t) if not t[0].isdigit() else t for t in _TOKEN.findall(text)]


def _phrase(tokens: Sequence[str]) -> str:
    return " " + " ".join(stem(t) for t in tokens) + " "


def _code_ranges(line: str) -> list[tuple[int, int]]:
    """Where code spans lie in ``line``; an unclosed one runs to its end (more may be streaming)."""
    ranges: list[tuple[int, int]] = []
    i = 0
    while (start := line.find("`", i)) != -1:
        run = len(line[start:]) - len(line[start:].lstrip("`"))
        end = line.find("`" * run, start + run)
        if end == -1:
            ranges.append((start, len(line)))
            break
        ranges.append((start, end + run))
        i = end + run
    return ranges


def _prose_sentences(line: str) -> list[tuple[int, str]]:
    """A line of prose cut at sentence ends outside code spans: (offset, text) pairs."""
    code = _code_ranges(line)
    cuts = [0]
    for match in _SENTENCE_END.finditer(line):
        end = match.end()
        if any(a <= match.start() < b for a, b in code) or _ABBREVIATION.search(line[:end]):
            continue
        # "3." written inline starts an item ("... [2]. 3. Create a ..."): it is not a sentence.
        if _ENUMERATOR.fullmatch(line[cuts[-1] : end]):
            continue
        cuts.append(end)
    cuts.append(len(line))
    pieces: list[tuple[int, str]] = []
    for a, b in itertools.pairwise(cuts):
        piece = line[a:b]
        if pieces and (leading := _LEADING_MARKERS.match(piece)):
            offset, text = pieces[-1]
            pieces[-1] = (offset, text + leading.group(1))
            a, piece = a + leading.end(), piece[leading.end() :]
        if piece.strip():
            pieces.append((a + len(piece) - len(piece.lstrip()), piece.strip()))
    return pieces


def _split(text: str) -> list[tuple[int, Sentence]]:
    """The draft's units with the offset where each one's separator starts."""
    units: list[tuple[int, Sentence]] = []
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    last_end = 0
    i = 0

    def add(start: int, body: str, kind: Kind) -> None:
        nonlocal last_end
        units.append((last_end, Sentence(body, text[last_end:start], kind)))
        last_end = start + len(body)

    while i < len(lines):
        line, at = lines[i], offsets[i]
        fence = _FENCE.match(line)
        if fence:
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence.group(1)):
                j += 1
            block = "\n".join(lines[i : j + 1])
            add(at + len(line) - len(line.lstrip()), block.strip(), "code")
            i = j + 1
            continue
        stripped = line.strip()
        start = at + len(line) - len(line.lstrip())
        if not stripped:
            pass
        elif _TABLE_RULE.match(line) or _RULE.match(line):
            add(start, stripped, "structure")
        elif stripped.startswith("|"):
            add(start, stripped, "table")
        elif _HEADING.match(line):
            add(start, stripped, "prose")
        else:
            item = _LIST_ITEM.match(line)
            prefix = item.end() if item else 0
            for n, (offset, sentence) in enumerate(_prose_sentences(line[prefix:])):
                if n == 0 and item:
                    add(start, line[start - at : prefix + offset] + sentence, "prose")
                else:
                    add(at + prefix + offset, sentence, "prose")
        i += 1
    return units


def split_sentences(text: str) -> list[Sentence]:
    """The draft's sentences (units), Markdown-aware; markers after a full stop stay with it."""
    return [sentence for _, sentence in _split(text)]


def sentences(text: str) -> list[str]:
    """The text of each of ``text``'s sentences."""
    return [s.text for s in split_sentences(text)]


def complete_sentences(buffer: str) -> tuple[list[Sentence], str]:
    """The sentences of a streaming draft that are complete, and the rest still being written.

    A sentence is complete once something other than its own citation markers follows it.
    """
    units = _split(buffer)
    keep = 1
    if units and _PARTIAL_MARKER.match(units[-1][1].text):
        keep = 2
    if len(units) <= keep:
        return [], buffer
    return [s for _, s in units[:-keep]], buffer[units[-keep][0] :]


def _checked_text(sentence: Sentence) -> str:
    """What a sentence states, without markers, Markdown structure or emphasis."""
    text = MARKER.sub(" ", sentence.text)
    if sentence.kind == "table":
        text = " ; ".join(cell.strip() for cell in text.strip().strip("|").split("|"))
    else:
        text = _HEADING.sub("", _LIST_ITEM.sub("", text))
    return text.replace("**", "").replace("__", "")


def specifics(sentence: Sentence) -> list[Specific]:
    """Every specific ``sentence`` states, each as written."""
    if sentence.kind == "code":
        lines = [line.strip() for line in sentence.text.split("\n")[1:]]
        return [Specific("code", line) for line in lines if line and not _FENCE.match(line)]
    text = _checked_text(sentence)
    found: list[Specific] = []

    def take(kind: str, pattern: re.Pattern[str], *groups: int) -> None:
        nonlocal text
        for match in pattern.finditer(text):
            value = next((g for g in match.group(*groups) if g), "") if groups else match.group(0)
            value = value.strip().rstrip(".,;:!?")
            if value and value.casefold() not in _ABBREVIATIONS:
                found.append(Specific(kind, value))
        text = pattern.sub(_GAP, text)

    take("code", _CODE_SPAN, 2, 2)
    take("url", _URL)
    take("quote", _QUOTED, 1, 2)
    take("path", _PATH)
    take("identifier", _DOTTED)
    take("identifier", _SNAKE)
    take("identifier", _CAMEL)
    for match in _FLAG.finditer(text):
        words = re.findall(r"[A-Za-z][\w-]*|\S", text[: match.start()])[-2:]
        command = [w for w in words if w.islower() and w.isalpha() and not is_stopword(w)]
        while command and command[0] in _VERBS:
            command.pop(0)
        if len(command) == len(words) == 2:
            found.append(Specific("command", " ".join(command)))
    take("flag", _FLAG)
    for match in _NUMBER.finditer(text):
        number, unit = match.group(1), match.group(2)
        unit = unit if unit and (unit == "%" or not is_stopword(unit.casefold())) else None
        found.append(Specific("number", f"{number} {unit}" if unit else number))
    text = _NUMBER.sub(_GAP, text)
    for match in _NAME.finditer(text):
        before = text[: match.start()].rstrip()
        # A capital opening the sentence (or a clause after a colon) names nothing by itself.
        if not before or before[-1] in ".:!?" or match.group(0) == "I":
            continue
        found.append(Specific("name", match.group(0)))
    return found


@dataclass(slots=True)
class _Source:
    text: str
    words: set[str]
    phrase: str

    @classmethod
    def of(cls, text: str) -> _Source:
        normal = normalise(text)
        return cls(normal, content_words(text), _phrase(_tokens(normal)))

    def holds(self, specific: Specific) -> bool:
        value = normalise(specific.text)
        if specific.kind in ("number", "name", "quote"):
            return _phrase(_tokens(value)) in self.phrase
        # A flag must not be the tail or head of a longer one (-n in --no-cache).
        edge = r"[\w-]" if specific.kind == "flag" else r"\w"
        left = rf"(?<!{edge})" if value[:1].isalnum() or value[:1] == "-" else ""
        right = rf"(?!{edge})" if value[-1:].isalnum() else ""
        return re.search(left + re.escape(value) + right, self.text) is not None


@dataclass(slots=True)
class Verifier:
    """Judges a draft sentence by sentence against numbered sources, as it streams or whole."""

    sources: Sequence[str]
    question: str = ""
    min_support: float = 0.3
    policy: Policy = "drop"
    verdicts: list[Verdict] = field(default_factory=list)
    invalid_markers: int = 0
    # Pieces of draft fed so far (streamed backends send one token a piece).
    fed: int = 0
    _buffer: str = ""
    _indexed: list[_Source] = field(default_factory=list)
    _asked: frozenset[str] = frozenset()
    _pending: str = ""

    def __post_init__(self) -> None:
        self._indexed = [_Source.of(text) for text in self.sources]
        self._asked = frozenset(content_words(self.question))

    def feed(self, text: str) -> list[Verdict]:
        """The verdicts on the sentences that ``text`` completes."""
        self.fed += 1
        done, self._buffer = complete_sentences(self._buffer + text)
        return [self.judge(s) for s in done]

    def finish(self) -> list[Verdict]:
        """The verdicts on what the draft left unfinished."""
        rest, self._buffer = split_sentences(self._buffer), ""
        return [self.judge(s) for s in rest]

    def _coverage(self, words: set[str], n: int) -> float:
        if not words:
            return 1.0
        return len(words & self._indexed[n - 1].words) / len(words)

    def judge(self, sentence: Sentence) -> Verdict:
        """One sentence's verdict, recorded in :attr:`verdicts`."""
        cited = []
        for n in marker_numbers(sentence.text):
            if not 1 <= n <= len(self._indexed):
                self.invalid_markers += 1
            elif n not in cited:
                cited.append(n)
        wanted = specifics(sentence)
        words = set() if sentence.kind == "code" else content_words(_checked_text(sentence))
        added = (words - self._asked) or words
        supporting: tuple[int, ...] = ()
        reason: str | None = None
        if _MODEL_REFUSAL.search(sentence.text):
            reason = "it says the sources do not contain the answer"
        elif added or wanted:
            supporting, reason = self._support(cited, added, wanted)
        verdict = Verdict(sentence, supporting, reason, self._shown(sentence, cited, supporting, reason))
        self.verdicts.append(verdict)
        return verdict

    def _support(
        self, cited: list[int], words: set[str], wanted: list[Specific]
    ) -> tuple[tuple[int, ...], str | None]:
        def fits(n: int) -> bool:
            source = self._indexed[n - 1]
            return self._coverage(words, n) >= self.min_support and all(source.holds(s) for s in wanted)

        if supporting := tuple(n for n in cited if fits(n)):
            return supporting, None
        others = sorted(
            (n for n in range(1, len(self._indexed) + 1) if n not in cited),
            key=lambda n: -self._coverage(words, n),
        )
        if (best := next((n for n in others if fits(n)), None)) is not None:
            return (best,), None
        return (), self._why(cited, words, wanted)

    def _why(self, cited: list[int], words: set[str], wanted: list[Specific]) -> str:
        everywhere = range(1, len(self._indexed) + 1)
        for specific in wanted:
            if not any(self._indexed[n - 1].holds(specific) for n in everywhere):
                return f"`{specific.text}` is in no source"
        covered = [n for n in everywhere if self._coverage(words, n) >= self.min_support]
        if not covered:
            best = max((self._coverage(words, n) for n in everywhere), default=0.0)
            return f"its words are in no source (at most {best:.0%} of them in one)"
        n = next((c for c in cited if c in covered), covered[0])
        missing = next(s for s in wanted if not self._indexed[n - 1].holds(s))
        return f"`{missing.text}` is not in source {n}, which holds its words"

    def _shown(
        self, sentence: Sentence, cited: list[int], supporting: tuple[int, ...], reason: str | None
    ) -> str | None:
        """The sentence as delivered, with its spacing, or None when it is dropped."""
        # A dropped sentence's line break outlives it: the next one kept starts its line.
        if sentence.separator.count("\n") >= self._pending.count("\n"):
            self._pending = sentence.separator
        if reason is not None and self.policy == "drop":
            return None
        if reason is not None and self.policy == "keep":
            body = sentence.text
        elif reason is not None:
            body = _with_markers(sentence, (), UNVERIFIED_MARK)
        else:
            extra = "" if set(supporting) & set(cited) else _markers(supporting)
            body = _with_markers(sentence, tuple(n for n in cited if n in supporting), extra)
        spacing = self._pending if any(v.shown is not None for v in self.verdicts) else ""
        self._pending = ""
        return spacing + body

    def result(self) -> Verification:
        """What the whole draft comes to, once :meth:`finish` has been called."""
        shown = [v for v in self.verdicts if v.shown is not None]
        kept = [v for v in shown if v.supported]
        cited: list[int] = []
        for verdict in kept:
            cited += [n for n in verdict.sources if n not in cited]
        drafted = {n for v in self.verdicts for n in marker_numbers(v.sentence.text)}
        unsupported = [
            UnsupportedSentence(v.sentence.text, v.reason) for v in self.verdicts if v.reason is not None
        ]
        return Verification(
            text="".join(v.shown or "" for v in shown).strip(),
            cited=cited,
            uncited=sorted(n for n in drafted - set(cited) if 1 <= n <= len(self.sources)),
            unsupported=unsupported,
            supported=bool(kept),
            verdict=self._verdict(),
        )

    def _verdict(self) -> str:
        judged = [v for v in self.verdicts if v.supported or v.reason is not None]
        supported = sum(v.supported for v in judged)
        unsupported = len(judged) - supported
        fate = {"drop": "dropped", "mark": "marked", "keep": "kept unverified"}[self.policy]
        parts = [f"{supported} of {len(judged)} sentence(s) supported, {unsupported} {fate}"]
        if self.invalid_markers:
            parts.append(f"{self.invalid_markers} marker(s) naming no source")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Verification:
    """A verified draft: the text to deliver, the sources its kept sentences cite, what was not
    supported and why. ``uncited``: sources the draft cited that support nothing kept."""

    text: str
    cited: list[int]
    uncited: list[int]
    unsupported: list[UnsupportedSentence]
    supported: bool
    verdict: str


def _markers(numbers: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in numbers)


def _with_markers(sentence: Sentence, keep: tuple[int, ...], extra: str) -> str:
    """``sentence`` with only the markers of ``keep`` left and ``extra`` added before its end."""
    if sentence.kind == "code":
        return sentence.text

    def rewrite(match: re.Match[str]) -> str:
        numbers = [n for n in marker_numbers(match.group(0)) if n in keep]
        return _markers(numbers)

    text = MARKER.sub(rewrite, sentence.text)
    # The spaces a removed marker leaves: doubled, or before the punctuation closing a clause.
    text = re.sub(r"[ \t]+(?=[.,;:!?](?:\s|$)|$)", "", re.sub(r"(?<=\S)[ \t]{2,}", " ", text))
    if not extra:
        return text
    if sentence.kind == "table" and text.endswith("|"):
        return f"{text[:-1].rstrip()} {extra} |"
    body = text.rstrip(".!?:;")
    return f"{body} {extra}{text[len(body) :]}"


def verify(
    draft: str, sources: Sequence[str], *, question: str = "", min_support: float, policy: Policy = "drop"
) -> Verification:
    """``draft`` verified whole against ``sources`` (numbered from 1 in this order)."""
    verifier = Verifier(sources, question=question, min_support=min_support, policy=policy)
    verifier.feed(draft)
    verifier.finish()
    return verifier.result()


def unbacked_specifics(text: str, sources: Mapping[int, str]) -> list[tuple[str, str]]:
    """Each delivered sentence of ``text`` with a specific that none of the sources it cites holds.

    An audit of a delivered answer, as a reader would check it: ``sources`` maps a citation number
    to its passage. A sentence citing nothing is checked against every source. Returns (sentence,
    specific) pairs; empty when every specific of every sentence is in a source it cites.
    """
    held = {n: _Source.of(t) for n, t in sources.items()}
    found: list[tuple[str, str]] = []
    for sentence in split_sentences(text):
        cited = [held[n] for n in marker_numbers(sentence.text) if n in held] or list(held.values())
        for specific in specifics(sentence):
            if not any(source.holds(specific) for source in cited):
                found.append((sentence.text, specific.text))
    return found
