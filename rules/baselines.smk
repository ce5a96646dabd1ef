# The bag-of-words baseline of the full code sets (TF-IDF, one logistic regression per
# code; cec.baseline.bow), evaluated by the same threshold and metric rules as the LLM
# methods under backbone "bow", method "bow_lr".


rule bow_baseline:
    input:
        data=expand("results/data/{{dataset}}/{split}.jsonl", split=SPLITS),
        codes="results/data/{dataset}/codes.tsv",
    output:
        dev="results/predictions/{dataset}/bow/bow_lr/seed{seed}/dev.tsv",
        test="results/predictions/{dataset}/bow/bow_lr/seed{seed}/test.tsv",
    log:
        "results/logs/bow_baseline/{dataset}/seed{seed}.log",
    benchmark:
        "results/benchmarks/bow_baseline/{dataset}/seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=120),
    params:
        settings=job_params.bow_baseline(config),
    script:
        "../workflow/scripts/bow_baseline.py"
