# Target helpers shared by all .smk files. The logic lives in src/cec; these functions
# only translate the config into file names.
from pathlib import Path

from cec import job_params
from cec.datasets.sources import Source, in_table_order
from cec.plumbing import artifacts
from cec.stage2 import methods as stage2_methods

SPLITS = list(artifacts.SPLITS)  # the one list of split names (cec.plumbing.artifacts)
SYNTH_DIR = "results/synthetic/mimic3"
SYNTH_SPLIT_NAMES = {"mimic3_50": "50_hadm_ids", "rare50": "rare50_hadm_ids"}
SYNTH4_DIR = "results/synthetic/mimic4"
# the synthetic releases' tables: every table a dataset of each release reads
SYNTH3_TABLES = Source("mimic3").tables
SYNTH4_TABLES = Source("mimic4").tables


def dataset_source(dataset):
    """Which MIMIC a dataset reads (`cec.datasets.sources.Source`), checked to have its
    config block."""
    source = Source.of(config["datasets"][dataset])
    if source.config_block not in config:
        raise ValueError(
            f"datasets.{dataset} reads source {source.name}, but the config has no "
            f"`{source.config_block}` block"
        )
    return source


def source_block(dataset):
    return config[dataset_source(dataset).config_block]


def is_synthetic(dataset):
    return source_block(dataset)["source"] == "synthetic"


def mimic_dir(dataset):
    """Folder holding a dataset's MIMIC tables: generated for the demo, given for real data."""
    synthetic = SYNTH_DIR if dataset_source(dataset).name == "mimic3" else SYNTH4_DIR
    return synthetic if is_synthetic(dataset) else source_block(dataset)["dir"]


def _table_file(folder, name, synthetic):
    """A table as a rule input (real MIMIC may be .csv.gz or .csv)."""
    gz = folder / f"{name}.csv.gz"
    plain = folder / f"{name}.csv"
    return str(plain if not synthetic and plain.exists() else gz)


def mimic_tables(wildcards):
    """A dataset's MIMIC tables as named rule inputs."""
    root = Path(mimic_dir(wildcards.dataset))
    synthetic = is_synthetic(wildcards.dataset)
    tables = dataset_source(wildcards.dataset).tables
    return {
        name: _table_file(root / sub, name, synthetic) for name, sub in tables.items()
    }


def dictionary_tables(wildcards):
    """The two d_icd dictionaries, named alike for both sources (rule code_table)."""
    tables = mimic_tables(wildcards)
    names = dataset_source(wildcards.dataset).dictionaries
    return dict(
        zip(("d_icd_diagnoses", "d_icd_procedures"), (tables[n] for n in names))
    )


def counting_tables(wildcards):
    """The tables from which a counted code list is made."""
    tables = mimic_tables(wildcards)
    names = dataset_source(wildcards.dataset).counting_tables
    return {name: tables[name] for name in names}


def code_list(dataset):
    """A dataset's code list: the file the config names, or the one rule count_codes
    writes (`Source.write_code_list`: as caml-mimic counts MIMIC-III, as Edin et al.
    count MIMIC-IV) when the config says how to count it."""
    codes = config["datasets"][dataset]["codes"]
    if isinstance(codes, str):
        return codes
    return f"results/data/{dataset}/code_list.txt"


def split_files(wildcards):
    """The literature's split lists for a dataset, or none (seeded patient split)."""
    dataset = wildcards.dataset
    spec = config["datasets"][dataset].get("split_files")
    if spec is None:
        return {}
    if isinstance(spec, dict) and "edin" in spec:
        return {"split_edin": spec["edin"]}
    if spec == "synthetic" and dataset_source(dataset).name == "mimic4":
        if not is_synthetic(dataset):
            raise ValueError(
                f"datasets.{dataset}.split_files: 'synthetic' needs mimic4.source: synthetic"
            )
        version = dataset_source(dataset).icd_version
        return {"split_edin": f"{SYNTH4_DIR}/splits/mimic4_icd{version}_split.csv"}
    if spec == "synthetic":
        if not is_synthetic(dataset):
            raise ValueError(
                f"datasets.{dataset}.split_files: 'synthetic' needs "
                "mimic.source: synthetic"
            )
        if wildcards.dataset not in SYNTH_SPLIT_NAMES:
            raise ValueError(
                f"datasets.{wildcards.dataset}.split_files: the generator writes split "
                f"lists only for {', '.join(SYNTH_SPLIT_NAMES)}"
            )
        suffix = SYNTH_SPLIT_NAMES[wildcards.dataset]
        return {
            f"split_{s}": f"{SYNTH_DIR}/splits/{wildcards.dataset}/{s}_{suffix}.csv"
            for s in SPLITS
        }
    return {f"split_{s}": spec[s] for s in SPLITS}


PROMPT_DIR = "src/cec/resources/prompts"


def recordings_path(dataset):
    """The append-only request/response store of a dataset's concept generation."""
    return config["concepts"]["recordings"].format(dataset=dataset)


def concept_generation_inputs(wildcards):
    """Public ICD text, templates, recordings (replay) and the guard's fingerprints."""
    templates = config["concepts"]["templates"]
    inputs = {
        "codes": f"results/data/{wildcards.dataset}/codes.tsv",
        "parent_template": f"{PROMPT_DIR}/{templates['parent']}",
        "leaf_template": f"{PROMPT_DIR}/{templates['leaf']}",
        "guard": f"results/privacy/{wildcards.dataset}/note_shingles.npy",
    }
    llm = job_params.concept_source(config, wildcards.dataset) == "llm"
    if llm and config["concepts"]["mode"] == "replay":
        inputs["recordings"] = recordings_path(wildcards.dataset)
    return inputs


def dataset_files(dataset):
    folder = f"results/data/{dataset}"
    return [f"{folder}/{s}.jsonl" for s in SPLITS] + [
        f"{folder}/codes.tsv",
        f"{folder}/data_report.json",
    ]


def concept_files(dataset):
    folder = f"results/concepts/{dataset}"
    return [
        f"{folder}/concepts.tsv",
        f"{folder}/code_concepts.json",
        f"{folder}/dedup_report.tsv",
        f"{folder}/coverage.json",
        f"{folder}/coverage.png",
        f"results/sections/{dataset}/section_titles.tsv",
        f"results/sections/{dataset}/sections_report.json",
    ]


def model_dir(backbone):
    """A backbone's weights: given (source hf) or built by rule build_backbone."""
    cfg = config["backbones"][backbone]
    if cfg["source"] == "hf":
        return cfg["path"]
    return f"results/models/{backbone}"


def sections_input(wildcards):
    """The section report, needed only when the LLM stages read the sections view."""
    if config["note_view"] == "sections":
        return {
            "sections": f"results/sections/{wildcards.dataset}/sections_report.json"
        }
    return {}


def stage1_train_inputs(wildcards):
    return {
        "model": model_dir(wildcards.backbone),
        "trainset": f"results/trainsets/{wildcards.dataset}/concept_train.jsonl",
        "train": f"results/data/{wildcards.dataset}/train.jsonl",
        "concepts": f"results/concepts/{wildcards.dataset}/concepts.tsv",
        "template": f"{PROMPT_DIR}/concept_question_v1.jinja2",
        **sections_input(wildcards),
    }


def candidates_input(dataset, split):
    """A re-ranked full code set's candidates of one split (rule retrieve_candidates), as
    a named input; nothing for the other datasets."""
    if job_params.rerank(config, dataset) is None:
        return {}
    return {"candidates": f"results/candidates/{dataset}/{split}.tsv"}


def concept_trainset_inputs(wildcards):
    return {
        "train": f"results/data/{wildcards.dataset}/train.jsonl",
        "code_concepts": f"results/concepts/{wildcards.dataset}/code_concepts.json",
        **candidates_input(wildcards.dataset, "train"),
    }


def stage1_score_inputs(wildcards):
    return {
        "model": model_dir(wildcards.backbone),
        "adapter": f"results/adapters/{wildcards.dataset}/{wildcards.backbone}/concept",
        "split": f"results/data/{wildcards.dataset}/{wildcards.split}.jsonl",
        "concepts": f"results/concepts/{wildcards.dataset}/concepts.tsv",
        "code_concepts": f"results/concepts/{wildcards.dataset}/code_concepts.json",
        **sections_input(wildcards),
        **candidates_input(wildcards.dataset, wildcards.split),
    }


def stage1_files(dataset):
    return [
        f"results/scores/{dataset}/{backbone}/{split}{suffix}"
        for backbone in config["stage1"]["backbones"]
        for split in config["stage1"]["score_splits"]
        for suffix in (".tsv", "_summary.json")
    ]


def coded_datasets():
    """The datasets the LLM stages, evaluation and tables run on: all but those marked
    `prepare_only` (prepared, and retrieved for if `retrieval` lists them, not coded).
    """
    coded = {
        d: spec
        for d, spec in config["datasets"].items()
        if not spec.get("prepare_only")
    }
    return in_table_order(coded)


def all_targets():
    targets = [f for dataset in config["datasets"] for f in dataset_files(dataset)]
    for dataset in coded_datasets():
        targets += (
            concept_files(dataset) + stage1_files(dataset) + prediction_files(dataset)
        )
    for dataset in (config.get("retrieval") or {}).get("datasets", []):
        targets += candidate_files(dataset)
    return targets + evaluation_files()


# the bag-of-words baseline's rows in the metric files (rules/baselines.smk)
BOW_BACKBONE, BOW_METHOD = "bow", "bow_lr"


def reranked_datasets():
    """Coded full code sets: retrieved for, then re-ranked by the concept and label stages."""
    return [d for d in coded_datasets() if job_params.rerank(config, d) is not None]


def bow_metric_files():
    return [
        f"results/metrics/{d}/{BOW_BACKBONE}/{BOW_METHOD}.json"
        for d in reranked_datasets()
    ]


def candidate_files(dataset):
    """A full-code dataset's candidates per split and their recall (rules
    retrieve_candidates, retrieve_test_candidates)."""
    folder = f"results/candidates/{dataset}"
    recall = f"results/metrics/{dataset}/retrieval_recall.json"
    return [recall] + [f"{folder}/{s}.tsv" for s in SPLITS]


# Stage 2 (label model, predictions): methods and the files they need. The methods and
# what each is (variant, k, template) are cec.stage2.methods' alone.
FIXED_METHODS = list(stage2_methods.FIXED)


def method_variant(method):
    return stage2_methods.method(method).variant


def cec_methods():
    """The cec_kN methods of the config, made in one job (they share their prompts)."""
    return stage2_methods.cec_methods(config["stage2"]["methods"])


def label_backbone(backbone, variant):
    """The model a row's prompts of one variant run on (the paper's Llama row: Bio-Medical-
    Llama-3-8B for the label model); cec.stage2.methods.label_backbone reads the config.
    """
    return stage2_methods.label_backbone(config["stage2"], backbone, variant)


def label_template(variant):
    kind = stage2_methods.template_kind(variant)
    return f"{PROMPT_DIR}/{config['stage2']['templates'][kind]}"


def label_trainset_inputs(wildcards):
    return {
        "train": f"results/data/{wildcards.dataset}/train.jsonl",
        "codes": f"results/data/{wildcards.dataset}/codes.tsv",
        "code_concepts": f"results/concepts/{wildcards.dataset}/code_concepts.json",
        **candidates_input(wildcards.dataset, "train"),
    }


def label_train_inputs(wildcards):
    return {
        "model": model_dir(label_backbone(wildcards.backbone, wildcards.variant)),
        "trainset": f"results/trainsets/{wildcards.dataset}/label_{wildcards.variant}_seed{wildcards.seed}.jsonl",
        "train": f"results/data/{wildcards.dataset}/train.jsonl",
        "concepts": f"results/concepts/{wildcards.dataset}/concepts.tsv",
        "codes": f"results/data/{wildcards.dataset}/codes.tsv",
        "template": label_template(wildcards.variant),
        **sections_input(wildcards),
    }


def predict_inputs(wildcards, method=None):
    """Inputs of one prediction job: the label adapter unless zero-shot, and stage-1
    answers unless direct coding."""
    method = method or wildcards.method
    variant = method_variant(method)
    d, b, s = wildcards.dataset, wildcards.backbone, wildcards.seed
    inputs = {
        "model": model_dir(label_backbone(b, variant)),
        "split": f"results/data/{d}/{wildcards.split}.jsonl",
        "codes": f"results/data/{d}/codes.tsv",
        "concepts": f"results/concepts/{d}/concepts.tsv",
        "code_concepts": f"results/concepts/{d}/code_concepts.json",
        "template": label_template(variant),
        **sections_input(wildcards),
        **candidates_input(d, wildcards.split),
    }
    if method != "direct_zeroshot":
        inputs["adapter"] = f"results/adapters/{d}/{b}/label_{variant}/seed{s}"
    if variant != "direct":
        inputs["scores"] = f"results/scores/{d}/{b}/{wildcards.split}.tsv"
    return inputs


def predict_cec_inputs(wildcards):
    return predict_inputs(wildcards, method="cec_k5")


def prediction_files(dataset):
    s2 = config["stage2"]
    return [
        f"results/predictions/{dataset}/{backbone}/{method}/seed{seed}/{split}.tsv"
        for backbone in s2["backbones"]
        for method in s2["methods"]
        for seed in s2["seeds"]
        for split in s2["splits"]
    ]


# CPU threads per LLM job. The demo runs two 1-thread jobs side by side on 2 cores: the
# same arithmetic throughput as one 2-thread job, and each job's start-up (imports, model
# load) overlaps the other's work.
LLM_THREADS = config.get("llm_threads", 2)

# Scheduling priorities. The longest chain (concepts -> stage-1 training -> scoring -> CEC
# prediction) decides the wall time: its jobs go first whenever they are ready, the label
# adapters next (CEC prediction waits for its own), and the short direct/leaf predictions
# fill the cores around them. Without them, Snakemake finished one dataset before starting
# the other's stage 1, and one core sat idle for minutes of the demo.
CRITICAL_PATH = 10
LABEL_TRAINING = 5


# Evaluation (metrics, tables, figures, summary).
def evaluation_enabled():
    return {"dev", "test"} <= set(config["stage2"]["splits"])


def _split_predictions(wildcards, split):
    s2 = config["stage2"]
    base = f"results/predictions/{wildcards.dataset}/{wildcards.backbone}/{wildcards.method}"
    return {
        split: [f"{base}/seed{s}/{split}.tsv" for s in s2["seeds"]],
        f"{split}_gold": f"results/data/{wildcards.dataset}/{split}.jsonl",
        "codes": f"results/data/{wildcards.dataset}/codes.tsv",
    }


def dev_predictions(wildcards):
    """What a threshold is chosen from: dev only."""
    return _split_predictions(wildcards, "dev")


def test_predictions(wildcards):
    return _split_predictions(wildcards, "test")


def metric_files(methods, backbones=None):
    backbones = backbones or config["stage2"]["backbones"]
    return [
        f"results/metrics/{d}/{b}/{m}.json"
        for d in coded_datasets()
        for b in backbones
        for m in methods
        if m in config["stage2"]["methods"]
    ]


def ablation_methods():
    cec = config["evaluation"]["cec_method"]
    return [m for m in FIXED_METHODS if m in config["stage2"]["methods"]] + [cec]


def k_methods():
    return stage2_methods.by_k_descending(cec_methods())


def table4_backbone():
    return (
        config["evaluation"].get("table4_backbone") or config["stage2"]["backbones"][0]
    )


TABLES = {
    "table1_main": lambda: metric_files([config["evaluation"]["cec_method"]]),
    "table2_ablation": lambda: metric_files(ablation_methods()),
    "table3_concepts": lambda: metric_files(k_methods()),
    "table4_auc": lambda: metric_files(ablation_methods(), [table4_backbone()]),
}


def evaluation_files():
    if not evaluation_enabled():
        return []
    s2 = config["stage2"]
    figures = [
        f"results/figures/{d}/{b}/{name}.png"
        for d in coded_datasets()
        for b in s2["backbones"]
        for name in ("pr_curves", "per_code_f1", "loss_curves")
    ]
    tables = [f"results/tables/{name}.tex" for name in TABLES]
    return tables + figures + bow_metric_files() + ["results/summary.md"]


# Job sizes. Where a job runs (SLURM partition, account) is the SLURM profile's
# (profiles/slurm/config.yaml: `default-resources`, `set-resources`), not the workflow's.
def llm_resources(kind):
    """Resources of one family of LLM rules (build, train, score) from `llm_resources`: memory
    doubles with every retry (an OOM-killed job comes back with more)."""
    spec = config["llm_resources"][kind]
    base = int(spec["mem_mb"])
    out = {
        "mem_mb": lambda wildcards, attempt: base * attempt,
        "runtime": int(spec["runtime"]),
    }
    if spec.get("gpu", 0) > 0:
        out["gpu"] = int(spec["gpu"])
    return out


def cpu_resources(mem_mb, runtime):
    return {"mem_mb": mem_mb, "runtime": runtime}
