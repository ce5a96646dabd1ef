"""Snakemake adapter: rule build_backbone -> cec.llm.convert.build_backbone."""

import logging

from cec.llm.backbones import Backbone
from cec.llm.convert import build_backbone
from cec.plumbing.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], threads=snakemake.threads):
    backbone = Backbone.from_config(snakemake.wildcards.backbone, snakemake.params.backbone)
    build_backbone(backbone, snakemake.output[0])
    logging.info("backbone %s written to %s", backbone.name, snakemake.output[0])
