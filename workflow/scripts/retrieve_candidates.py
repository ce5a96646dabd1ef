"""Snakemake adapter: rule retrieve_candidates -> cec.retrieval.run.retrieve_candidates."""

from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.plumbing.logs import job_log
from cec.retrieval.run import retrieve_candidates

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    retrieve_candidates(
        Path(snakemake.input.data[0]).parent,
        snakemake.input.codes,
        Path(snakemake.output.recall).parent,
        **snakemake.params.settings,
    )
