"""BM25 sparse vectors, computed in process with Qdrant Edge's tokenizer and fed to either backend.

Documents get BM25's term-frequency part only, ``tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len))``;
queries get weight 1 per distinct term. The store's IDF modifier supplies the IDF factor at query
time, so a query scores ``sum(idf(t) * tf_part(t, d))``: BM25, with statistics the store keeps live.
"""

from __future__ import annotations

from collections.abc import Sequence

import qdrant_edge

from core.types import SparseVector

# Average chunk length in BM25 tokens (stopwords dropped), for chunks of about 200 model tokens.
DEFAULT_AVG_LEN = 150.0


class Bm25Encoder:
    """English BM25 (stemming, stopwords): document and query sparse vectors for the IDF-modified store."""

    def __init__(self, *, avg_len: float = DEFAULT_AVG_LEN) -> None:
        self._model = qdrant_edge.Bm25(qdrant_edge.Bm25Config(language="english", avg_len=avg_len))

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """Term-frequency weights of each text; empty for a text with no terms (e.g. only stopwords)."""
        return [_from_edge(self._model.embed_document(text)) for text in texts]

    def embed_query(self, text: str) -> SparseVector:
        """Weight 1.0 for each distinct term of ``text``."""
        return _from_edge(self._model.embed_query(text))


def _from_edge(vector: qdrant_edge.SparseVector) -> SparseVector:
    return SparseVector(indices=list(vector.indices), values=[float(v) for v in vector.values])
