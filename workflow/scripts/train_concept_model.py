"""Snakemake adapter: rule train_concept_model -> cec.stage1.run.train_concept_model."""

import logging

from snakemake.iocontainers import Snakemake

from cec.llm.backbones import Backbone
from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage1.run import train_concept_model

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.wildcards.backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    params = snakemake.params.settings
    settings = LoraSettings(**params["lora"], targets=backbone.lora_targets)
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    files = TrainingFiles(
        model_dir=snakemake.input.model,
        trainset=snakemake.input.trainset,
        train_jsonl=snakemake.input.train,
        concepts_tsv=snakemake.input.concepts,
        out_dir=snakemake.output[0],
    )
    options = TrainingOptions(view=view, device=params["device"], template=snakemake.input.template)
    provenance = train_concept_model(backbone, files, settings, options)
    logging.info(
        "trained in %s s; final losses %s",
        provenance["train_seconds"],
        provenance["loss_curve"][-5:],
    )
