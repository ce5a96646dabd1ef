# Stage 1 (paper Section 3.3, Appendices A and C): the concept-relevance model.


rule build_backbone:
    output:
        directory("results/models/{backbone}"),
    log:
        "results/logs/build_backbone/{backbone}.log",
    benchmark:
        "results/benchmarks/build_backbone/{backbone}.tsv"
    conda:
        "../envs/llm.yaml"
    threads: LLM_THREADS
    resources:
        **llm_resources("build"),
    params:
        backbone=lambda wildcards: job_params.backbone_entry(
            config["backbones"], wildcards.backbone
        ),
    script:
        "../workflow/scripts/build_backbone.py"


rule concept_trainset:
    input:
        unpack(concept_trainset_inputs),
    output:
        rows="results/trainsets/{dataset}/concept_train.jsonl",
        summary="results/trainsets/{dataset}/concept_train_summary.json",
    log:
        "results/logs/concept_trainset/{dataset}.log",
    priority: CRITICAL_PATH
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    params:
        settings=job_params.concept_trainset(config),
        rerank=lambda wildcards: job_params.rerank(config, wildcards.dataset),
    script:
        "../workflow/scripts/concept_trainset.py"


rule train_concept_model:
    input:
        unpack(stage1_train_inputs),
    output:
        directory("results/adapters/{dataset}/{backbone}/concept"),
    log:
        "results/logs/train_concept_model/{dataset}/{backbone}.log",
    benchmark:
        "results/benchmarks/train_concept_model/{dataset}/{backbone}.tsv"
    priority: CRITICAL_PATH
    conda:
        "../envs/llm.yaml"
    threads: LLM_THREADS
    resources:
        **llm_resources("train"),
    params:
        backbone=lambda wildcards: job_params.backbone_entry(
            config["backbones"], wildcards.backbone
        ),
        settings=lambda wildcards: job_params.stage1_training(
            config["stage1"], wildcards.backbone, wildcards.dataset
        ),
        note_view=config["note_view"],
    script:
        "../workflow/scripts/train_concept_model.py"


rule score_concepts:
    input:
        unpack(stage1_score_inputs),
    output:
        scores="results/scores/{dataset}/{backbone}/{split}.tsv",
        summary="results/scores/{dataset}/{backbone}/{split}_summary.json",
    log:
        "results/logs/score_concepts/{dataset}/{backbone}/{split}.log",
    benchmark:
        "results/benchmarks/score_concepts/{dataset}/{backbone}/{split}.tsv"
    priority: CRITICAL_PATH
    conda:
        "../envs/llm.yaml"
    threads: LLM_THREADS
    resources:
        **llm_resources("score"),
    params:
        backbone=lambda wildcards: job_params.backbone_entry(
            config["backbones"], wildcards.backbone
        ),
        settings=job_params.stage1_scoring(config["stage1"]),
        rerank=lambda wildcards: job_params.rerank(config, wildcards.dataset),
        note_view=config["note_view"],
    script:
        "../workflow/scripts/score_concepts.py"
