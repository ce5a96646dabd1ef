"""Snakemake adapter: rule summary -> cec.evaluation.summary."""

import json
from pathlib import Path

import yaml
from snakemake.iocontainers import Snakemake

from cec.evaluation.summary import full_code_section, write_summary
from cec.evaluation.tables import load_metrics
from cec.plumbing.io import atomic_write
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    p = snakemake.params
    metrics = {
        (Path(f).parts[-3], Path(f).parts[-2], Path(f).stem): load_metrics(f)
        for f in [*snakemake.input.metrics, *snakemake.input.baseline]
    }
    text = write_summary(
        metrics,
        p.datasets,
        p.backbones,
        p.methods,
        yaml.safe_load(Path(snakemake.input.published).read_text()),
        p.settings.get("paper_row", {}),
        p.settings["data_note"],
        p.settings["cec_method"],
        {
            (Path(f).parts[-3], Path(f).parts[-2], Path(f).stem.removesuffix("_summary")): (
                json.loads(Path(f).read_text())
            )
            for f in snakemake.input.reading
        },
    )
    text += full_code_section(
        {Path(f).parts[-2]: json.loads(Path(f).read_text()) for f in snakemake.input.recall},
        metrics,
        p.backbones,
        p.methods,
        tuple(p.baseline),
    )
    with atomic_write(snakemake.output[0]) as fh:
        fh.write(text)
