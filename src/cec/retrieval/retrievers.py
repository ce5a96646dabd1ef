"""Two ways to rank every code of a full code set for a note.

- `NeighbourRetriever` (supervised): the training notes most similar to the note (TF-IDF
  cosine) vote for their codes, each with its similarity. A code no neighbour carries
  keeps a score below every voted code, ordered by its training frequency, so that the
  ranking is total.
- `TitleRetriever` (unsupervised): BM25 of the note's words against each code's public
  text (its title and its parent's title), so that a code without a training example can
  still be found. Same tokenizer and BM25 variant as the concept coverage (`cec.bm25`).

Both return a notes x codes score matrix in the order of the code set they were built for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cec import bm25


class NeighbourRetriever:
    """k-nearest-neighbour voting over TF-IDF vectors of the training notes."""

    def __init__(self, codes: Sequence[str], neighbours: int = 50, min_df: int = 1) -> None:
        if neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {neighbours}")
        self.codes = list(codes)
        self.neighbours = neighbours
        self.min_df = min_df
        self._index = {code: i for i, code in enumerate(self.codes)}
        self._vectorizer = None
        self._train = None
        self._labels = None
        self._prior = np.zeros(len(self.codes))

    def fit(self, texts: Sequence[str], labels: Sequence[Sequence[str]]) -> NeighbourRetriever:
        """Index the training notes and their labels (codes outside the set are ignored)."""
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} notes but {len(labels)} label sets")
        if not texts:
            raise ValueError("no training notes")
        self._vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=self.min_df)
        self._train = self._vectorizer.fit_transform(texts)  # rows are L2-normalised
        rows, cols = [], []
        for row, codes in enumerate(labels):
            for code in set(codes):
                if code in self._index:
                    rows.append(row)
                    cols.append(self._index[code])
        self._labels = sparse.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(self.codes))
        )
        counts = np.asarray(self._labels.sum(axis=0)).ravel()
        # below any vote (a similarity is > 0), ordered by training frequency
        self._prior = 1e-6 * counts / max(1.0, counts.max())
        return self

    def scores(
        self, texts: Sequence[str], batch: int = 256, exclude: Sequence[int] | None = None
    ) -> np.ndarray:
        """Notes x codes, `batch` notes at a time: a batch's similarities to every training
        note are dense (MIMIC-IV: ~110,000 training notes), the labels stay sparse.

        `exclude[i]`: the training row that note i is (-1: none), which may not vote for
        it. Scoring the training notes themselves needs it: a note is its own nearest
        neighbour, so its own codes would always be proposed (leave-one-out)."""
        from scipy import sparse

        if self._vectorizer is None or self._train is None or self._labels is None:
            raise RuntimeError("fit the retriever first")
        out = np.empty((len(texts), len(self.codes)))
        if exclude is not None and len(exclude) != len(texts):
            raise ValueError(f"{len(texts)} notes but {len(exclude)} rows to exclude")
        keep = min(self.neighbours, self._train.shape[0])
        for start in range(0, len(texts), batch):
            query = self._vectorizer.transform(texts[start : start + batch])
            similarity = (query @ self._train.T).toarray()
            if exclude is not None:
                own = np.asarray(exclude[start : start + batch])
                mine = np.flatnonzero(own >= 0)
                similarity[mine, own[mine]] = 0.0  # no vote (a vote needs similarity > 0)
            # zero all but each note's `keep` nearest training notes
            cut = np.argpartition(-similarity, keep - 1, axis=1)[:, :keep]
            nearest = np.zeros_like(similarity)
            np.put_along_axis(nearest, cut, np.take_along_axis(similarity, cut, axis=1), axis=1)
            votes = sparse.csr_matrix(nearest) @ self._labels
            out[start : start + batch] = votes.toarray() + self._prior
        return out


class TitleRetriever:
    """BM25 of a note against each code's title and parent title."""

    def __init__(self, codes: Sequence[str], texts: Mapping[str, str]) -> None:
        self.codes = list(codes)
        missing = [code for code in self.codes if not texts.get(code)]
        if missing:
            raise ValueError(f"{len(missing)} codes without a text, e.g. {missing[:3]}")
        self._bm25 = bm25.index(bm25.tokenize([texts[code] for code in self.codes]))
        self._vocab = self._bm25.vocab_dict

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.codes)))
        for row, tokens in enumerate(bm25.tokenize(list(texts))):
            terms = [t for t in dict.fromkeys(tokens) if t in self._vocab]
            if terms:
                out[row] = self._bm25.get_scores(terms)
        return out


def code_texts(rows: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """A code's public text for `TitleRetriever`: its description and its parent's, from
    codes.tsv rows (`cec.plumbing.artifacts.read_code_table`); the code itself where the
    table has neither."""
    texts = {}
    for row in rows:
        parts = [row.get("description") or "", row.get("parent_description") or ""]
        texts[row["code"]] = "; ".join(p for p in parts if p) or row["code"]
    return texts
