"""Metrics per method over seeds, figures, and the comparison with the paper."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cec.evaluation.metrics import (
    METRICS,
    evaluate_files,
    read_gold,
    read_predictions,
    tune_threshold,
)
from cec.plumbing.artifacts import read_code_table
from cec.plumbing.io import write_json


def label_codes(codes_tsv: str | Path) -> list[str]:
    return [r["code"] for r in read_code_table(codes_tsv)]


def tune_thresholds(
    dev_preds: Mapping[int, str | Path],
    dev_gold: str | Path,
    codes_tsv: str | Path,
    out_json: str | Path,
    unlisted: float | None = None,
) -> dict[str, Any]:
    """Each seed's threshold, chosen on dev alone (its own rule: the DAG shows that no
    test file is upstream of any choice). `unlisted`: see `read_predictions`."""
    codes = label_codes(codes_tsv)
    result = {
        "per_seed": {
            str(seed): tune_threshold(dev_preds[seed], dev_gold, codes, unlisted)
            for seed in sorted(dev_preds)
        }
    }
    write_json(out_json, result)
    return result


def evaluate_method(
    thresholds_json: str | Path,
    test_preds: Mapping[int, str | Path],
    test_gold: str | Path,
    codes_tsv: str | Path,
    out_json: str | Path,
    *,
    resamples: int = 1000,
    bootstrap_seed: int = 13,
    unlisted: float | None = None,
) -> dict[str, Any]:
    """Each seed at its own dev-tuned threshold (`tune_thresholds`), then mean and sd over
    seeds.

    Top-level metric keys hold the mean over seeds; `std` the sample standard deviation
    (0 with one seed); `per_seed` every seed's full result with its bootstrap intervals.
    """
    codes = label_codes(codes_tsv)
    tuned = json.loads(Path(thresholds_json).read_text(encoding="utf-8"))["per_seed"]
    per_seed = {
        str(seed): evaluate_files(
            test_preds[seed],
            test_gold,
            codes,
            tuned=tuned[str(seed)],
            resamples=resamples,
            seed=bootstrap_seed,
            unlisted=unlisted,
        )
        for seed in sorted(test_preds)
    }
    runs = list(per_seed.values())

    def stats(get: Any) -> tuple[dict[str, float | None], dict[str, float | None]]:
        mean: dict[str, float | None] = {}
        sd: dict[str, float | None] = {}
        for m in METRICS:
            vals = [get(r)[m] for r in runs if get(r)[m] is not None]
            mean[m] = float(np.mean(vals)) if vals else None
            sd[m] = float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None)
        return mean, sd

    mean, sd = stats(lambda r: r)
    mean_half, sd_half = stats(lambda r: r["at_0_5"])
    thresholds = [r["threshold"] for r in runs]
    result = {
        **mean,
        "threshold": thresholds[0] if len(thresholds) == 1 else thresholds,
        "threshold_source": runs[0]["threshold_source"],
        "n_docs": runs[0]["n_docs"],
        "n_codes": runs[0]["n_codes"],
        "n_codes_present": runs[0]["n_codes_present"],
        "n_seeds": len(runs),
        "seeds": [int(s) for s in per_seed],
        "std": sd,
        "at_0_5": {**mean_half, "std": sd_half},
        "per_seed": per_seed,
    }
    write_json(out_json, result)
    return result


def _curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Micro precision and recall at every distinct score (predict p >= s)."""
    scores, gold = p.ravel(), y.ravel().astype(float)
    order = np.argsort(-scores, kind="mergesort")
    scores, gold = scores[order], gold[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # end of each tie run
    tp = np.cumsum(gold)[last]
    predicted = last + 1
    return tp / predicted, tp / max(1.0, gold.sum())


def plot_pr_curves(
    preds: Mapping[str, str | Path],
    gold: str | Path,
    codes_tsv: str | Path,
    out_png: str | Path,
    title: str,
    unlisted: float | None = None,
) -> None:
    """Micro precision-recall curve of each method on one split (PNG and PDF)."""
    codes = label_codes(codes_tsv)
    ids, y = read_gold(gold, codes)
    fig, ax = _axes(5.5, 4.2)
    for method, path in preds.items():
        precision, recall = _curve(y, read_predictions(path, ids, codes, unlisted))
        ax.step(recall, precision, where="post", label=method, lw=1.4)
    ax.axhline(y.mean(), color="grey", ls="--", lw=1, label="prevalence")
    ax.set_xlabel("micro recall")
    ax.set_ylabel("micro precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out_png)


def plot_per_code_f1(
    pred: str | Path,
    gold: str | Path,
    train: str | Path,
    codes_tsv: str | Path,
    threshold: float,
    out_png: str | Path,
    title: str,
    unlisted: float | None = None,
) -> None:
    """Per-code F1 on one split against the code's number of training admissions."""
    codes = label_codes(codes_tsv)
    ids, y = read_gold(gold, codes)
    yhat = read_predictions(pred, ids, codes, unlisted) > threshold
    _, y_train = read_gold(train, codes)
    freq = y_train.sum(axis=0)
    tp = (y & yhat).sum(axis=0)
    denom = yhat.sum(axis=0) + y.sum(axis=0)
    f1 = np.divide(2 * tp, denom, out=np.zeros(len(codes)), where=denom > 0)
    present = y.sum(axis=0) > 0
    fig, ax = _axes(5.5, 4.2)
    ax.scatter(freq[present], f1[present], s=18, label="codes present in the split")
    ax.scatter(freq[~present], f1[~present], s=10, c="lightgrey", label="absent (F1 0)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("training admissions with the code")
    ax.set_ylabel(f"F1 at threshold {threshold:.3g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out_png)


def plot_loss_curves(adapters: Sequence[str | Path], out_png: str | Path, title: str) -> None:
    """Training loss of every adapter (from provenance.json) in one figure."""
    fig, ax = _axes(6, 4)
    for folder in adapters:
        prov = json.loads((Path(folder) / "provenance.json").read_text(encoding="utf-8"))
        losses = prov["loss_curve"]
        ax.plot(
            range(1, len(losses) + 1),
            losses,
            lw=1.2,
            label="/".join(Path(folder).parts[-2:]),
        )
    ax.axhline(np.log(2), color="grey", ls="--", lw=1, label="chance (ln 2)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("2-way cross-entropy")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out_png)


def _axes(width: float, height: float) -> tuple[Any, Any]:
    """A figure for a batch job: the Agg backend, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _save(fig: Any, out_png: str | Path) -> None:
    import matplotlib.pyplot as plt

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    fig.savefig(out.with_suffix(".pdf"))
    plt.close(fig)
