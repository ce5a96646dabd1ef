"""BM25 as the stages use it: one tokenizer and one set of parameters, so that the concept
coverage (`cec.concepts.coverage`) and the candidate retrieval (`cec.retrieval`) score
text the same way. bm25s is imported late: only those stages need it."""

from __future__ import annotations

from typing import Any

# Lucene BM25 with bm25s' defaults
K1 = 1.5
B = 0.75
METHOD = "lucene"
TOKENIZER = "bm25s.tokenize: lowercase, stopwords='en', no stemming"


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lowercased words of each text (bm25s' default token pattern), English stopwords
    removed, no stemming."""
    import bm25s  # type: ignore[import-untyped]

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


def index(corpus: list[list[str]]) -> Any:
    """A BM25 index (`bm25s.BM25`) over tokenized documents."""
    import bm25s  # type: ignore[import-untyped]

    retriever = bm25s.BM25(k1=K1, b=B, method=METHOD)
    retriever.index(corpus, show_progress=False)
    return retriever
