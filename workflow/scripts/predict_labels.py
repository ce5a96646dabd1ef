"""Snakemake adapter: rules predict_labels / predict_cec -> cec.stage2.run.predict_split."""

from cec.llm.backbones import Backbone
from cec.plumbing.artifacts import read_code_concepts
from cec.plumbing.logs import job_log
from cec.sections import NoteView
from cec.stage2.methods import method
from cec.stage2.run import PredictionInputs, PredictionSettings, predict_split

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.params.label_backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    cfg = snakemake.params.settings
    methods = [method(m) for m in snakemake.params.methods]
    outputs = dict(zip(snakemake.params.methods, snakemake.output, strict=True))
    inputs = PredictionInputs(
        snakemake.input.model,
        snakemake.input.get("adapter"),
        snakemake.input.split,
        snakemake.input.get("scores"),
        snakemake.input.codes,
        read_code_concepts(snakemake.input.code_concepts),
        snakemake.input.concepts,
    )
    view = NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections"))
    seed = int(snakemake.wildcards.seed)
    settings = PredictionSettings.from_config(cfg, seed, view, snakemake.input.template)
    predict_split(backbone, methods, inputs, outputs, settings)
