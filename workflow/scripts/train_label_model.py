"""Snakemake adapter: rule train_label_model -> cec.stage2.run.train_label_model."""

import logging

from cec.llm.backbones import Backbone
from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage2.run import train_label_model

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.params.label_backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    cfg = snakemake.params.settings
    lora = cfg["lora"]
    seed = snakemake.wildcards.seed
    settings = LoraSettings.from_config(lora, cfg["steps"], seed, lora["targets"])
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    files = TrainingFiles(
        snakemake.input.model,
        snakemake.input.trainset,
        snakemake.input.train,
        snakemake.input.concepts,
        snakemake.output[0],
        code_table=snakemake.input.codes,
    )
    options = TrainingOptions(view, cfg["device"], snakemake.input.template)
    provenance = train_label_model(backbone, files, settings, snakemake.wildcards.variant, options)
    logging.info(
        "trained in %s s; final losses %s",
        provenance["train_seconds"],
        provenance["loss_curve"][-5:],
    )
