"""Snakemake adapter: rule concept_trainset -> cec.stage1.trainset (Appendix C)."""

import logging
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.plumbing.artifacts import read_candidates, read_code_concepts
from cec.plumbing.io import read_dataset
from cec.plumbing.logs import job_log
from cec.stage1.trainset import TrainsetSettings, build_concept_trainset, write_trainset

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    settings = TrainsetSettings(**snakemake.params.settings)
    code_concepts = read_code_concepts(snakemake.input.code_concepts)
    candidates = snakemake.input.get("candidates")
    rows = build_concept_trainset(
        read_dataset(snakemake.input.train),
        code_concepts,
        settings,
        None if candidates is None else read_candidates(candidates, snakemake.params.rerank),
    )
    summary = write_trainset(
        rows, Path(snakemake.output.rows), Path(snakemake.output.summary), settings
    )
    logging.info("stage-1 training set: %s", summary)
