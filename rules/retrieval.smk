rule retrieve_candidates:
    input:
        data=expand("results/data/{{dataset}}/{split}.jsonl", split=SPLITS),
        codes="results/data/{dataset}/codes.tsv",
    output:
        recall="results/candidates/{dataset}/recall.json",
        candidates=expand("results/candidates/{{dataset}}/{split}.tsv", split=SPLITS),
    log:
        "results/logs/retrieve_candidates/{dataset}.log",
    benchmark:
        "results/benchmarks/retrieve_candidates/{dataset}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=60),
    params:
        settings=lambda wildcards: job_params.retrieve_candidates(config),
    script:
        "../workflow/scripts/retrieve_candidates.py"
