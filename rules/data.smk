# Data stage: (synthetic) MIMIC-III tables -> datasets (paper Section 4.1).


rule synth_mimic:
    output:
        tables=expand(f"{SYNTH_DIR}/{{table}}.csv.gz", table=SYNTH3_TABLES),
        splits=[
            f"{SYNTH_DIR}/splits/{dataset}/{split}_{suffix}.csv"
            for dataset, suffix in SYNTH_SPLIT_NAMES.items()
            for split in SPLITS
        ],
        manifest=f"{SYNTH_DIR}/synth_manifest.json",
    log:
        "results/logs/synth_mimic.log",
    benchmark:
        "results/benchmarks/synth_mimic.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=2000, runtime=30),
    params:
        settings=lambda wildcards: job_params.synth_mimic(config),
        out_dir=lambda wildcards, output: Path(output.manifest).parent,
    script:
        "../workflow/scripts/synth_mimic.py"


rule synth_mimic4:
    output:
        tables=[
            f"{SYNTH4_DIR}/{folder}/{table}.csv.gz"
            for table, folder in SYNTH4_TABLES.items()
        ],
        detail=f"{SYNTH4_DIR}/note/discharge_detail.csv.gz",
        splits=expand(
            f"{SYNTH4_DIR}/splits/mimic4_icd{{version}}_split.csv", version=[9, 10]
        ),
        manifest=f"{SYNTH4_DIR}/synth_manifest.json",
    log:
        "results/logs/synth_mimic4.log",
    benchmark:
        "results/benchmarks/synth_mimic4.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=2000, runtime=30),
    params:
        settings=lambda wildcards: job_params.synth_mimic4(config),
        out_dir=lambda wildcards, output: Path(output.manifest).parent,
    script:
        "../workflow/scripts/synth_mimic4.py"


rule count_codes:
    input:
        unpack(counting_tables),
    output:
        "results/data/{dataset}/code_list.txt",
    log:
        "results/logs/count_codes/{dataset}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=3000, runtime=30),
    params:
        mimic_dir=lambda wildcards: mimic_dir(wildcards.dataset),
        source=lambda wildcards: job_params.source(config, wildcards.dataset),
        settings=lambda wildcards: job_params.count_codes(config, wildcards.dataset),
    script:
        "../workflow/scripts/count_codes.py"


rule prepare_dataset:
    input:
        unpack(mimic_tables),
        unpack(split_files),
        codes=lambda wildcards: code_list(wildcards.dataset),
    output:
        train="results/data/{dataset}/train.jsonl",
        dev="results/data/{dataset}/dev.jsonl",
        test="results/data/{dataset}/test.jsonl",
        report="results/data/{dataset}/data_report.json",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=3000, runtime=60),
    params:
        mimic_dir=lambda wildcards: mimic_dir(wildcards.dataset),
        source=lambda wildcards: job_params.source(config, wildcards.dataset),
        settings=lambda wildcards: job_params.prepare_dataset(config, wildcards.dataset),
    script:
        "../workflow/scripts/prepare_dataset.py"
