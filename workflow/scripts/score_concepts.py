"""Snakemake adapter: rule score_concepts -> cec.stage1.run.score_notes."""

import logging

from cec.llm.backbones import Backbone
from cec.plumbing.artifacts import read_code_concepts
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage1.run import ScoringFiles, score_notes

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], threads=snakemake.threads):
    backbone = Backbone.from_config(snakemake.wildcards.backbone, snakemake.params.backbone)
    cfg = snakemake.params.settings
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    files = ScoringFiles(
        snakemake.input.model,
        snakemake.input.adapter,
        snakemake.input.split,
        snakemake.input.concepts,
        read_code_concepts(snakemake.input.code_concepts),
        snakemake.output.scores,
        snakemake.output.summary,
    )
    summary = score_notes(
        backbone, files, view=view, batch_size=int(cfg["score_batch"]), device=cfg["device"]
    )
    logging.info("stage-1 scores: %s", summary)
