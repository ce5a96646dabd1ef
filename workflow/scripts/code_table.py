"""Snakemake adapter: rule code_table -> write_code_table of the dataset's source (no note
is read)."""

from cec.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    if settings.get("source", "mimic3") == "mimic4":
        from cec.prepare_mimic4 import write_code_table as write_mimic4_code_table

        write_mimic4_code_table(
            snakemake.params.mimic_dir,
            snakemake.input.codes,
            snakemake.output[0],
            int(settings.get("icd_version", 9)),
        )
    else:
        from cec.prepare import write_code_table

        write_code_table(
            snakemake.params.mimic_dir,
            snakemake.input.codes,
            snakemake.output[0],
            settings.get("code_format", "exact"),
        )
