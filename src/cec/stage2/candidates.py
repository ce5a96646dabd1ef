"""Full code sets: the label model re-ranks each note's retrieved candidates; every other
code takes a probability from the retriever's side that no candidate is below.

Codes ranked after the candidates (as deep as the retriever wrote them) keep the
retriever's order, scaled under the note's lowest candidate probability: the j-th of R
such codes gets `floor x (R + 1 - j) / (R + 1)`, where `floor` is the lowest probability
the label model gave a candidate of that note. A code the retriever did not list is not
written at all; the evaluation reads it as probability 0. So thresholds, P@k and AUC
order the candidates by the label model and everything else below them by the retriever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def split_ranked(
    ranked: Sequence[str], label_set: Mapping[str, object], rerank: int
) -> tuple[list[str], list[str]]:
    """(candidates, the rest) of one note's retrieved codes, best first; codes outside
    the label set are dropped (a retriever built for another code table)."""
    if rerank < 1:
        raise ValueError(f"rerank must be at least 1, got {rerank}")
    known = [code for code in ranked if code in label_set]
    return known[:rerank], known[rerank:]


def with_rest(
    probs: Mapping[str, float], candidates: Sequence[str], rest: Sequence[str]
) -> dict[str, float]:
    """P(code) for the candidates (the label model's) and the codes ranked after them
    (below the lowest candidate, in retriever order)."""
    out = {code: float(probs[code]) for code in candidates}
    floor = min(out.values(), default=0.0)
    depth = len(rest)
    for j, code in enumerate(rest, start=1):
        out[code] = floor * (depth + 1 - j) / (depth + 1)
    return out
