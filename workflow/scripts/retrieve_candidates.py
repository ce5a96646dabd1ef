"""Snakemake adapter: rules retrieve_candidates (train, dev: the choice) and
retrieve_test_candidates (test, with that choice) -> cec.retrieval.run.retrieve_candidates."""

from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.plumbing.logs import job_log
from cec.retrieval.run import retrieve_candidates

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    splits = tuple(snakemake.params.splits)
    retrieve_candidates(
        Path(snakemake.input.train).parent,
        snakemake.input.codes,
        Path(snakemake.output[splits[0]]).parent,
        **snakemake.params.settings,
        splits=splits,
        choice=snakemake.input.get("choice"),  # the test job's: the train/dev job's choice
        summary_path=snakemake.output.summary,
    )
