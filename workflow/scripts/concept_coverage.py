"""Snakemake adapter: rule concept_coverage -> cec.concepts.coverage.write_coverage (Appendix D)."""

import logging
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.concepts.coverage import write_coverage
from cec.concepts.dedup import read_code_phrases
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    phrases = read_code_phrases(snakemake.input.concepts, snakemake.input.code_concepts)
    summary = write_coverage(
        Path(snakemake.input.data[0]).parent,
        phrases,
        Path(snakemake.output.json),
        Path(snakemake.output.png),
        **snakemake.params.settings,
    )
    logging.info("coverage written to %s", snakemake.output.json)
