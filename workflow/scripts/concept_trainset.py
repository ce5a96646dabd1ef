"""Snakemake adapter: rule concept_trainset -> cec.stage1.trainset (Appendix C)."""

import json
import logging
from pathlib import Path

from cec.io import read_jsonl
from cec.logs import job_log
from cec.stage1.trainset import TrainsetSettings, build_concept_trainset, write_trainset

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    cfg = snakemake.params.settings
    settings = TrainsetSettings(
        neg_per_pos=float(cfg["neg_per_pos"]),
        max_pos_per_note=cfg.get("max_pos_per_note"),
        seed=int(cfg["seed"]),
    )
    code_concepts = json.loads(Path(snakemake.input.code_concepts).read_text())
    rows = build_concept_trainset(read_jsonl(snakemake.input.train), code_concepts, settings)
    summary = write_trainset(
        rows, Path(snakemake.output.rows), Path(snakemake.output.summary), settings
    )
    logging.info("stage-1 training set: %s", summary)
