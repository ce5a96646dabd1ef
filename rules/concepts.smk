# Concept sets (paper Section 3.2, Appendices B, D, E). Concept generation sends public ICD
# text to an LLM API: its only inputs are the code table, the templates, the recordings
# and the privacy guard's one-way note fingerprints; no note text reaches it.


rule code_table:
    input:
        unpack(dictionary_tables),
        codes=lambda wildcards: code_list(wildcards.dataset),
    output:
        "results/data/{dataset}/codes.tsv",
    log:
        "results/logs/code_table/{dataset}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=500, runtime=5),
    params:
        mimic_dir=lambda wildcards: mimic_dir(wildcards.dataset),
        source=lambda wildcards: job_params.source(config, wildcards.dataset),
        settings=lambda wildcards: job_params.code_table(config, wildcards.dataset),
    script:
        "../workflow/scripts/code_table.py"


rule note_fingerprints:
    input:
        expand("results/data/{{dataset}}/{split}.jsonl", split=SPLITS),
    output:
        "results/privacy/{dataset}/note_shingles.npy",
    log:
        "results/logs/note_fingerprints/{dataset}.log",
    conda:
        "../envs/api.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=2000, runtime=30),
    script:
        "../workflow/scripts/note_fingerprints.py"


rule generate_concepts:
    input:
        unpack(concept_generation_inputs),
    output:
        concepts="results/concepts/{dataset}/raw/concepts_raw.jsonl",
        exchanges="results/concepts/{dataset}/raw/exchanges.jsonl",
    log:
        "results/logs/generate_concepts/{dataset}.log",
    benchmark:
        "results/benchmarks/generate_concepts/{dataset}.tsv"
    priority: CRITICAL_PATH
    conda:
        "../envs/api.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=120),
    params:
        settings=lambda wildcards: job_params.generate_concepts(
            config, wildcards.dataset
        ),
        recordings=lambda wildcards: recordings_path(wildcards.dataset),
    script:
        "../workflow/scripts/generate_concepts.py"


rule dedup_concepts:
    input:
        "results/concepts/{dataset}/raw/concepts_raw.jsonl",
    output:
        concepts="results/concepts/{dataset}/concepts.tsv",
        code_concepts="results/concepts/{dataset}/code_concepts.json",
        report="results/concepts/{dataset}/dedup_report.tsv",
        summary="results/concepts/{dataset}/dedup_summary.json",
    log:
        "results/logs/dedup_concepts/{dataset}.log",
    benchmark:
        "results/benchmarks/dedup_concepts/{dataset}.tsv"
    priority: CRITICAL_PATH
    conda:
        "../envs/llm.yaml"
    threads: 1  # MiniLM over a few hundred concepts: seconds; runs beside build_backbone
    resources:
        **cpu_resources(mem_mb=2000, runtime=15),
    params:
        settings=job_params.dedup_concepts(config),
    script:
        "../workflow/scripts/dedup_concepts.py"


rule concept_coverage:
    input:
        data=expand("results/data/{{dataset}}/{split}.jsonl", split=SPLITS),
        concepts="results/concepts/{dataset}/concepts.tsv",
        code_concepts="results/concepts/{dataset}/code_concepts.json",
    output:
        json="results/concepts/{dataset}/coverage.json",
        png=report(
            "results/concepts/{dataset}/coverage.png",
            caption="../report/coverage.rst",
            category="Figures",
        ),
        pdf="results/concepts/{dataset}/coverage.pdf",
    log:
        "results/logs/concept_coverage/{dataset}.log",
    benchmark:
        "results/benchmarks/concept_coverage/{dataset}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=2000, runtime=30),
    params:
        settings=job_params.concept_coverage(config),
    script:
        "../workflow/scripts/concept_coverage.py"


rule section_titles:
    input:
        "results/data/{dataset}/train.jsonl",
    output:
        titles="results/sections/{dataset}/section_titles.tsv",
        report="results/sections/{dataset}/sections_report.json",
    log:
        "results/logs/section_titles/{dataset}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=2000, runtime=15),
    params:
        settings=job_params.section_titles(config),
    script:
        "../workflow/scripts/section_titles.py"
