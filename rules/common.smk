# Target helpers shared by all .smk files. The logic lives in src/cec; these functions
# only translate the config into file names.
from pathlib import Path

SPLITS = ["train", "dev", "test"]
MIMIC_TABLES = [
    "NOTEEVENTS",
    "DIAGNOSES_ICD",
    "PROCEDURES_ICD",
    "D_ICD_DIAGNOSES",
    "D_ICD_PROCEDURES",
]
SYNTH_DIR = "results/synthetic/mimic3"
SYNTH_SPLIT_NAMES = {"mimic3_50": "50_hadm_ids", "rare50": "rare50_hadm_ids"}


def mimic_dir():
    """Folder holding the MIMIC-III tables: generated for the demo, given for real data."""
    if config["mimic"]["source"] == "synthetic":
        return SYNTH_DIR
    return config["mimic"]["dir"]


def mimic_tables(wildcards):
    """The five tables as rule inputs (real MIMIC may be .csv.gz or .csv)."""
    folder = Path(mimic_dir())
    tables = {}
    for name in MIMIC_TABLES:
        gz = folder / f"{name}.csv.gz"
        plain = folder / f"{name}.csv"
        synthetic = config["mimic"]["source"] == "synthetic"
        tables[name] = str(plain if not synthetic and plain.exists() else gz)
    return tables


def split_files(wildcards):
    """The literature's split lists for a dataset, or none (seeded patient split)."""
    spec = config["datasets"][wildcards.dataset].get("split_files")
    if spec is None:
        return {}
    if spec == "synthetic":
        if config["mimic"]["source"] != "synthetic":
            raise ValueError(
                f"datasets.{wildcards.dataset}.split_files: 'synthetic' needs "
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
    if config["concepts"]["mode"] == "replay":
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


def stage1_score_inputs(wildcards):
    return {
        "model": model_dir(wildcards.backbone),
        "adapter": f"results/adapters/{wildcards.dataset}/{wildcards.backbone}/concept",
        "split": f"results/data/{wildcards.dataset}/{wildcards.split}.jsonl",
        "concepts": f"results/concepts/{wildcards.dataset}/concepts.tsv",
        "code_concepts": f"results/concepts/{wildcards.dataset}/code_concepts.json",
        **sections_input(wildcards),
    }


def stage1_files(dataset):
    return [
        f"results/scores/{dataset}/{backbone}/{split}{suffix}"
        for backbone in config["stage1"]["backbones"]
        for split in config["stage1"]["score_splits"]
        for suffix in (".tsv", "_summary.json")
    ]


def all_targets():
    targets = []
    for dataset in config["datasets"]:
        targets += (
            dataset_files(dataset) + concept_files(dataset) + stage1_files(dataset)
        )
    return targets
