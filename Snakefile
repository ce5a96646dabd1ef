# Concept-Enhanced ICD Coding (CEC): raw MIMIC-III CSVs -> datasets -> ... -> the paper's
# tables. The default config is the synthetic demo; see README.md for the real data.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, schema="config/schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"


rule all:
    input:
        all_targets(),
    default_target: True
