"""Snakemake adapter: rule label_trainset -> cec.stage2.trainset (Section 3.4, steps 1-3)."""

import logging

from cec.plumbing.artifacts import read_code_concepts
from cec.plumbing.io import read_dataset
from cec.plumbing.logs import job_log
from cec.stage2.trainset import build_label_trainset, code_titles, write_label_trainset

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    cfg = snakemake.params.settings
    settings = {
        "variant": snakemake.wildcards.variant,
        "seed": int(snakemake.wildcards.seed),
        "k": int(cfg["k"]),
        "m": int(cfg["m"]),
        "false_per_true": float(cfg["false_per_true"]),
    }
    rows = build_label_trainset(
        read_dataset(snakemake.input.train),
        list(code_titles(snakemake.input.codes)),
        read_code_concepts(snakemake.input.code_concepts),
        **settings,
    )
    summary = write_label_trainset(rows, snakemake.output.rows, snakemake.output.summary, settings)
    logging.info("stage-2 training set: %s", summary)
