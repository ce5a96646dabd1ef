# Candidate retrieval for full code sets (cec.retrieval). Two jobs: the first fits both
# retrievers on train, chooses one by dev recall and writes the train and dev candidates
# (which the training sets read); the second writes the test candidates with that choice.
# So test is upstream of no choice and of no training set (tests/test_no_test_upstream.py).


rule retrieve_candidates:
    input:
        train="results/data/{dataset}/train.jsonl",
        dev="results/data/{dataset}/dev.jsonl",
        codes="results/data/{dataset}/codes.tsv",
    output:
        summary="results/candidates/{dataset}/choice.json",
        train="results/candidates/{dataset}/train.tsv",
        dev="results/candidates/{dataset}/dev.tsv",
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
        splits=["train", "dev"],
    script:
        "../workflow/scripts/retrieve_candidates.py"


rule retrieve_test_candidates:
    input:
        train="results/data/{dataset}/train.jsonl",
        test="results/data/{dataset}/test.jsonl",
        codes="results/data/{dataset}/codes.tsv",
        choice="results/candidates/{dataset}/choice.json",
    output:
        summary="results/metrics/{dataset}/retrieval_recall.json",
        test="results/candidates/{dataset}/test.tsv",
    log:
        "results/logs/retrieve_test_candidates/{dataset}.log",
    benchmark:
        "results/benchmarks/retrieve_test_candidates/{dataset}.tsv"
    conda:
        "../envs/eval.yaml"
    threads: 1
    resources:
        **cpu_resources(mem_mb=4000, runtime=60),
    params:
        settings=lambda wildcards: job_params.retrieve_candidates(config),
        splits=["test"],
    script:
        "../workflow/scripts/retrieve_candidates.py"
