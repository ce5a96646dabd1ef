"""The paper's Tables 1-4 as LaTeX (booktabs), from metric files and cited results.

Each table reads only the metric files it shows, so Snakemake rebuilds one table without
touching the others. Our numbers are means over seeds (with the standard deviation when
there are several seeds); numbers cited from papers are marked with their BibTeX key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cec.plumbing.io import atomic_write

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "resources" / "tables"
# A dataset is a column group of each table, titled here or by its config name; MIMIC-IV
# datasets get columns of their own next to MIMIC-III's (the paper reports none for them,
# so their published cells are "--").
DATASET_TITLES = {
    "mimic3_50": "MIMIC-III-50",
    "rare50": "MIMIC-III-rare-50",
    "mimic4_icd9_50": "MIMIC-IV-ICD9-50",
    "mimic4_icd10_50": "MIMIC-IV-ICD10-50",
}
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


# The paper's two decision rules for F1 (docs/evaluation.md): Section 4 evaluates
# with KEPT's scripts, which tune one threshold on dev; Section 3.4 takes the model's own
# Yes/No answer (p > 0.5). Metric files hold the first at the top level, the second under
# "at_0_5"; AUC and P@k need no threshold.
DECISION_RULES = {
    "dev_threshold": ("", "dev thr."),
    "model_answer": ("at_0_5/", "p > 0.5"),
}


def f1_keys(first: str = "dev_threshold") -> list[tuple[str, str]]:
    """(metric key, heading) of F1 macro and micro under both rules, `first` leading."""
    if first not in DECISION_RULES:
        raise ValueError(f"decision rule must be one of {sorted(DECISION_RULES)}, got {first!r}")
    order = [first] + [r for r in DECISION_RULES if r != first]
    return [
        (f"{DECISION_RULES[r][0]}{key}", f"{name} ({DECISION_RULES[r][1]})")
        for r in order
        for key, name in (("f1_macro", "F1 Ma"), ("f1_micro", "F1 Mi"))
    ]


def method_title(name: str, cec_method: str | None, m: int = 2) -> str:
    """A method's row name; `cec_method` None names every cec_kN by its k, as Table 3."""
    if name == cec_method:
        return "CEC"
    if name.startswith("cec_k"):
        return f"$C_+ = {name[5:]}, C_- = {m}$"
    return METHOD_TITLES.get(name, escape(name))


def load_metrics(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cell(metrics: Mapping[str, Any] | None, key: str) -> str:
    """Mean (± sd over seeds when there are several); -- when undefined. A key may name a
    block first ("at_0_5/f1_micro": the model's own answers)."""
    if metrics is None:
        return "--"
    block, _, key = key.rpartition("/")
    if block:
        metrics = metrics.get(block)
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
    first_rule: str = "dev_threshold",
) -> str:
    """Main results: cited baselines, the paper's CEC rows (reported), our CEC rows (one
    per decision rule, `first_rule` first). `ours` maps (dataset, backbone) to the CEC
    method's metrics."""
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
    order = [first_rule] + [r for r in DECISION_RULES if r != first_rule]
    for i, b in enumerate(backbones):
        for j, rule in enumerate(order):
            prefix, heading = DECISION_RULES[rule]
            cells = [
                cell(ours.get((d, b)), k if k.startswith("auc") else prefix + k)
                for d in datasets
                for k in keys
            ]
            rows.append(
                {
                    "name": f"CEC - {escape(b)} (this run, F1 at {heading})",
                    "cells": cells,
                    "rule_before": i == 0 and j == 0,
                }
            )
    caption = (
        "Results on MIMIC-III-50 and MIMIC-III-rare-50. Baselines are cited as in the paper's "
        "Table 1 ($^*$: reported by other papers); ``reported'' rows are the paper's own; "
        f"``this run'' rows are computed by this workflow on {escape(data_note)}, with F1 "
        "under both of the paper's decision rules: one threshold tuned on dev (dev thr., "
        "KEPT's scripts, Section 4) and the model's own answer (p > 0.5, Section 3.4); "
        "AUC needs no threshold."
    )
    return render(caption, "tab:main", groups, rows)


@dataclass(frozen=True)
class Heading:
    """A table's caption, LaTeX label and the title of its first column."""

    caption: str
    label: str
    first_column: str = "Models"


def ablation_table(
    metrics: Mapping[tuple[str, str, str], Mapping[str, Any]],
    methods: Sequence[str],
    datasets: Sequence[str],
    backbones: Sequence[str],
    keys: Sequence[tuple[str, str]],
    cec_method: str | None,
    heading: Heading,
    m: int = 2,
) -> str:
    """Rows = methods; column groups = (dataset, backbone); `keys` = (metric, heading).
    `cec_method` None names every cec_kN row by its k (the paper's Table 3)."""
    groups = [
        (f"{dataset_title(d)} -- {escape(b)}", [h for _, h in keys])
        for d in datasets
        for b in backbones
    ]
    rows = [
        {
            "name": method_title(method, cec_method, m),
            "cells": [
                cell(metrics.get((d, b, method)), k)
                for d in datasets
                for b in backbones
                for k, _ in keys
            ],
        }
        for method in methods
    ]
    return render(heading.caption, heading.label, groups, rows, heading.first_column)


def metrics_by_cell(paths: Iterable[str | Path]) -> dict[tuple[str, str, str], Any]:
    """(dataset, backbone, method) -> metrics, from `results/metrics/{d}/{b}/{m}.json`."""
    return {(Path(p).parts[-3], Path(p).parts[-2], Path(p).stem): load_metrics(p) for p in paths}


def build_table(
    name: str,
    params: Mapping[str, Any],
    metrics: Mapping[tuple[str, str, str], Any],
    published: Mapping[str, Any],
) -> str:
    """The LaTeX of Table 1-4 `name`, from the settings that table reads (see
    `cec.job_params.table`) and the metrics of its cells."""
    cec = params.get("cec_method")
    rule = params.get("decision_rule_first", "dev_threshold")
    note = params.get("data_note", "")
    both = "F1 at a dev-tuned threshold (dev thr.) and at the model's own answer (p > 0.5)"
    datasets, backbones = params.get("datasets"), params.get("backbones")
    if name == "table1_main":
        ours = {(d, b): metrics.get((d, b, cec)) for d in datasets for b in backbones}
        return table1(ours, datasets, backbones, published, note, rule)
    if name == "table2_ablation":
        caption = f"Ablation ({both}) on {escape(note)}."
        return ablation_table(
            metrics, params["ablation"], datasets, backbones, f1_keys(rule), cec,
            Heading(caption, "tab:ablation"), m=params["m"],
        )  # fmt: skip
    if name == "table3_concepts":
        caption = f"Number of concepts shown per code ({both}) on {escape(note)}."
        return ablation_table(
            metrics, params["k_methods"], datasets, backbones, f1_keys(rule),
            None,  # rows named C+ = k, C- = m, as in the paper's Table 3
            Heading(caption, "tab:concepts", "Number of concepts"), m=params["m"],
        )  # fmt: skip
    if name == "table4_auc":
        backbone = params["table4_backbone"]
        caption = f"Ablation (AUC, {escape(backbone)}) on {escape(note)}."
        auc = [("auc_macro", "AUC Ma"), ("auc_micro", "AUC Mi")]
        return ablation_table(
            metrics, params["ablation"], datasets, [backbone], auc, cec,
            Heading(caption, "tab:ablation-auc"),
        )  # fmt: skip
    raise ValueError(f"unknown table {name!r} (table1_main .. table4_auc)")
