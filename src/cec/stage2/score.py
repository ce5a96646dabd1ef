"""Label probabilities for one note: every code of the label set, one method family.

All codes of a note share its prefix (instruction + note + the line before the concept
answers). For CEC with several k the prompts of one code share their first lines too: in
the prediction layout (`cec.stage2.sampling.prediction_layout`) the lines for k = 3 are a
prefix of those for k = 4, so one segment tree per code holds the m other lines and the
first k_min own lines (mixed at seeded positions), then alternates "question for this k"
and "one more own line". Each question still sees exactly its own full prompt (see
`cec.llm.yesno.score_tree`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cec.llm.yesno import Segment, score_tree
from cec.stage2.prompts import LabelPromptEncoder
from cec.stage2.sampling import ConceptView, prediction_layout

Lines = list[tuple[str, bool]]


@dataclass
class NoteScores:
    """Per k (None for direct coding): code -> P(code); and per code the lines shown for
    the largest k, in prompt order, for explanations."""

    probs: dict[int | None, dict[str, float]]
    lines: dict[str, Lines]
    tokens: int = 0  # the minimum: the note prefix once plus every segment once


@dataclass
class LabelScorer:
    model: Any
    encoder: LabelPromptEncoder
    titles: Mapping[str, str]  # code -> the title shown in the question
    concept_text: Mapping[str, str]
    view: ConceptView | None  # None: direct coding
    seed: int
    m: int = 2
    max_tokens: int = 4096
    row_tokens: int = 640

    def _line_ids(self, lines: Lines) -> tuple[int, ...]:
        return tuple(t for c, y in lines for t in self.encoder.line(self.concept_text[c], y))

    def build(
        self,
        hadm_id: str,
        ks: Sequence[int] | None,
        p_yes: Mapping[str, float] | None,
        codes: Sequence[str] | None = None,
    ) -> tuple[list[Segment], list[tuple[str, int | None]], dict[str, Lines]]:
        """Segments for every code (or the note's candidates, `codes`); which (code, k)
        each scored segment answers."""
        segments: list[Segment] = []
        keys: list[tuple[str, int | None]] = []
        shown: dict[str, Lines] = {}
        for code in self.titles if codes is None else codes:
            question = self.encoder.question(self.titles[code])
            if self.view is None or ks is None:
                segments.append(Segment(question))
                keys.append((code, None))
                shown[code] = []
                continue
            assert p_yes is not None
            n_own = len(self.view.own[code])
            wanted = sorted({min(k, n_own) for k in ks})
            lines, n_others = prediction_layout(
                self.view, code, hadm_id, self.seed, p_yes, self.m, wanted[0]
            )
            shown[code] = lines[: n_others + max(wanted)]
            trunk_lines = lines[: n_others + wanted[0]]
            parent = -1
            if trunk_lines:
                segments.append(Segment(self._line_ids(trunk_lines), -1, scored=False))
                parent = len(segments) - 1
            have = n_others + wanted[0]
            for kk in wanted:
                if n_others + kk > have:
                    more = lines[have : n_others + kk]
                    segments.append(Segment(self._line_ids(more), parent, scored=False))
                    parent = len(segments) - 1
                    have = n_others + kk
                segments.append(Segment(question, parent))
                keys.append((code, kk))
        return segments, keys, shown

    def score(
        self,
        prefix: Sequence[int],
        hadm_id: str,
        ks: Sequence[int] | None,
        p_yes: Mapping[str, float] | None,
        codes: Sequence[str] | None = None,
    ) -> NoteScores:
        segments, keys, shown = self.build(hadm_id, ks, p_yes, codes)
        probs = score_tree(
            self.model, prefix, segments, self.encoder.answer_ids, self.max_tokens, self.row_tokens
        )
        got = dict(zip(keys, probs, strict=True))
        out: dict[int | None, dict[str, float]] = {}
        for k in ks if ks is not None and self.view is not None else [None]:
            out[k] = {}
            for code in self.titles if codes is None else codes:
                if k is None:
                    out[k][code] = got[(code, None)]
                else:
                    n_own = len(self.view.own[code]) if self.view else 0
                    out[k][code] = got[(code, min(k, n_own))]
        tokens = len(prefix) + sum(len(seg.ids) for seg in segments)
        return NoteScores(out, shown, tokens)
