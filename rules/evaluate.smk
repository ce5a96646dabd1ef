# Evaluation (paper Section 4, Tables 1-4): metrics with dev-tuned thresholds and
# bootstrap intervals, the LaTeX tables, figures, and the comparison with the paper.


# The threshold is chosen from dev alone, in its own rule: no test file is upstream of
# any choice (tests/test_no_test_upstream.py walks the DAG).
rule tune_threshold:
    input:
        unpack(dev_predictions),
    output:
        "results/thresholds/{dataset}/{backbone}/{method}.json",
    log:
        "results/logs/tune_threshold/{dataset}/{backbone}/{method}.log",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=10),
    params:
        seeds=config["stage2"]["seeds"],
        unlisted=lambda wildcards: job_params.unlisted(config, wildcards.dataset),
    script:
        "../workflow/scripts/tune_threshold.py"


rule evaluate_method:
    input:
        unpack(test_predictions),
        thresholds="results/thresholds/{dataset}/{backbone}/{method}.json",
    output:
        "results/metrics/{dataset}/{backbone}/{method}.json",
    log:
        "results/logs/evaluate_method/{dataset}/{backbone}/{method}.log",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=20),
    params:
        seeds=config["stage2"]["seeds"],
        settings=job_params.evaluation_run(config["evaluation"]),
        unlisted=lambda wildcards: job_params.unlisted(config, wildcards.dataset),
    script:
        "../workflow/scripts/evaluate_method.py"


rule make_table:
    input:
        metrics=lambda wildcards: TABLES[wildcards.table](),
        published=config["evaluation"]["published"],
        template="src/cec/resources/tables/table.tex.jinja2",
    output:
        report(
            "results/tables/{table}.tex",
            caption="../report/tables.rst",
            category="Tables",
        ),
    log:
        "results/logs/make_table/{table}.log",
    wildcard_constraints:
        table="|".join(TABLES),
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=500, runtime=5),
    params:
        table=lambda wildcards: job_params.table(
            wildcards.table,
            {
                "datasets": coded_datasets(),
                "backbones": config["stage2"]["backbones"],
                "table4_backbone": table4_backbone(),
                "ablation": ablation_methods(),
                "k_methods": k_methods(),
                "m": config["stage2"]["trainset"]["m"],
                "cec_method": config["evaluation"]["cec_method"],
                "decision_rule_first": config["evaluation"].get(
                    "decision_rule_first", "dev_threshold"
                ),
                "data_note": config["evaluation"]["data_note"],
                "derived_concepts": [
                    d
                    for d in coded_datasets()
                    if job_params.concept_source(config, d) == "derived"
                ],
            },
        ),
    script:
        "../workflow/scripts/make_table.py"


rule plot_results:
    input:
        test=lambda wildcards: [
            f"results/predictions/{wildcards.dataset}/{wildcards.backbone}/{m}/seed{config['stage2']['seeds'][0]}/test.tsv"
            for m in config["stage2"]["methods"]
        ],
        gold="results/data/{dataset}/test.jsonl",
        train="results/data/{dataset}/train.jsonl",
        codes="results/data/{dataset}/codes.tsv",
        cec_metrics="results/metrics/{dataset}/{backbone}/"
        + config["evaluation"]["cec_method"]
        + ".json",
        adapters=lambda wildcards: [
            f"results/adapters/{wildcards.dataset}/{wildcards.backbone}/concept"
        ]
        + [
            f"results/adapters/{wildcards.dataset}/{wildcards.backbone}/label_{v}/seed{config['stage2']['seeds'][0]}"
            for v in ("direct", "leaf", "cec")
        ],
    output:
        pr=report(
            "results/figures/{dataset}/{backbone}/pr_curves.png",
            caption="../report/pr_curves.rst",
            category="Figures",
        ),
        per_code=report(
            "results/figures/{dataset}/{backbone}/per_code_f1.png",
            caption="../report/per_code_f1.rst",
            category="Figures",
        ),
        loss=report(
            "results/figures/{dataset}/{backbone}/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Figures",
        ),
    log:
        "results/logs/plot_results/{dataset}/{backbone}.log",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=1000, runtime=5),
    params:
        methods=config["stage2"]["methods"],
        cec_method=config["evaluation"]["cec_method"],
        unlisted=lambda wildcards: job_params.unlisted(config, wildcards.dataset),
    script:
        "../workflow/scripts/plot_results.py"


rule summary:
    input:
        metrics=metric_files(config["stage2"]["methods"]),
        published=config["evaluation"]["published"],
        reading=[
            f"results/scores/{d}/{b}/{split}_summary.json"
            for d in coded_datasets()
            for b in config["stage2"]["backbones"]
            for split in config["stage1"]["score_splits"]
        ],
        recall=[
            f"results/metrics/{d}/retrieval_recall.json" for d in reranked_datasets()
        ],
        baseline=bow_metric_files(),
    output:
        report(
            "results/summary.md", caption="../report/summary.rst", category="Summary"
        ),
    log:
        "results/logs/summary.log",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=500, runtime=5),
    params:
        datasets=coded_datasets(),
        backbones=config["stage2"]["backbones"],
        methods=config["stage2"]["methods"],
        baseline=[BOW_BACKBONE, BOW_METHOD],
        settings=job_params.summary(config["evaluation"]),
    script:
        "../workflow/scripts/write_summary.py"
