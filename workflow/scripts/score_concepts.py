"""Snakemake adapter: rule score_concepts -> cec.stage1.run.score_notes."""

import logging

from snakemake.iocontainers import Snakemake

from cec.llm.backbones import Backbone
from cec.plumbing.artifacts import read_candidates, read_code_concepts
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage1.run import ScoringFiles, score_notes

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0], threads=snakemake.threads):
    backbone = Backbone.from_config(snakemake.wildcards.backbone, snakemake.params.backbone)
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    files = ScoringFiles(
        model_dir=snakemake.input.model,
        adapter_dir=snakemake.input.adapter,
        split_jsonl=snakemake.input.split,
        concepts_tsv=snakemake.input.concepts,
        code_concepts=read_code_concepts(snakemake.input.code_concepts),
        out_tsv=snakemake.output.scores,
        summary_json=snakemake.output.summary,
        candidates=read_candidates(found, snakemake.params.rerank)
        if (found := snakemake.input.get("candidates"))
        else None,
    )
    summary = score_notes(backbone, files, view=view, **snakemake.params.settings)
    logging.info("stage-1 scores: %s", summary)
