"""The paper's Tables 1-4 as LaTeX (booktabs), from metric files and cited results.

Each table reads only the metric files it shows, so Snakemake rebuilds one table without
touching the others. Our numbers are means over seeds (with the standard deviation when
there are several seeds); numbers cited from papers are marked with their BibTeX key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from cec.io import atomic_write

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "resources" / "tables"
DATASET_TITLES = {"mimic3_50": "MIMIC-III-50", "rare50": "MIMIC-III-rare-50"}
METHOD_TITLES = {
    "direct_zeroshot": "Direct coding w/o FT",
    "direct_ft": "Direct coding w. FT",
    "leaf_concepts": "Leaf concepts",
}
LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$"}


def escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def dataset_title(name: str) -> str:
    return DATASET_TITLES.get(name, escape(name))


def method_title(name: str, cec_method: str) -> str:
    if name == cec_method:
        return "CEC"
    if name.startswith("cec_k"):
        return f"$C_+ = {name[5:]}, C_- = 2$"
    return METHOD_TITLES.get(name, escape(name))


def load_metrics(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cell(metrics: Mapping[str, Any] | None, key: str) -> str:
    """Mean (± sd over seeds when there are several); -- when undefined."""
    if metrics is None:
        return "--"
    value = metrics.get(key)
    if value is None:
        return "--"
    sd = metrics.get("std", {}).get(key)
    if sd is not None and metrics.get("n_seeds", 1) > 1:
        return f"{value:.3f} $\\pm$ {sd:.3f}"
    return f"{value:.3f}"


def render(
    caption: str,
    label: str,
    groups: Sequence[tuple[str, Sequence[str]]],
    rows: Sequence[Mapping[str, Any]],
    first_column: str = "Models",
) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    return env.get_template("table.tex.jinja2").render(
        caption=caption, label=label, groups=groups, rows=rows, first_column=first_column
    )


def write(path: str | Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def _published_cells(entry: Mapping[str, Any], dataset: str) -> list[str]:
    values = entry.get(dataset)
    if values is None:
        return ["--"] * 4
    star = "$^*$" if dataset in entry.get("starred", []) else ""
    return ["--" if v is None else f"{v:.3f}{star}" for v in values]


def table1(
    ours: Mapping[tuple[str, str], Mapping[str, Any]],
    datasets: Sequence[str],
    backbones: Sequence[str],
    published: Mapping[str, Any],
    data_note: str,
) -> str:
    """Main results: cited baselines, the paper's CEC rows (reported), our CEC rows.
    `ours` maps (dataset, backbone) to the CEC method's metrics."""
    keys = ["auc_macro", "auc_micro", "f1_macro", "f1_micro"]
    groups = [(dataset_title(d), ["AUC Ma", "AUC Mi", "F1 Ma", "F1 Mi"]) for d in datasets]
    rows: list[dict[str, Any]] = []
    for entry in published["baselines"]:
        cells = [c for d in datasets for c in _published_cells(entry, d)]
        rows.append({"name": f"{escape(entry['name'])} \\cite{{{entry['cite']}}}", "cells": cells})
    for i, entry in enumerate(published["paper_cec"]):
        cells = [c for d in datasets for c in _published_cells(entry, d)]
        rows.append(
            {
                "name": f"{escape(entry['name'])} \\cite{{{entry['cite']}}}",
                "cells": cells,
                "rule_before": i == 0,
            }
        )
    for i, b in enumerate(backbones):
        cells = [cell(ours.get((d, b)), k) for d in datasets for k in keys]
        rows.append(
            {"name": f"CEC - {escape(b)} (this run)", "cells": cells, "rule_before": i == 0}
        )
    caption = (
        "Results on MIMIC-III-50 and MIMIC-III-rare-50. Baselines are cited as in the paper's "
        "Table 1 ($^*$: reported by other papers); ``reported'' rows are the paper's own; "
        f"``this run'' rows are computed by this workflow on {escape(data_note)}."
    )
    return render(caption, "tab:main", groups, rows)


def ablation_table(
    metrics: Mapping[tuple[str, str, str], Mapping[str, Any]],
    methods: Sequence[str],
    datasets: Sequence[str],
    backbones: Sequence[str],
    keys: Sequence[tuple[str, str]],
    cec_method: str,
    caption: str,
    label: str,
    first_column: str = "Models",
) -> str:
    """Rows = methods; column groups = (dataset, backbone); `keys` = (metric, heading)."""
    groups = [
        (f"{dataset_title(d)} -- {escape(b)}", [h for _, h in keys])
        for d in datasets
        for b in backbones
    ]
    rows = [
        {
            "name": method_title(m, cec_method),
            "cells": [
                cell(metrics.get((d, b, m)), k)
                for d in datasets
                for b in backbones
                for k, _ in keys
            ],
        }
        for m in methods
    ]
    return render(caption, label, groups, rows, first_column)
