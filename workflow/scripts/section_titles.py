"""Snakemake adapter: rule section_titles -> cec.sections.write_section_report (App. E)."""

import logging

from snakemake.iocontainers import Snakemake

from cec.plumbing.logs import job_log
from cec.sections import SectionSettings, write_section_report

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    titles = write_section_report(
        snakemake.input[0],
        snakemake.output.titles,
        snakemake.output.report,
        SectionSettings(**snakemake.params.settings),
    )
    logging.info("%d section titles selected", sum(t.selected for t in titles))
