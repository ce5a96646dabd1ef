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
    groups: dict[str, list[tuple[int, int]]] = {"all": []}
    if bands is not None:
        groups |= {name: [] for name, _, _ in BANDS}
    for note, codes in enumerate(gold):
        for code in codes:
            groups["all"].append((note, code))
            if bands is not None:
                groups[bands[code]].append((note, code))
    ranked = top_k(scores, max(ks)) if ks else np.zeros((len(gold), 0), dtype=int)
    out: dict[str, dict[str, float | int | None]] = {}
    for name, pairs in groups.items():
        row: dict[str, float | int | None] = {"pairs": len(pairs)}
        for k in ks:
            hits = sum(1 for note, code in pairs if code in ranked[note, :k])
            row[f"@{k}"] = round(hits / len(pairs), 4) if pairs else None
        out[name] = row
    return out


def choose(dev_recall: Mapping[str, Mapping[str, Mapping[str, float | int | None]]], k: int) -> str:
    """The retriever with the highest recall@`k` on dev (`{name: recall_at_k(...)}`); ties
    go to the first name in sorted order. Test recall never enters the choice."""
    if not dev_recall:
        raise ValueError("no retriever to choose from")

    def key(name: str) -> tuple[float, str]:
        value = dev_recall[name]["all"][f"@{k}"]
        return (-(value if value is not None else -1.0), name)

    return min(dev_recall, key=key)
