"""Snakemake adapter: rule train_concept_model -> cec.stage1.run.train_concept_model."""

import logging

from cec.llm.backbones import Backbone
from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage1.run import train_concept_model

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.wildcards.backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    cfg = snakemake.params.settings
    settings = LoraSettings.from_config(
        cfg["lora"], cfg["steps"], cfg["seed"], backbone.lora_targets
    )
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    files = TrainingFiles(
        snakemake.input.model,
        snakemake.input.trainset,
        snakemake.input.train,
        snakemake.input.concepts,
        snakemake.output[0],
    )
    options = TrainingOptions(view, cfg["device"], snakemake.input.template)
    provenance = train_concept_model(backbone, files, settings, options)
    logging.info(
        "trained in %s s; final losses %s",
        provenance["train_seconds"],
        provenance["loss_curve"][-5:],
    )
