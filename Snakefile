# Concept-Enhanced ICD Coding (CEC): raw MIMIC-III CSVs -> datasets -> ... -> the paper's
# tables. The default config is the synthetic demo; config/README.md lists the others.
from snakemake.utils import min_version, validate

min_version("9.27.1")


# The demo config applies only when no --configfile is given: Snakemake would otherwise
# deep-merge it under the user's file (e.g. the demo's synthetic split lists into a real
# MIMIC-III run). `--config KEY=VALUE` overrides single values of either.
from cec.plumbing.config import SCHEMA, check_config, read_config_file, with_base

if workflow.overwrite_configfiles:
    _origin = " + ".join(str(f) for f in workflow.overwrite_configfiles)
    for _file in workflow.overwrite_configfiles:
        read_config_file(_file)  # an empty file or one that is not a mapping is refused

else:
    _origin = "config/config.yaml"

    configfile: "config/config.yaml"


# A config may name a `base` config whose blocks it replaces (config/demo_mimic4.yaml).
_resolved = with_base(dict(config), _origin)
config.clear()
config.update(_resolved)

validate(config, schema=str(SCHEMA))
check_config(config, _origin)


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    split="|".join(SPLITS),
    backbone="|".join([*config["backbones"], BOW_BACKBONE]),  # and the baseline's rows


include: "rules/data.smk"
include: "rules/concepts.smk"
include: "rules/concept_model.smk"
include: "rules/label_model.smk"
include: "rules/evaluate.smk"
include: "rules/retrieval.smk"
include: "rules/baselines.smk"


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
