"""Snakemake adapter: rule make_table -> cec.evaluation.tables (Tables 1-4)."""

from pathlib import Path
from types import SimpleNamespace

import yaml

from cec.evaluation import tables
from cec.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    p = SimpleNamespace(**snakemake.params.table)  # only what this table reads
    metrics = {}
    for path in snakemake.input.metrics:
        d, b, m = Path(path).parts[-3], Path(path).parts[-2], Path(path).stem
        metrics[(d, b, m)] = tables.load_metrics(path)
    published = yaml.safe_load(Path(snakemake.input.published).read_text())
    name, cec = snakemake.wildcards.table, getattr(p, "cec_method", None)
    rule = getattr(p, "decision_rule_first", "dev_threshold")
    f1 = tables.f1_keys(rule)
    both = "F1 at a dev-tuned threshold (dev thr.) and at the model's own answer (p > 0.5)"
    auc = [("auc_macro", "AUC Ma"), ("auc_micro", "AUC Mi")]
    note = p.data_note
    if name == "table1_main":
        ours = {(d, b): metrics.get((d, b, cec)) for d in p.datasets for b in p.backbones}
        text = tables.table1(ours, p.datasets, p.backbones, published, note, rule)
    elif name == "table2_ablation":
        text = tables.ablation_table(
            metrics,
            p.ablation,
            p.datasets,
            p.backbones,
            f1,
            cec,
            f"Ablation ({both}) on {tables.escape(note)}.",
            "tab:ablation",
            m=p.m,
        )
    elif name == "table3_concepts":
        text = tables.ablation_table(
            metrics,
            p.k_methods,
            p.datasets,
            p.backbones,
            f1,
            None,  # rows named C+ = k, C- = m, as in the paper's Table 3
            f"Number of concepts shown per code ({both}) on {tables.escape(note)}.",
            "tab:concepts",
            "Number of concepts",
            m=p.m,
        )
    else:
        text = tables.ablation_table(
            metrics,
            p.ablation,
            p.datasets,
            [p.table4_backbone],
            auc,
            cec,
            f"Ablation (AUC, {tables.escape(p.table4_backbone)}) on {tables.escape(note)}.",
            "tab:ablation-auc",
        )
    tables.write(snakemake.output[0], text)
