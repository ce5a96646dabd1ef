"""Snakemake adapter: rule train_label_model -> cec.stage2.run.train_label_model."""

import logging

from snakemake.iocontainers import Snakemake

from cec.llm.backbones import Backbone
from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage2.run import train_label_model

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.params.label_backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    params = snakemake.params.settings
    settings = LoraSettings(**params["lora"], seed=int(snakemake.wildcards.seed))
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    files = TrainingFiles(
        model_dir=snakemake.input.model,
        trainset=snakemake.input.trainset,
        train_jsonl=snakemake.input.train,
        concepts_tsv=snakemake.input.concepts,
        out_dir=snakemake.output[0],
        code_table=snakemake.input.codes,
    )
    options = TrainingOptions(view=view, device=params["device"], template=snakemake.input.template)
    provenance = train_label_model(backbone, files, settings, snakemake.wildcards.variant, options)
    logging.info(
        "trained in %s s; final losses %s",
        provenance["train_seconds"],
        provenance["loss_curve"][-5:],
    )
