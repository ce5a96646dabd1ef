"""Coverage of a note's evidence by the concepts of its gold codes (paper, Appendix D).

The paper checks that its concept sets are faithful intermediates for ICD coding: it cuts
each note into overlapping sentence windows, scores every window against the concept
phrases with BM25 (Robertson and Walker, 1994) and reports that nearly 99% of the notes have
at least one window aligned with a concept of their own codes. This module repeats that
measurement for any concept set, given as a mapping ``code -> concept phrases``.

Procedure, per note:

1. Sentences: the note is split at newlines and after ``.``, ``!`` or ``?`` followed by
   whitespace; empty pieces are dropped.
2. Windows: ``window`` consecutive sentences, starting every ``stride`` sentences. A note
   with fewer sentences than ``window`` is a single window. When the stride does not land
   on the last full window, one more window ending at the last sentence is added, so that
   the end of the note is never dropped (with ``stride <= window`` every sentence is in a
   window).
3. BM25: the note's windows form the corpus of a `bm25s` index (lowercased, the default
   bm25s token pattern, English stopwords removed, no stemming; Lucene BM25 with k1=1.5,
   b=0.75). Each concept phrase of each gold code is one query; repeated query terms count
   once, and terms absent from the note score nothing.
4. A window is aligned with a concept if its score is >= ``min_score``; the note is covered
   if any window is aligned with any concept of any of its gold codes, i.e. if the note's
   maximum score is >= ``min_score``.

Notes without gold codes, or whose gold codes have no concept phrase, cannot be assessed.
They are counted in ``n_without_concepts``, are not covered, and stay in the denominator of
``share`` (so a concept set that misses codes cannot look better by skipping notes);
``share_assessed`` gives the share over the assessable notes only.

The threshold is ours: the paper gives none. In bm25s' Lucene BM25 a query term adds
``idf * tf / (tf + k1 * (1 - b + b * len / avg_len))`` with
``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, N the note's windows (about 80 to 170 for a
synthetic note) and n those holding the term. A word found in one sentence (three windows)
of a 100-window note has idf of about 3.4 and, said once in a window of average length,
adds 0.4 * idf = 1.4; common words add less. ``min_score = 3.0`` therefore asks for about
two distinctive concept words in the same window: a one-word concept ("HTN") cannot align
on its own (the best seen on 120 synthetic training notes is 2.5). See DEFAULT_MIN_SCORE for how it
was chosen. BM25 aligns some window with almost any phrase that shares a word with a note,
so `chance_coverage` measures the share that the same concepts reach on an unrelated note;
report it next to the coverage. The per-note maximum scores are kept so that the threshold
can be revisited without re-running.

No note text is ever written to outputs or logs; only counts and scores are.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cec import bm25
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_path, read_jsonl, write_json

log = logging.getLogger(__name__)

#: Our choice (the paper gives none), made on the synthetic MIMIC-III-50 TRAINING notes with
#: each code's synthetic mentions as a stand-in concept set. Own-note coverage stays at its
#: plateau (99.6%) from 2.25 up to 3.0 and drops above; over that range a concept of a code
#: the note does NOT carry passes in 12.8% (2.25) down to 6.1% (3.0) of note/code pairs, and
#: a note's gold concepts "cover" an unrelated note in 44% down to 23% of cases. 3.0 is the
#: strictest threshold on that plateau. At 2.0 those false rates are 19.8% and 52%: a single
#: shared word already passes, so half of all notes look "covered" by unrelated concepts.
DEFAULT_MIN_SCORE = 3.0
DEFAULT_WINDOW = 3
DEFAULT_STRIDE = 1

#: Thresholds at which the share covered is also reported, to show how sensitive it is.
SENSITIVITY_THRESHOLDS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)

_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a note: split at newlines and after . ! ? plus whitespace; no empties."""
    out = []
    for line in text.splitlines():
        for piece in _SENTENCE_END_RE.split(line):
            piece = piece.strip()
            if piece:
                out.append(piece)
    return out


def window_starts(
    n_sentences: int, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE
) -> list[int]:
    """Start indices of the sentence windows of a note with `n_sentences` sentences.

    No sentences, no window; fewer sentences than `window`, one window at 0; otherwise
    every `stride` sentences while a full window fits, plus a last window ending at the
    final sentence if the stride skipped it.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
    if n_sentences <= 0:
        return []
    last = max(n_sentences - window, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def sentence_windows(
    text: str, window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE
) -> list[str]:
    """The overlapping sentence windows of a note, each joined with single spaces."""
    sentences = split_sentences(text)
    return [
        " ".join(sentences[s : s + window]) for s in window_starts(len(sentences), window, stride)
    ]


def concept_scores(
    text: str,
    code_concepts: Mapping[str, Sequence[str]],
    window: int = DEFAULT_WINDOW,
    stride: int = DEFAULT_STRIDE,
) -> dict[str, float]:
    """Best BM25 score of any window of `text` for each code's concept phrases.

    The index over the note's windows is built once and queried with every phrase; a code
    whose phrases share no term with the note (or a note without words) scores 0.0.
    """
    windows = sentence_windows(text, window, stride)
    corpus = bm25.tokenize(windows) if windows else []
    result = {code: 0.0 for code in code_concepts}
    if not any(corpus):
        return result
    retriever = bm25.index(corpus)
    vocab = retriever.vocab_dict
    phrases = sorted({p for ps in code_concepts.values() for p in ps})
    phrase_tokens = dict(zip(phrases, bm25.tokenize(phrases), strict=True)) if phrases else {}
    phrase_best: dict[str, float] = {}
    for phrase, tokens in phrase_tokens.items():
        terms = [t for t in dict.fromkeys(tokens) if t in vocab]
        phrase_best[phrase] = float(retriever.get_scores(terms).max()) if terms else 0.0
    for code, ps in code_concepts.items():
        result[code] = max((phrase_best[p] for p in ps), default=0.0)
    return result


@dataclass
class CoverageResult:
    """Coverage counts of one set of notes; `max_scores` holds one float per assessed note."""

    n_notes: int
    n_covered: int
    share: float
    max_scores: list[float]
    n_without_concepts: int
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def n_assessed(self) -> int:
        return self.n_notes - self.n_without_concepts

    @property
    def share_assessed(self) -> float:
        return self.n_covered / self.n_assessed if self.n_assessed else 0.0

    def summary(self) -> dict[str, Any]:
        """Counts, shares, threshold sensitivity and score quantiles; no per-note data."""
        return {
            "n_notes": self.n_notes,
            "n_covered": self.n_covered,
            "share": round(self.share, 4),
            "n_without_concepts": self.n_without_concepts,
            "share_assessed": round(self.share_assessed, 4),
            "share_at_threshold": {
                str(t): round(_share_at(self.max_scores, t, self.n_notes), 4)
                for t in SENSITIVITY_THRESHOLDS
            },
            "max_score_quantiles": _quantiles(self.max_scores),
        }


def _share_at(scores: Sequence[float], threshold: float, n_notes: int) -> float:
    return sum(s >= threshold for s in scores) / n_notes if n_notes else 0.0


def _quantiles(values: Sequence[float]) -> dict[str, float] | None:
    """Linear-interpolation quantiles (numpy's default), or None without values."""
    if not values:
        return None
    import numpy as np

    qs = np.quantile(np.asarray(values, dtype=float), QUANTILES)
    return {
        f"q{round(q * 100):02d}": round(float(v), 4) for q, v in zip(QUANTILES, qs, strict=True)
    }


def coverage(
    records: Iterable[dict[str, Any]],
    code_concepts: Mapping[str, Sequence[str]],
    window: int = DEFAULT_WINDOW,
    stride: int = DEFAULT_STRIDE,
    min_score: float = DEFAULT_MIN_SCORE,
    *,
    source: str | Path | None = None,
) -> CoverageResult:
    """Share of notes with a window aligned with a concept of one of their gold codes.

    `records` are dataset rows with "text" (str) and "labels" (list of codes); `source`
    names their file in error messages. Codes missing from `code_concepts` contribute no
    concept. See the module docstring for the procedure.
    """
    _check_parameters(window, stride, min_score)
    n_notes = n_without = 0
    max_scores: list[float] = []
    for row, rec in enumerate(records, start=1):
        text, labels = _validate(rec, row, source)
        n_notes += 1
        gold = _gold_concepts(labels, code_concepts)
        if not gold:
            n_without += 1
            continue
        max_scores.append(max(concept_scores(text, gold, window, stride).values()))
    return _result(n_notes, max_scores, n_without, window, stride, min_score)


def chance_coverage(
    records: Sequence[dict[str, Any]],
    code_concepts: Mapping[str, Sequence[str]],
    window: int = DEFAULT_WINDOW,
    stride: int = DEFAULT_STRIDE,
    min_score: float = DEFAULT_MIN_SCORE,
    *,
    seed: int = 0,
    source: str | Path | None = None,
) -> CoverageResult:
    """Coverage of each note's gold concepts on an UNRELATED note: the chance level.

    BM25 finds some window for almost any phrase that shares a word with a note, so a
    coverage share means little without the share the same concepts reach on a note that
    does not carry their codes. Each note is paired with the first note, in a seeded random
    order, that shares none of its labels; a note with no such partner is counted in
    `n_without_concepts`. Deterministic for a given `seed` and record order.
    """
    _check_parameters(window, stride, min_score)
    rows = [_validate(rec, row, source) for row, rec in enumerate(records, start=1)]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    position = {idx: pos for pos, idx in enumerate(order)}
    n_without = 0
    max_scores: list[float] = []
    for i, (_, labels) in enumerate(rows):
        gold = _gold_concepts(labels, code_concepts)
        partner = _unrelated_partner(i, rows, order, position, set(labels)) if gold else None
        if partner is None:
            n_without += 1
            continue
        max_scores.append(max(concept_scores(rows[partner][0], gold, window, stride).values()))
    return _result(len(rows), max_scores, n_without, window, stride, min_score)


def _unrelated_partner(
    i: int,
    rows: Sequence[tuple[str, list[str]]],
    order: Sequence[int],
    position: Mapping[int, int],
    labels: set[str],
) -> int | None:
    start = position[i]
    for step in range(1, len(order)):
        j = order[(start + step) % len(order)]
        if not labels.intersection(rows[j][1]):
            return j
    return None


def _gold_concepts(
    labels: Sequence[str], code_concepts: Mapping[str, Sequence[str]]
) -> dict[str, Sequence[str]]:
    return {c: code_concepts[c] for c in labels if code_concepts.get(c)}


def _check_parameters(window: int, stride: int, min_score: float) -> None:
    window_starts(1, window, stride)  # raises on a window or stride below 1
    if not math.isfinite(min_score):
        raise ValueError(f"min_score must be finite, got {min_score}")


def _result(
    n_notes: int,
    max_scores: list[float],
    n_without: int,
    window: int,
    stride: int,
    min_score: float,
) -> CoverageResult:
    n_covered = sum(s >= min_score for s in max_scores)
    params = {
        "window": window,
        "stride": stride,
        "min_score": min_score,
        "bm25": {"k1": bm25.K1, "b": bm25.B, "method": bm25.METHOD},
        "tokenizer": bm25.TOKENIZER,
    }
    share = n_covered / n_notes if n_notes else 0.0
    return CoverageResult(n_notes, n_covered, share, max_scores, n_without, params)


def _validate(rec: Any, row: int, source: str | Path | None) -> tuple[str, list[str]]:
    if not isinstance(rec, dict):
        raise InputError("record is not a JSON object", file=source, row=row)
    text = rec.get("text")
    if not isinstance(text, str):
        raise InputError("missing or non-string note text", file=source, row=row, field="text")
    labels = rec.get("labels")
    if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
        raise InputError(
            "labels must be a list of code strings", file=source, row=row, field="labels"
        )
    return text, labels


def write_coverage(
    dataset_dir: Path,
    code_concepts: Mapping[str, Sequence[str]],
    out_json: Path,
    out_png: Path,
    splits: Sequence[str] = ("train", "dev", "test"),
    window: int = DEFAULT_WINDOW,
    stride: int = DEFAULT_STRIDE,
    min_score: float = DEFAULT_MIN_SCORE,
    *,
    chance_seed: int | None = 0,
) -> dict[str, Any]:
    """Measure coverage on each split of a dataset and write coverage.json and a figure.

    Reads ``{dataset_dir}/{split}.jsonl``. The JSON has the parameters and, per split and
    overall, counts, shares, threshold sensitivity and max-score quantiles, plus the chance
    level of `chance_coverage` (pairs drawn within each split; `chance_seed=None` skips
    it). The figure is a histogram of per-note max BM25 scores, with the chance-level
    scores as an outline and the threshold marked, written as `out_png` and as a PDF with
    the same stem. Returns the JSON object.
    """
    dataset_dir = Path(dataset_dir)
    own: dict[str, CoverageResult] = {}
    chance: dict[str, CoverageResult] = {}
    for split in splits:
        path = dataset_dir / f"{split}.jsonl"
        if not path.is_file():
            raise InputError(f"dataset split {split!r} not found", file=path)
        records = list(read_jsonl(path))
        own[split] = coverage(records, code_concepts, window, stride, min_score, source=path)
        if chance_seed is not None:
            chance[split] = chance_coverage(
                records, code_concepts, window, stride, min_score, seed=chance_seed, source=path
            )
        log.info("coverage %s: %d/%d notes covered", split, own[split].n_covered, len(records))
    overall = _merge(list(own.values()), window, stride, min_score)
    overall_chance = _merge(list(chance.values()), window, stride, min_score) if chance else None

    def block(split_result: CoverageResult, chance_result: CoverageResult | None) -> dict:
        out = split_result.summary()
        if chance_result is not None:
            out["chance"] = chance_result.summary()
        return out

    report = {
        "method": "max BM25 over sentence windows vs concept phrases of the gold codes",
        "threshold_note": "min_score is our choice; the paper gives no threshold",
        "parameters": {**overall.parameters, "chance_seed": chance_seed},
        "n_codes_with_concepts": sum(1 for ps in code_concepts.values() if ps),
        "splits": {s: block(own[s], chance.get(s)) for s in own},
        "overall": block(overall, overall_chance),
    }
    write_json(out_json, report)
    _plot(overall, overall_chance, min_score, Path(out_png))
    return report


def _merge(
    results: list[CoverageResult], window: int, stride: int, min_score: float
) -> CoverageResult:
    scores = [s for r in results for s in r.max_scores]
    n_notes = sum(r.n_notes for r in results)
    n_without = sum(r.n_without_concepts for r in results)
    return _result(n_notes, scores, n_without, window, stride, min_score)


def _plot(
    overall: CoverageResult, chance: CoverageResult | None, min_score: float, png: Path
) -> None:
    """Histogram of per-note max scores, the chance level as an outline, the threshold line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    everything = overall.max_scores + (chance.max_scores if chance else [])
    upper = max([*everything, min_score]) * 1.05
    bins = [upper * k / 40 for k in range(41)]
    if overall.max_scores:
        ax.hist(
            overall.max_scores,
            bins=bins,
            color="tab:blue",
            alpha=0.7,
            label="gold-code concepts, own note",
        )
    if chance is not None and chance.max_scores:
        ax.hist(
            chance.max_scores,
            bins=bins,
            histtype="step",
            color="tab:red",
            linewidth=1.2,
            label=f"same concepts, unrelated note ({100 * chance.share:.1f}% pass)",
        )
    ax.axvline(
        min_score, color="black", linestyle="--", linewidth=1.0, label=f"threshold {min_score:g}"
    )
    ax.set_xlabel("max BM25 score over the note's sentence windows")
    ax.set_ylabel("notes")
    ax.set_title(
        f"Concept coverage: {100 * overall.share:.1f}% of {overall.n_notes} notes "
        f"(BM25 >= {min_score:g})"
    )
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    try:
        for path, fmt, meta in (
            (png, "png", {"Software": None}),
            (png.with_suffix(".pdf"), "pdf", {"CreationDate": None, "Creator": None}),
        ):
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=150, metadata=meta)
    finally:
        plt.close(fig)
