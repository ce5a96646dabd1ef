"""Which concepts (and answers) a label prompt shows: for training and for prediction.

Layout. Section 3.4 shows, for a true code, its own concepts answered "Yes" and m others
answered "No", and the reverse for a false code. If the m others sat at fixed lines, their
answers would be the negation of the label: a perfect cue that a model takes (it did: the
demo's CEC then said "Yes" to every code, since at prediction the others are always "No").
So no line position may carry the label:

- training: the m others and the k own concepts are shuffled together (seeded), so every
  position holds an "other" with the same probability m / (k + m);
- prediction: the m others go to seeded positions among the first m + k_min lines, and the
  code's remaining own concepts follow in seeded order. The prompt for k_min is then a
  prefix of those for larger k, so one prompt tree per code answers k = 3..6 (see
  `cec.stage2.score`). Prediction never reads labels, so its layout cannot leak them.

Every draw uses its own generator seeded by (seed, hadm_id[, code]), so results do not
depend on file order or on how the work is split over jobs. Prediction never reads gold
labels: it sees only stage-1 answers.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CodeConcepts = Mapping[str, Mapping[str, Sequence[str]]]


@dataclass(frozen=True)
class ConceptView:
    """The concept sets a variant works with: C_y per code and the whole space C."""

    own: dict[str, list[str]]  # code -> C_y, in canonical order (leaf first, then parent)
    space: list[str]  # C, canonical order, no repeats
    position: dict[str, int]  # concept -> its index in `space`

    @classmethod
    def build(cls, code_concepts: CodeConcepts, codes: Sequence[str], variant: str) -> ConceptView:
        levels = ("leaf",) if variant == "leaf" else ("leaf", "parent")
        own = {
            code: list(
                dict.fromkeys(c for lv in levels for c in code_concepts.get(code, {}).get(lv, []))
            )
            for code in codes
        }
        space = list(dict.fromkeys(c for code in codes for c in own[code]))
        return cls(own, space, {c: i for i, c in enumerate(space)})

    def scored(self, p_yes: Mapping[str, float]) -> list[str]:
        """The concepts of C that stage 1 answered for a note, in C's order: all of C for a
        50-code set, those of the note's candidates for a full one."""
        return sorted((c for c in p_yes if c in self.position), key=self.position.__getitem__)


def _rng(kind: str, seed: int, *key: str) -> random.Random:
    return random.Random(":".join(["cec-stage2", kind, str(seed), *key]))


def own_order(view: ConceptView, code: str, hadm_id: str, seed: int) -> list[str]:
    """C_y in the seeded order of this (admission, code): the first k are shown for k."""
    own = view.own[code]
    return _rng("own", seed, hadm_id, code).sample(own, len(own))


Line = tuple[str, bool]


def predicted_lines(
    view: ConceptView,
    code: str,
    hadm_id: str,
    seed: int,
    p_yes: Mapping[str, float],
    m: int = 2,
) -> tuple[list[Line], list[Line]]:
    """(others, own) for prediction: m concepts answered no that belong to other codes
    (drawn from C'_- minus C_y), and all of C_y in seeded order with the stage-1 answer
    (yes when p_yes > 0.5). `prediction_layout` orders them."""
    own_set = set(view.own[code])
    negatives = [c for c in view.scored(p_yes) if c not in own_set and p_yes[c] <= 0.5]
    picks = _rng("others", seed, hadm_id, code).sample(negatives, min(m, len(negatives)))
    own = [(c, p_yes[c] > 0.5) for c in own_order(view, code, hadm_id, seed)]
    return [(c, False) for c in picks], own


def prediction_layout(
    view: ConceptView,
    code: str,
    hadm_id: str,
    seed: int,
    p_yes: Mapping[str, float],
    m: int = 2,
    k_min: int = 3,
) -> tuple[list[Line], int]:
    """All lines of a code's prompts in order, and how many others they hold: the prompt
    for k shows the first `others + min(k, |C_y|)` lines. The others sit at seeded
    positions among the first `others + min(k_min, |C_y|)` lines."""
    others, own = predicted_lines(view, code, hadm_id, seed, p_yes, m)
    head = own[: min(k_min, len(own))] + others
    _rng("layout", seed, hadm_id, code).shuffle(head)
    return head + own[len(head) - len(others) :], len(others)


def training_rows(
    record: Mapping[str, Any],
    codes: Sequence[str],
    view: ConceptView | None,
    seed: int,
    k: int = 5,
    m: int = 2,
    false_per_true: float = 1.0,
    candidates: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Section 3.4 steps 1-3 for one train admission.

    `candidates` (full code sets): the admission's retrieved codes; false codes are drawn
    from them, the hard negatives prediction will re-rank, not from the whole set.

    Codes: the true labels and round(false_per_true x their number) sampled false ones.
    C_+ is the union of C_y over true labels, C_- the rest of C. For code l: k concepts
    of C_l (step 1); m from C_- if l is true, from C_+ if false (step 2); each shown with
    "Yes" if it is in C_+, else "No" (step 3). `view` None: direct coding, no concepts.
    """
    hadm = str(record["hadm_id"])
    code_set = set(codes)
    true = [c for c in record["labels"] if c in code_set]
    if not true:
        return []
    rng = _rng("train", seed, hadm)
    pool = codes if candidates is None else [c for c in candidates if c in code_set]
    false_pool = [c for c in pool if c not in set(true)]
    n_false = min(len(false_pool), round(len(true) * false_per_true))
    chosen = [(c, 1) for c in true] + [(c, 0) for c in rng.sample(false_pool, n_false)]
    rng.shuffle(chosen)
    rows = []
    for code, label in chosen:
        lines: list[tuple[str, bool]] = []
        if view is not None:
            plus = list(dict.fromkeys(c for t in true for c in view.own[t]))
            plus_set = set(plus)
            own = view.own[code]
            own_set = set(own)
            shown = rng.sample(own, min(k, len(own)))
            source = [c for c in view.space if c not in plus_set] if label else plus
            source = [c for c in source if c not in own_set]
            others = rng.sample(source, min(m, len(source)))
            lines = [(c, c in plus_set) for c in others + shown]
            rng.shuffle(lines)  # no position may tell the others from the own
        rows.append(
            {
                "hadm_id": hadm,
                "code": code,
                "label": label,
                "concepts": [[c, int(y)] for c, y in lines],
            }
        )
    return rows
