"""Snakemake adapter: rules retrieve_candidates (train, dev: the choice) and
retrieve_test_candidates (test, with that choice) -> cec.retrieval.run.retrieve_candidates."""

from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.plumbing.logs import job_log
from cec.retrieval.run import retrieve_candidates

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    testing = snakemake.rule == "retrieve_test_candidates"
    retrieve_candidates(
        Path(snakemake.input.train).parent,
        snakemake.input.codes,
        Path(snakemake.output.test if testing else snakemake.output.train).parent,
        **snakemake.params.settings,
        splits=("test",) if testing else ("train", "dev"),
        choice=snakemake.input.choice if testing else None,
        summary_path=snakemake.output.recall if testing else snakemake.output.choice,
    )
