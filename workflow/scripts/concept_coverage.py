"""Snakemake adapter: rule concept_coverage -> cec.concepts.coverage.write_coverage (Appendix D)."""

import logging
from pathlib import Path

from cec.concepts.coverage import write_coverage
from cec.concepts.dedup import read_code_phrases
from cec.plumbing.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    phrases = read_code_phrases(snakemake.input.concepts, snakemake.input.code_concepts)
    summary = write_coverage(
        Path(snakemake.input.data[0]).parent,
        phrases,
        Path(snakemake.output.json),
        Path(snakemake.output.png),
        window=int(settings["window"]),
        stride=int(settings["stride"]),
        min_score=float(settings["min_score"]),
    )
    logging.info("coverage written to %s", snakemake.output.json)
