"""Snakemake adapter: rules predict_labels / predict_cec -> cec.stage2.run.predict_split."""

import json
from pathlib import Path

from cec.llm.backbones import Backbone
from cec.logs import job_log
from cec.sections import NoteView
from cec.stage2.methods import method
from cec.stage2.run import predict_split

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.params.label_backbone
    backbone = Backbone.from_config(name, snakemake.params.backbone)
    cfg = snakemake.params.settings
    methods = [method(m) for m in snakemake.params.methods]
    outputs = dict(zip(snakemake.params.methods, snakemake.output, strict=True))
    predict_split(
        backbone,
        snakemake.input.model,
        snakemake.input.get("adapter"),
        methods,
        snakemake.input.split,
        snakemake.input.get("scores"),
        snakemake.input.codes,
        json.loads(Path(snakemake.input.code_concepts).read_text()),
        snakemake.input.concepts,
        outputs,
        seed=int(snakemake.wildcards.seed),
        m=int(cfg["m"]),
        train_k=int(cfg["k"]),
        view=NoteView.from_report(snakemake.params.note_view, snakemake.input.get("sections")),
        max_tokens=int(cfg["max_tokens"]),
        row_tokens=int(cfg["row_tokens"]),
        device=cfg["device"],
        template=snakemake.input.template,
    )
