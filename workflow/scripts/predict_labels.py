"""Snakemake adapter: rules predict_labels / predict_cec -> cec.stage2.run.predict_split."""

from snakemake.iocontainers import Snakemake

from cec.llm.backbones import Backbone
from cec.plumbing.artifacts import read_candidates, read_code_concepts
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage2.methods import method
from cec.stage2.run import PredictionInputs, PredictionSettings, predict_split

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.params.label_backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    methods = [method(m) for m in snakemake.params.methods]
    outputs = dict(zip(snakemake.params.methods, snakemake.output, strict=True))
    inputs = PredictionInputs(
        model_dir=snakemake.input.model,
        adapter_dir=snakemake.input.get("adapter"),
        split_jsonl=snakemake.input.split,
        scores_tsv=snakemake.input.get("scores"),
        code_table=snakemake.input.codes,
        code_concepts=read_code_concepts(snakemake.input.code_concepts),
        concepts_tsv=snakemake.input.concepts,
        candidates=read_candidates(found, None)
        if (found := snakemake.input.get("candidates"))
        else None,
    )
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    settings = PredictionSettings(
        **snakemake.params.settings,
        seed=int(snakemake.wildcards.seed),
        view=view,
        template=snakemake.input.template,
    )
    predict_split(backbone, methods, inputs, outputs, settings)
