# Stage 2 (paper Section 3.4, Appendix A): the label model and the predictions of every
# method of Tables 2-4.


rule label_trainset:
    input:
        unpack(label_trainset_inputs),
    output:
        rows="results/trainsets/{dataset}/label_{variant}_seed{seed}.jsonl",
        summary="results/trainsets/{dataset}/label_{variant}_seed{seed}_summary.json",
    log:
        "results/logs/label_trainset/{dataset}/{variant}_seed{seed}.log",
    wildcard_constraints:
        variant="direct|leaf|cec",
        seed=r"\d+",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    params:
        settings=job_params.label_trainset(config),
        rerank=lambda wildcards: job_params.rerank(config, wildcards.dataset),
    script:
        "../workflow/scripts/label_trainset.py"


rule train_label_model:
    input:
        unpack(label_train_inputs),
    output:
        directory("results/adapters/{dataset}/{backbone}/label_{variant}/seed{seed}"),
    log:
        "results/logs/train_label_model/{dataset}/{backbone}/{variant}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_label_model/{dataset}/{backbone}/{variant}_seed{seed}.tsv"
    wildcard_constraints:
        variant="direct|leaf|cec",
        seed=r"\d+",
    priority: LABEL_TRAINING
    conda:
        "../envs/llm.yaml"
    threads: LLM_THREADS
    resources:
        **llm_resources("train"),
    params:
        label_backbone=lambda wildcards: label_backbone(
            wildcards.backbone, wildcards.variant
        ),
        backbone=lambda wildcards: job_params.backbone_entry(
            config["backbones"], label_backbone(wildcards.backbone, wildcards.variant)
        ),
        settings=lambda wildcards: job_params.stage2_training(
            config["stage2"], wildcards.backbone, wildcards.dataset
        ),
        note_view=config["note_view"],
    script:
        "../workflow/scripts/train_label_model.py"


rule predict_labels:
    input:
        unpack(predict_inputs),
    output:
        "results/predictions/{dataset}/{backbone}/{method}/seed{seed}/{split}.tsv",
    log:
        "results/logs/predict_labels/{dataset}/{backbone}/{method}/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/predict_labels/{dataset}/{backbone}/{method}/seed{seed}/{split}.tsv"
    wildcard_constraints:
        method="|".join(FIXED_METHODS),
        seed=r"\d+",
    conda:
        "../envs/llm.yaml"
    threads: LLM_THREADS
    resources:
        **llm_resources("score"),
    params:
        methods=lambda wildcards: [wildcards.method],
        label_backbone=lambda wildcards: label_backbone(
            wildcards.backbone, method_variant(wildcards.method)
        ),
        backbone=lambda wildcards: job_params.backbone_entry(
            config["backbones"],
            label_backbone(wildcards.backbone, method_variant(wildcards.method)),
        ),
        settings=lambda wildcards: job_params.stage2_prediction(
            config, wildcards.dataset
        ),
        note_view=config["note_view"],
    script:
        "../workflow/scripts/predict_labels.py"


# cec_k3 .. cec_k6 in one job: their prompts for a code share the note and their first
# concept lines, so one pass answers all of them (see cec.stage2.score).
rule predict_cec:
    input:
        unpack(predict_cec_inputs),
    output:
        expand(
            "results/predictions/{{dataset}}/{{backbone}}/{method}/seed{{seed}}/{{split}}.tsv",
            method=cec_methods(),
        ),
    log:
        "results/logs/predict_labels/{dataset}/{backbone}/cec/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/predict_labels/{dataset}/{backbone}/cec/seed{seed}/{split}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    priority: CRITICAL_PATH
    conda:
        "../envs/llm.yaml"
    threads: LLM_THREADS
    resources:
        **llm_resources("score"),
    params:
        methods=cec_methods(),
        label_backbone=lambda wildcards: label_backbone(wildcards.backbone, "cec"),
        backbone=lambda wildcards: job_params.backbone_entry(
            config["backbones"], label_backbone(wildcards.backbone, "cec")
        ),
        settings=lambda wildcards: job_params.stage2_prediction(
            config, wildcards.dataset
        ),
        note_view=config["note_view"],
    script:
        "../workflow/scripts/predict_labels.py"
