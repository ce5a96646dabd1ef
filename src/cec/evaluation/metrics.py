"""Metrics of the KEPT / caml-mimic evaluation scripts, which the paper says it reuses.

Definitions (y: gold 0/1, p: probabilities, yhat = p > threshold; n docs x m codes):

- `auc_macro`: mean ROC AUC over the codes with at least one positive and one negative
  in the split (caml-mimic skips codes without positives; a code without negatives has no
  ROC curve either).
- `auc_micro`: ROC AUC of the flattened matrix.
- `f1_micro`: 2 TP / (predicted positives + gold positives), over all cells;
  `precision_micro` TP / predicted positives and `recall_micro` TP / gold positives (0
  where the denominator is 0), as caml-mimic and KEPT report them.
- `f1_macro`: caml-mimic's: the harmonic mean of macro precision and macro recall, each
  the mean over **all** codes (a code never predicted has precision 0; a code without
  positives has recall 0).
- `f1_macro_per_code`: the mean of per-code F1 over the codes present in the split (at
  least one positive), as Edin et al. report it. Named apart because papers mix the two.
- `p_at_k`: mean over documents of (gold codes among the k highest probabilities) / k.

AUC uses the rank-sum formula with average ranks for ties (what sklearn's roc_auc_score
computes). Nothing here reads which split it is given: thresholds are chosen by the
caller on dev (`best_threshold`) and applied to test.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cec.plumbing.errors import InputError
from cec.plumbing.io import first_undecodable_row, json_type, not_utf8, read_jsonl

METRICS = (
    "auc_macro",
    "auc_micro",
    "f1_macro",
    "f1_macro_per_code",
    "f1_micro",
    "precision_micro",
    "recall_micro",
    "p_at_5",
    "p_at_8",
    "p_at_15",
)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_vals = values[order]
    # boundaries of runs of equal values
    change = np.concatenate([[True], sorted_vals[1:] != sorted_vals[:-1], [True]])
    idx = np.flatnonzero(change)
    for start, end in zip(idx[:-1], idx[1:], strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2  # mean of 1-based ranks start+1..end
    return ranks


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC of one score vector; None without positives or without negatives."""
    y = np.asarray(y, dtype=bool)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = _average_ranks(np.asarray(p, dtype=float))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auc_macro(y: np.ndarray, p: np.ndarray) -> float | None:
    aucs = [roc_auc(y[:, j], p[:, j]) for j in range(y.shape[1])]
    kept = [a for a in aucs if a is not None]
    return float(np.mean(kept)) if kept else None


def auc_micro(y: np.ndarray, p: np.ndarray) -> float | None:
    return roc_auc(y.ravel(), p.ravel())


def f1_micro(y: np.ndarray, yhat: np.ndarray) -> float:
    tp = float((y & yhat).sum())
    denom = float(yhat.sum() + y.sum())
    return 2 * tp / denom if denom else 0.0


def precision_recall_micro(y: np.ndarray, yhat: np.ndarray) -> tuple[float, float]:
    tp = float((y & yhat).sum())
    predicted, gold = float(yhat.sum()), float(y.sum())
    return (tp / predicted if predicted else 0.0), (tp / gold if gold else 0.0)


def f1_macro(y: np.ndarray, yhat: np.ndarray) -> tuple[float, float, float]:
    """caml-mimic: (macro precision, macro recall, their harmonic mean), over all codes."""
    tp = (y & yhat).sum(axis=0).astype(float)
    precision = float(np.mean(tp / (yhat.sum(axis=0) + 1e-10)))
    recall = float(np.mean(tp / (y.sum(axis=0) + 1e-10)))
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def f1_macro_per_code(y: np.ndarray, yhat: np.ndarray) -> float | None:
    """Mean per-code F1 over the codes with at least one positive in the split."""
    present = y.sum(axis=0) > 0
    if not present.any():
        return None
    tp = (y & yhat).sum(axis=0).astype(float)
    denom = (yhat.sum(axis=0) + y.sum(axis=0)).astype(float)
    per_code = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(per_code[present].mean())


def precision_at_k(y: np.ndarray, p: np.ndarray, k: int) -> float:
    """caml-mimic's P@k: the k highest probabilities of each document (k capped at the
    number of codes), averaged over documents."""
    k = min(k, y.shape[1])
    top = np.argsort(-p, axis=1, kind="mergesort")[:, :k]
    hits = np.take_along_axis(y, top, axis=1).sum(axis=1)
    return float(np.mean(hits / k)) if len(y) else 0.0


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The global threshold t maximising the true micro F1 of `p > t`, searched over
    every distinct score; ties go to the highest t. Returns (t, micro F1 at t).

    KEPT's search counts one predicted positive too many and treats tied scores one by
    one; here the positives at a cut are exactly the scores above it.
    """
    scores = p.ravel()
    gold = y.ravel().astype(bool)
    total_pos = int(gold.sum())
    values, inverse = np.unique(scores, return_inverse=True)  # ascending distinct scores
    pos_per_value = np.bincount(inverse, weights=gold, minlength=len(values))
    n_per_value = np.bincount(inverse, minlength=len(values))
    # cut below values[i] (predict values[i:] positive): threshold values[i-1]
    tp_above = np.cumsum(pos_per_value[::-1])[::-1]
    pred_above = np.cumsum(n_per_value[::-1])[::-1]
    f1 = 2 * tp_above / (pred_above + total_pos)
    thresholds = np.concatenate([[np.nextafter(values[0], -np.inf)], values[:-1]])
    # the empty prediction (threshold = max score) scores 0
    best = int(np.flatnonzero(f1 == f1.max())[-1])  # the highest threshold among ties
    return float(thresholds[best]), float(f1[best])


def compute(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Every metric of `METRICS` at `threshold` (prob > threshold is positive)."""
    y = y.astype(bool)
    yhat = p > threshold
    prec, rec, f1m = f1_macro(y, yhat)
    prec_micro, rec_micro = precision_recall_micro(y, yhat)
    return {
        "auc_macro": auc_macro(y, p),
        "auc_micro": auc_micro(y, p),
        "f1_macro": f1m,
        "precision_macro": prec,
        "recall_macro": rec,
        "f1_macro_per_code": f1_macro_per_code(y, yhat),
        "f1_micro": f1_micro(y, yhat),
        "precision_micro": prec_micro,
        "recall_micro": rec_micro,
        "p_at_5": precision_at_k(y, p, 5),
        "p_at_8": precision_at_k(y, p, 8),
        "p_at_15": precision_at_k(y, p, 15),
    }


def bootstrap(
    y: np.ndarray, p: np.ndarray, threshold: float, resamples: int = 1000, seed: int = 13
) -> dict[str, list[float | None]]:
    """95% percentile intervals over documents resampled with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        values = compute(y[idx], p[idx], threshold)
        for m in METRICS:
            if values[m] is not None:
                draws[m].append(float(values[m]))  # type: ignore[arg-type]
    return {
        m: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v else [None, None]
        for m, v in draws.items()
    }


_DIGITS = re.compile(r"[0-9]+")


def _gold_admission(value: object, path: str | Path, number: int) -> str:
    """A gold record's hadm_id as a canonical decimal string, the key the prediction
    file's ids are matched on. Accepted: a JSON integer or a string of digits (what
    `cec prepare` writes). Refused, not normalised: 1.0, "1.0", true, and the rest; an id
    written as a real number would otherwise match no prediction and be reported as a
    missing prediction. The gold file holds notes: the message names the JSON type,
    never the value."""
    where = {"file": path, "row": number, "field": "hadm_id"}
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, float):
        found = "a number with a fraction or an exponent"
    elif isinstance(value, str):
        found = "a string that is not all digits"
    elif isinstance(value, int) and not isinstance(value, bool):
        found = "a negative number"
    else:
        found = json_type(value)
    raise InputError(f"expected a whole-number admission id, found {found}", **where)


def _gold_labels(
    value: object, index: Mapping[str, int], path: str | Path, number: int
) -> np.ndarray:
    """A record's `labels` as a 0/1 row over the label set: a list of code strings, each
    in the set (a repeated code counts once). Messages give the item's position, not
    the item: the gold file holds notes."""
    where = {"file": path, "row": number, "field": "labels"}
    if not isinstance(value, list):
        raise InputError(f"expected a list of codes, found {json_type(value)}", **where)
    row = np.zeros(len(index), dtype=bool)
    for position, code in enumerate(value, start=1):
        if not isinstance(code, str):
            raise InputError(
                f"item {position} of {len(value)}: expected a code string, found {json_type(code)}",
                **where,
            )
        if code not in index:
            raise InputError(
                f"item {position} of {len(value)} is not in the label set ({len(index)} codes)",
                **where,
            )
        row[index[code]] = True
    return row


def read_gold(path: str | Path, codes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Admissions in file order and their 0/1 label matrix over `codes`. Every admission
    appears once (a second record of one admission is refused here, at its row, and not
    later as a prediction file fault); the ids are canonical decimal strings."""
    index = {c: j for j, c in enumerate(codes)}
    ids: list[str] = []
    first_row: dict[str, int] = {}
    rows: list[np.ndarray] = []
    for number, rec in enumerate(read_jsonl(path), start=1):
        for key in ("hadm_id", "labels"):
            if key not in rec:
                raise InputError("missing", file=path, row=number, field=key)
        hadm = _gold_admission(rec["hadm_id"], path, number)
        if hadm in first_row:
            raise InputError(
                f"admission {hadm} appears twice (first at row {first_row[hadm]})",
                file=path,
                row=number,
                field="hadm_id",
            )
        first_row[hadm] = number
        rows.append(_gold_labels(rec["labels"], index, path, number))
        ids.append(hadm)
    if not ids:
        raise InputError("no records: the gold file is empty", file=path)
    return ids, np.array(rows, dtype=bool).reshape(len(ids), len(codes))


HEADER = ["hadm_id", "code", "prob"]


def _prediction_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """(row number, fields) of a `hadm_id code prob` file after its header; every row has
    three fields, and a file that is not UTF-8 or has no rows is named as the culprit."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise InputError("empty file: expected the header hadm_id, code, prob", file=path)
            if header != HEADER:
                raise InputError("expected the header hadm_id, code, prob", file=path, row=1)
            count = 0
            for number, row in enumerate(reader, start=2):
                if len(row) != 3:
                    raise InputError(f"expected 3 fields, found {len(row)}", file=path, row=number)
                count += 1
                yield number, row
            if count == 0:
                raise InputError("no predictions after the header", file=path)
    except UnicodeDecodeError as exc:
        raise InputError(not_utf8(exc), file=path, row=first_undecodable_row(path)) from None


def _shown(text: str) -> str:
    """A prediction file's field as a message quotes it: short printable text quoted,
    anything else by its length (no control characters reach a terminal)."""
    if text.isprintable() and len(text) <= 40:
        return repr(text)
    return f"a value of {len(text)} characters"


def _checked_code(code: str, path: str | Path, number: int) -> str:
    if not code or code != code.strip() or not code.isprintable():
        raise InputError(
            "expected a code: not empty, no surrounding spaces, no control characters",
            file=path,
            row=number,
            field="code",
        )
    return code


def _checked_admission(hadm: str, path: str | Path, number: int) -> str:
    """The prediction file's hadm_id as the gold's key: digits only (no sign, no point)."""
    if not _DIGITS.fullmatch(hadm):
        raise InputError(
            f"expected a whole-number admission id, found {_shown(hadm)}",
            file=path,
            row=number,
            field="hadm_id",
        )
    return str(int(hadm))


def _checked_probability(prob: str, path: str | Path, number: int) -> float:
    try:
        value = float(prob)
    except ValueError:
        raise InputError("not a number", file=path, row=number, field="prob") from None
    if not math.isfinite(value):
        raise InputError(f"{value} is not a finite number", file=path, row=number, field="prob")
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{value} is outside [0, 1]", file=path, row=number, field="prob")
    return value


def prediction_codes(path: str | Path) -> list[str]:
    """The codes a prediction file names (the label set when none is given)."""
    return sorted({_checked_code(row[1], path, number) for number, row in _prediction_rows(path)})


def read_predictions(
    path: str | Path, ids: Sequence[str], codes: Sequence[str], unlisted: float | None = None
) -> np.ndarray:
    """The `hadm_id code prob` file as a matrix aligned to (ids, codes); every cell must
    be there exactly once, with a probability in [0, 1]. `unlisted` (full code sets, whose
    files list only each note's retrieved codes: `cec.stage2.candidates`): the probability
    of a cell the file does not list; None: every cell must be listed."""
    row_of = {h: i for i, h in enumerate(ids)}
    col_of = {c: j for j, c in enumerate(codes)}
    p = np.full((len(ids), len(codes)), np.nan)
    for number, (hadm_text, code_text, prob) in _prediction_rows(path):
        hadm = _checked_admission(hadm_text, path, number)
        code = _checked_code(code_text, path, number)
        if hadm not in row_of:
            raise InputError(
                f"admission {hadm} is not in the gold file",
                file=path,
                row=number,
                field="hadm_id",
            )
        if code not in col_of:
            raise InputError(
                f"code {_shown(code)} is not in the label set",
                file=path,
                row=number,
                field="code",
            )
        value = _checked_probability(prob, path, number)
        if not np.isnan(p[row_of[hadm], col_of[code]]):
            raise InputError(f"({hadm}, {_shown(code)}) appears twice", file=path, row=number)
        p[row_of[hadm], col_of[code]] = value
    if unlisted is not None:
        p[np.isnan(p)] = unlisted
    missing = np.argwhere(np.isnan(p))
    if len(missing):
        i, j = missing[0]
        raise InputError(
            f"{len(missing)} (admission, code) pairs have no prediction, "
            f"e.g. ({ids[i]}, {codes[j]})",
            file=path,
        )
    return p


def tune_threshold(
    dev_pred: str | Path,
    dev_gold: str | Path,
    codes: Sequence[str],
    unlisted: float | None = None,
) -> dict[str, Any]:
    """The one global threshold of KEPT's scripts, chosen on dev: it reads no test file."""
    dev_ids, dev_y = read_gold(dev_gold, codes)
    dev_p = read_predictions(dev_pred, dev_ids, codes, unlisted)
    threshold, dev_f1 = best_threshold(dev_y, dev_p)
    return {
        "threshold": threshold,
        "dev_f1_micro": dev_f1,
        "source": "dev (max micro F1 over distinct scores)",
    }


def evaluate_files(
    pred: str | Path,
    gold: str | Path,
    codes: Sequence[str],
    *,
    dev_pred: str | Path | None = None,
    dev_gold: str | Path | None = None,
    resamples: int = 1000,
    seed: int = 13,
    tuned: Mapping[str, Any] | None = None,
    unlisted: float | None = None,
) -> dict[str, Any]:
    """Metrics of `pred` at the dev-tuned threshold (0.5 without dev files), the same at
    0.5, and bootstrap intervals at the reported threshold. `tuned` (from
    `tune_threshold`) gives a threshold already chosen on dev, so that the step that
    reads test predictions chooses nothing."""
    ids, y = read_gold(gold, codes)
    p = read_predictions(pred, ids, codes, unlisted)
    if tuned is not None:
        threshold, dev_f1 = float(tuned["threshold"]), tuned["dev_f1_micro"]
        source = str(tuned["source"])
    elif dev_pred is not None and dev_gold is not None:
        tuned = tune_threshold(dev_pred, dev_gold, codes, unlisted)
        threshold, dev_f1, source = tuned["threshold"], tuned["dev_f1_micro"], tuned["source"]
    else:
        threshold, dev_f1, source = 0.5, None, "fixed 0.5 (no dev predictions given)"
    result: dict[str, Any] = dict(compute(y, p, threshold))
    result.update(
        threshold=threshold,
        threshold_source=source,
        dev_f1_micro_at_threshold=dev_f1,
        n_docs=len(ids),
        n_codes=len(codes),
        n_codes_present=int((y.sum(axis=0) > 0).sum()),
        at_0_5=compute(y, p, 0.5),
        ci95=bootstrap(y, p, threshold, resamples, seed) if resamples else None,
        bootstrap={"resamples": resamples, "seed": seed, "unit": "admission"},
    )
    return result
