"""Snakemake adapter: rule label_trainset -> cec.stage2.trainset (Section 3.4, steps 1-3)."""

import logging

from snakemake.iocontainers import Snakemake

from cec.plumbing.artifacts import read_candidates, read_code_concepts
from cec.plumbing.io import read_dataset
from cec.plumbing.logs import job_log
from cec.stage2.trainset import build_label_trainset, code_titles, write_label_trainset

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    settings = {  # in this order in the summary
        "variant": snakemake.wildcards.variant,
        "seed": int(snakemake.wildcards.seed),
        **snakemake.params.settings,
    }
    rows = build_label_trainset(
        read_dataset(snakemake.input.train),
        list(code_titles(snakemake.input.codes)),
        read_code_concepts(snakemake.input.code_concepts),
        **settings,
        candidates=read_candidates(found, snakemake.params.rerank)
        if (found := snakemake.input.get("candidates"))
        else None,
    )
    summary = write_label_trainset(rows, snakemake.output.rows, snakemake.output.summary, settings)
    logging.info("stage-2 training set: %s", summary)
