"""Refusal that looks at the corpus: the question's distinctive terms that no document in scope mentions.

A question about something the documents never name (a product, a setting, a later version's
feature) retrieves the nearest passages anyway, and a small model answers from them as if they held
the answer. Similarity cannot tell; the corpus can: if a term the question hinges on occurs in no
chunk in scope, the honest answer is "the documents never mention it".

A term is *distinctive* when the question would be about something else without it: a name
(capitalised inside the question), an identifier or number (``max_tokens``, ``3.13``, ``--queue``)
or a word that is rare in general English (its Zipf frequency below :data:`COMMON_ZIPF`). Common
words are left out, because a question may phrase in its own words what the documents say in
theirs ("disadvantages" where the page says "drawbacks").

The presence check asks the vector store's own sparse index, the one BM25 search uses, so it is
exact under ingest, delete and re-index with no statistics kept beside it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from core.components.vectorstore import Bm25Encoder, VectorStore
from core.types import SearchFilter, SparseVector

# Words at or above this Zipf frequency (log10 of uses per billion words; "the" is about 7.7,
# "disadvantages" 3.5, "velociraptor" 2.3) are common English. Chosen on single_topic_web's training
# split only: its answerable questions' words missing from the corpus are 3.16 and above, and the
# unanswerable ones' are 2.96 and below (docs/retrieval.md).
COMMON_ZIPF = 3.0

_WORD = re.compile(r"(?:(?<![\w-])--?(?=[A-Za-z]))?[A-Za-z0-9][\w.+#/-]*[\w+#]|[A-Za-z0-9]")
# Identifier or version shapes: digits, snake_case, dotted names, paths, flags, CamelCase.
_IDENTIFIER = re.compile(r"\d|_|\w\.\w|/|^-|[a-z][A-Z]")
# What joins the words of a compound term: a dot, an underscore, a dash, a slash or a space.
_JOINED = re.compile(r"\w[._/ -]+\w|^-")
# A name and the number that makes it one thing: "PEP 695", "Python 3.13", "RFC 9110".
_LETTER = re.compile(r"[A-Za-z]")
# Documentation pages often render a qualified name in pieces ("functools. cache").
_SPACED_DOT = re.compile(r"(?<=\w)\s*\.\s*(?=\w)")
_NAMED_NUMBER = re.compile(r"\b[A-Z][A-Za-z]+ \d+(?:\.\d+)*\b")
# Chunks read for each compound term whose words all occur: the best BM25 matches for its words
# hold the term itself if any chunk does.
PHRASE_CHUNKS = 50


@dataclass(frozen=True, slots=True)
class Term:
    """A distinctive word of a question and its BM25 term indices."""

    text: str
    indices: tuple[int, ...]

    @property
    def compound(self) -> bool:
        """Whether the term is several words written as one (``requests.Session``, ``--disable-gil``,
        ``PEP 695``): each word may occur in the documents while the term itself does not."""
        return (
            len(self.indices) > 1
            and bool(_JOINED.search(self.text))
            and _LETTER.search(self.text) is not None
        )


def question_words(question: str) -> list[tuple[str, bool]]:
    """The question's words, each with whether it opens its sentence (its capital says nothing then)."""
    words: list[tuple[str, bool]] = []
    opening = True
    for match in _WORD.finditer(question):
        words.append((match.group(), opening))
        gap = question[match.end() : match.end() + 2]
        opening = gap[:1] in {".", "?", "!", ":"} and not gap[1:2].isalnum()
    return words


def is_distinctive(word: str, *, opens_sentence: bool, zipf: Callable[[str], float]) -> bool:
    """Whether ``word`` names something specific rather than being common English."""
    if _IDENTIFIER.search(word):
        return True
    if word[:1].isupper() and not opens_sentence:
        return True
    # A hyphenated compound is as specific as its rarest part ("disable-gil").
    parts = [part for part in word.lower().split("-") if part]
    return min(zipf(part) for part in parts) < COMMON_ZIPF if parts else False


def distinctive_terms(
    question: str, *, encode: Callable[[str], Sequence[int]], zipf: Callable[[str], float]
) -> list[Term]:
    """The question's distinctive words with their term indices (stopwords, which have none, are left out)."""
    terms: dict[tuple[int, ...], Term] = {}
    for word, opens in question_words(question):
        indices = tuple(sorted(set(encode(word))))
        if indices and indices not in terms and is_distinctive(word, opens_sentence=opens, zipf=zipf):
            terms[indices] = Term(word, indices)
    for match in _NAMED_NUMBER.finditer(question):
        indices = tuple(sorted(set(encode(match.group()))))
        if len(indices) > 1 and indices not in terms:
            terms[indices] = Term(match.group(), indices)
    return list(terms.values())


def _folded(text: str) -> str:
    return _SPACED_DOT.sub(".", " ".join(text.lower().split()))


def _phrase(term: str) -> re.Pattern[str]:
    """``term`` as a text would hold it: case folded, not part of a longer identifier. A name
    qualified further than documentation writes it (``asyncio.Queue.get_nowait``, listed under its
    class as ``Queue.get_nowait``) is looked for by its last two parts."""
    folded = _folded(term)
    if folded.count(".") >= 2 and not any(c.isdigit() for c in folded):
        folded = ".".join(folded.split(".")[-2:])
    return re.compile(rf"(?<![\w-]){re.escape(folded)}(?![\w-])")


def holds_phrase(texts: Iterable[str], term: str) -> bool:
    """Whether one of ``texts`` holds ``term`` itself (not only its words apart)."""
    pattern = _phrase(term)
    return any(pattern.search(_folded(text)) for text in texts)


@lru_cache(maxsize=65536)
def english_zipf(word: str) -> float:
    """Zipf frequency of ``word`` in general English (wordfreq's lists, shipped in its package)."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


async def unmentioned(
    store: VectorStore,
    sparse: Bm25Encoder,
    question: str,
    *,
    collections: Iterable[str],
    filter: SearchFilter | None = None,
    zipf: Callable[[str], float] = english_zipf,
) -> list[str]:
    """The question's distinctive terms that occur in no chunk of ``collections`` (under ``filter``)."""
    names = sorted(set(collections))
    terms = distinctive_terms(question, encode=lambda w: sparse.embed_query(w).indices, zipf=zipf)
    if not names or not terms:
        return []
    # One sparse search per term index and collection; a hit means some chunk holds that term.
    indices = sorted({i for t in terms for i in t.indices})
    found = await asyncio.gather(
        *(
            store.search(name, dense=None, sparse=SparseVector(indices=[i], values=[1.0]), k=1, filter=filter)
            for i in indices
            for name in names
        )
    )
    present = {i for n, i in enumerate(indices) if any(found[n * len(names) : (n + 1) * len(names)])}
    missing = [t for t in terms if not set(t.indices) <= present]
    # A compound term whose words all occur: is the term itself in the chunks that best match them?
    compounds = [t for t in terms if t.compound and t not in missing]
    matches = await asyncio.gather(
        *(
            store.search(
                name,
                dense=None,
                sparse=SparseVector(indices=list(t.indices), values=[1.0] * len(t.indices)),
                k=PHRASE_CHUNKS,
                filter=filter,
            )
            for t in compounds
            for name in names
        )
    )
    for n, term in enumerate(compounds):
        hits = [hit for ranking in matches[n * len(names) : (n + 1) * len(names)] for hit in ranking]
        if not holds_phrase((hit.text for hit in hits), term.text):
            missing.append(term)
    return [t.text for t in terms if t in missing]


def never_mentioned_text(terms: Sequence[str]) -> str:
    """The refusal for a question whose distinctive terms the documents never mention."""
    quoted = [f"“{t}”" for t in terms]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"The documents never mention {listed}, so I cannot answer that from them."
