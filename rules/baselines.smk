# The bag-of-words baseline of the full code sets (TF-IDF, one logistic regression per
# code; cec.baseline.bow), evaluated by the same threshold and metric rules as the LLM
# methods under backbone "bow", method "bow_lr".


# One job per predicted split (the fit is deterministic and repeated), so that the dev
# threshold has no test file upstream (tests/test_no_test_upstream.py).
rule bow_baseline:
    input:
        train="results/data/{dataset}/train.jsonl",
        split="results/data/{dataset}/{split}.jsonl",
        codes="results/data/{dataset}/codes.tsv",
    output:
        f"results/predictions/{{dataset}}/{BOW_BACKBONE}/{BOW_METHOD}/seed{{seed}}/{{split}}.tsv",
    log:
        "results/logs/bow_baseline/{dataset}/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/bow_baseline/{dataset}/seed{seed}/{split}.tsv"
    wildcard_constraints:
        seed=r"\d+",
        split="dev|test",
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=120),
    params:
        settings=job_params.bow_baseline(config),
    script:
        "../workflow/scripts/bow_baseline.py"
