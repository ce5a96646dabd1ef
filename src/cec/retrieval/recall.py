"""Recall@K of a code ranking, overall and per code-frequency band.

Recall@K here is the share of gold (note, code) pairs whose code is among the note's K
top-ranked codes: the share of the labels a retrieve-then-rank coder can still find. It
is micro-averaged over pairs; a band holds the pairs whose code had that many training
examples (the bands of issue 25: fewer than 10, 10 to 100, more than 100).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# (name, lowest training count, highest training count) of each band, both inclusive
BANDS: tuple[tuple[str, int, float], ...] = (
    ("<10", 0, 9),
    ("10-100", 10, 100),
    (">100", 101, float("inf")),
)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's `k` highest scores, best first; ties go to the lower
    index (the code set's order), so that a ranking never depends on the sort's luck."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be notes x codes, got shape {scores.shape}")
    k = min(k, scores.shape[1])
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores))
    return order[:, :k]


def band_of(train_counts: Sequence[int]) -> list[str]:
    """The band of each code, from its number of training examples."""
    names = []
    for count in train_counts:
        names.append(next(name for name, low, high in BANDS if low <= count <= high))
    return names


def recall_at_k(
    scores: np.ndarray,
    gold: Sequence[set[int]],
    ks: Sequence[int],
    bands: Sequence[str] | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """{"all": {"pairs": n, "@K": recall, ...}, band: {...}} for each K in `ks`; `gold`
    holds each note's gold code indices, `bands` each code's band (`band_of`). A band
    without gold pairs has recall None."""
    if len(gold) != scores.shape[0]:
        raise ValueError(f"{len(gold)} gold sets for {scores.shape[0]} notes")
    return recall_of_ranked(top_k(scores, max(ks)), gold, ks, bands)


def recall_of_ranked(
    ranked: np.ndarray,
    gold: Sequence[set[int]],
    ks: Sequence[int],
    bands: Sequence[str] | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """`recall_at_k` from each note's top codes (`top_k` to at least max(ks)), so that a
    caller can rank in batches and keep only those."""
    if len(gold) != ranked.shape[0]:
        raise ValueError(f"{len(gold)} gold sets for {ranked.shape[0]} notes")
    groups = ["all"] + ([name for name, _, _ in BANDS] if bands is not None else [])
    pairs = dict.fromkeys(groups, 0)
    hits = {name: dict.fromkeys(ks, 0) for name in groups}
    for note, codes in enumerate(gold):
        position = {int(code): i for i, code in enumerate(ranked[note])}
        for code in codes:
            rank = position.get(code, len(position))  # 0-based; beyond the cut: never a hit
            for name in ("all", bands[code]) if bands is not None else ("all",):
                pairs[name] += 1
                for k in ks:
                    hits[name][k] += rank < k
    return {
        name: {
            "pairs": pairs[name],
            **{f"@{k}": round(hits[name][k] / pairs[name], 4) if pairs[name] else None for k in ks},
        }
        for name in groups
    }


def choose(dev_recall: Mapping[str, Mapping[str, Mapping[str, float | int | None]]], k: int) -> str:
    """The retriever with the highest recall@`k` on dev (`{name: recall_at_k(...)}`); ties
    go to the first name in sorted order. Test recall never enters the choice."""
    if not dev_recall:
        raise ValueError("no retriever to choose from")

    def key(name: str) -> tuple[float, str]:
        value = dev_recall[name]["all"][f"@{k}"]
        return (-(value if value is not None else -1.0), name)

    return min(dev_recall, key=key)
