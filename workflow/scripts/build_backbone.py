"""Snakemake adapter: rule build_backbone -> cec.llm.convert.build_backbone."""

import logging

from snakemake.iocontainers import Snakemake

from cec.llm.backbones import Backbone
from cec.llm.convert import build_backbone
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0], threads=snakemake.threads):
    backbone = Backbone.from_config(snakemake.wildcards.backbone, snakemake.params.backbone)
    build_backbone(backbone, snakemake.output[0])
    logging.info("backbone %s written to %s", backbone.name, snakemake.output[0])
