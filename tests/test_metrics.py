"""Metrics against values computed by hand (see the comments), and against sklearn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cec.evaluation.metrics import (
    auc_macro,
    auc_micro,
    best_threshold,
    bootstrap,
    compute,
    evaluate_files,
    f1_macro,
    f1_macro_per_code,
    f1_micro,
    precision_at_k,
    precision_recall_micro,
    read_predictions,
)
from cec.plumbing.errors import InputError

# 3 admissions x 4 codes. Code 3 has no positive and is never predicted; code 0 has a tie
# between a positive and a negative (0.4).
Y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
P = np.array([[0.9, 0.2, 0.6, 0.1], [0.4, 0.7, 0.3, 0.2], [0.4, 0.1, 0.8, 0.3]])


def test_f1_at_half_by_hand() -> None:
    yhat = P > 0.5
    # TP (0,0) (0,2) (1,1); predicted 4; gold 4 -> 2*3/8
    assert f1_micro(Y, yhat) == pytest.approx(0.75)
    assert precision_recall_micro(Y, yhat) == pytest.approx((3 / 4, 3 / 4))
    # per code P/R: c0 1/0.5, c1 1/1, c2 0.5/1, c3 0/0 (never predicted, no positive)
    precision, recall, f1 = f1_macro(Y, yhat)
    assert precision == pytest.approx(0.625) and recall == pytest.approx(0.625)
    assert f1 == pytest.approx(0.625)
    # per-code F1 over the codes present (0, 1, 2): (2/3 + 1 + 2/3) / 3
    assert f1_macro_per_code(Y, yhat) == pytest.approx(7 / 9)


def test_f1_when_codes_are_never_predicted() -> None:
    yhat = P > 0.85  # only (0,0)
    assert f1_micro(Y, yhat) == pytest.approx(2 / 5)
    assert precision_recall_micro(Y, yhat) == pytest.approx((1.0, 1 / 4))  # TP 1 of 1, of 4
    assert precision_recall_micro(Y, P > 1.0) == (0.0, 0.0)  # nothing predicted
    precision, recall, f1 = f1_macro(Y, yhat)  # P = (1+0+0+0)/4, R = (0.5+0+0+0)/4
    assert (precision, recall) == pytest.approx((0.25, 0.125))
    assert f1 == pytest.approx(2 * 0.25 * 0.125 / 0.375)
    assert f1_macro_per_code(Y, P > 1.0) == 0.0  # nothing predicted at all


def test_auc_by_hand_with_ties_and_a_code_without_positives() -> None:
    # c0: pos {0.9, 0.4} vs neg {0.4}: (1 + 0.5) / 2; c1: 1; c2: pos 0.6 vs {0.3, 0.8}: 0.5
    assert auc_macro(Y, P) == pytest.approx((0.75 + 1 + 0.5) / 3)  # c3 skipped
    # flattened: positives 0.9, 0.7, 0.6, 0.4 against 8 negatives: 8 + 7 + 7 + 6.5 of 32
    assert auc_micro(Y, P) == pytest.approx(28.5 / 32)


def test_auc_matches_sklearn_on_random_data() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random((40, 6)) < 0.3
    p = np.round(rng.random((40, 6)), 1)  # many ties
    expected = np.mean([roc_auc_score(y[:, j], p[:, j]) for j in range(6) if y[:, j].any()])
    assert auc_macro(y, p) == pytest.approx(expected)
    assert auc_micro(y, p) == pytest.approx(roc_auc_score(y.ravel(), p.ravel()))


def test_precision_at_k_by_hand_and_an_admission_without_labels() -> None:
    # top 2: doc0 c0,c2 (2 hits); doc1 c1,c0 (1); doc2 c2,c0 (1) -> (1 + .5 + .5) / 3
    assert precision_at_k(Y, P, 2) == pytest.approx(2 / 3)
    # k above the number of codes takes them all: (2/4 + 1/4 + 1/4) / 3
    assert precision_at_k(Y, P, 5) == pytest.approx(1 / 3)
    y = np.vstack([Y, np.zeros(4, dtype=bool)])  # an admission with no labels counts 0
    p = np.vstack([P, np.full(4, 0.9)])
    assert precision_at_k(y, p, 2) == pytest.approx(2 / 4)
    values = compute(y, p, 0.5)
    assert values["f1_micro"] == pytest.approx(2 * 3 / (8 + 4))  # 4 more false positives


def test_threshold_maximises_true_micro_f1_over_distinct_scores() -> None:
    # cuts: >=0.9 0.4, >=0.8 1/3, >=0.7 4/7, >=0.6 0.75, >=0.4 (both tied 0.4s) 8/10, ...
    t, f1 = best_threshold(Y, P)
    assert (t, f1) == (pytest.approx(0.3), pytest.approx(0.8))
    assert f1_micro(Y, t < P) == pytest.approx(f1)  # the reported F1 is the real one
    # a tie can only be taken whole: no threshold puts one 0.4 in and the other out
    assert not np.isclose(f1, 2 * 4 / (5 + 4))


def test_threshold_ties_go_to_the_highest() -> None:
    y = np.array([[1, 0]], dtype=bool)
    p = np.array([[0.8, 0.2]])
    t, f1 = best_threshold(y, p)  # > 0.2 and any t in [0.2, 0.8) give F1 1
    assert f1 == 1.0 and t == pytest.approx(0.2)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    y = rng.random((60, 5)) < 0.4
    p = np.clip(y * 0.3 + rng.random((60, 5)) * 0.7, 0, 1)
    a = bootstrap(y, p, 0.5, resamples=200, seed=3)
    assert a == bootstrap(y, p, 0.5, resamples=200, seed=3)
    assert a != bootstrap(y, p, 0.5, resamples=200, seed=4)
    point = compute(y, p, 0.5)
    for m in ("f1_micro", "auc_macro", "p_at_5"):
        low, high = a[m]
        assert low <= point[m] <= high and low < high


def _write(tmp: Path, y: np.ndarray, p: np.ndarray, codes: list[str], name: str) -> tuple:
    gold = tmp / f"{name}.jsonl"
    gold.write_text(
        "".join(
            json.dumps(
                {"hadm_id": str(100 + i), "labels": [c for c, v in zip(codes, r, strict=True) if v]}
            )
            + "\n"
            for i, r in enumerate(y)
        )
    )
    pred = tmp / f"{name}.tsv"
    pred.write_text(
        "hadm_id\tcode\tprob\n"
        + "".join(
            f"{100 + i}\t{c}\t{p[i, j]}\n" for i in range(len(y)) for j, c in enumerate(codes)
        )
    )
    return pred, gold


def test_evaluate_files_tunes_on_dev_only(tmp_path: Path) -> None:
    codes = ["038.9", "401.9", "428.0", "584.9"]
    dev_pred, dev_gold = _write(tmp_path, Y, P, codes, "dev")
    test_y = np.array([[0, 0, 1, 0], [1, 1, 0, 0]], dtype=bool)
    test_p = np.array([[0.35, 0.1, 0.9, 0.2], [0.5, 0.31, 0.2, 0.1]])
    pred, gold = _write(tmp_path, test_y, test_p, codes, "test")
    m = evaluate_files(pred, gold, codes, dev_pred=dev_pred, dev_gold=dev_gold, resamples=50)
    assert m["threshold"] == pytest.approx(0.3)  # from dev, not from test
    # on test, > 0.3: (0,0) FP, (0,2) TP, (1,0) TP, (1,1) TP; 3 gold -> 2*3/(4+3)
    assert m["f1_micro"] == pytest.approx(6 / 7)
    assert m["at_0_5"]["f1_micro"] == pytest.approx(2 * 1 / (1 + 3))  # only (0,2); 0.5 is not > 0.5
    assert m["n_docs"] == 2 and m["n_codes"] == 4 and m["n_codes_present"] == 3
    assert set(m["ci95"]) >= {"f1_micro", "auc_macro"}


def test_prediction_file_errors_name_the_row(tmp_path: Path) -> None:
    codes = ["038.9", "401.9"]
    bad = tmp_path / "p.tsv"
    bad.write_text("hadm_id\tcode\tprob\n1\t038.9\t0.2\n1\t401.9\t1.7\n")
    with pytest.raises(InputError, match="row 3, field prob: 1.7 is outside"):
        read_predictions(bad, ["1"], codes)
    bad.write_text("hadm_id\tcode\tprob\n1\t038.9\t0.2\n")
    with pytest.raises(InputError, match="1 .admission, code. pairs have no prediction"):
        read_predictions(bad, ["1"], codes)
    bad.write_text("hadm_id\tcode\tprob\n1\t038.9\t0.2\n1\t038.9\t0.3\n")
    with pytest.raises(InputError, match="appears twice"):
        read_predictions(bad, ["1"], codes)


def test_cli_evaluate_writes_the_contract_keys(tmp_path: Path) -> None:
    from cec.cli import main

    codes = ["038.9", "401.9", "428.0", "584.9"]
    dev_pred, dev_gold = _write(tmp_path, Y, P, codes, "dev")
    out = tmp_path / "m.json"
    args = ["evaluate", "--pred", str(dev_pred), "--gold", str(dev_gold), "--out", str(out)]
    assert main([*args, "--dev-pred", str(dev_pred), "--dev-gold", str(dev_gold)]) == 0
    m = json.loads(out.read_text())
    contract = (
        "auc_macro auc_micro f1_macro f1_macro_per_code f1_micro p_at_5 p_at_8 p_at_15 "
        "threshold threshold_source n_docs n_codes"
    )
    assert set(contract.split()) <= set(m)
    assert m["f1_micro"] == pytest.approx(0.8)  # tuned and applied on the same file here
    assert main([*args, "--dev-pred", str(dev_pred)]) == 2  # half a dev pair is refused
