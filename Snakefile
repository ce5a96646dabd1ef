# Concept-Enhanced ICD Coding (CEC): raw MIMIC-III CSVs -> datasets -> ... -> the paper's
# tables. The default config is the synthetic demo; see README.md for the real data.
from snakemake.utils import min_version, validate

min_version("9.0")


# The demo config applies only when no --configfile is given: Snakemake would otherwise
# deep-merge it under the user's file (e.g. the demo's synthetic split lists into a real
# MIMIC-III run).
if not config:

    configfile: "config/config.yaml"


# A config may name a `base` config whose blocks it replaces (config/demo_mimic4.yaml).
from cec.config import with_base

_resolved = with_base(dict(config))
config.clear()
config.update(_resolved)

validate(config, schema="config/schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    split="train|dev|test",
    backbone="|".join(config["backbones"]),


include: "rules/data.smk"
include: "rules/concepts.smk"
include: "rules/concept_model.smk"
include: "rules/label_model.smk"
include: "rules/evaluate.smk"


# Small or network-bound rules run where Snakemake runs, not as cluster jobs (the concept
# API call needs the login node's network; the others take seconds).
localrules:
    all,
    code_table,
    generate_concepts,
    concept_trainset,
    label_trainset,
    tune_threshold,
    evaluate_method,
    make_table,
    plot_results,
    summary,


rule all:
    default_target: True
    input:
        all_targets(),
