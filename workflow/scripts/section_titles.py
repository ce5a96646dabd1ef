"""Snakemake adapter: rule section_titles -> cec.sections.write_section_report (App. E)."""

import logging

from cec.plumbing.logs import job_log
from cec.sections import SectionSettings, write_section_report

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    titles = write_section_report(
        snakemake.input[0],
        snakemake.output.titles,
        snakemake.output.report,
        SectionSettings(
            min_df=float(settings["min_df"]),
            min_score=float(settings["min_score"]),
            max_words=int(settings["max_words"]),
            keep=tuple(settings["keep"]),
        ),
    )
    logging.info("%d section titles selected", sum(t.selected for t in titles))
