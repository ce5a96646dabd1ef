"""What each workflow job reads from the config, and nothing more: the one reader of the
config for a job.

Every rule's `params` come from one function here, named after the rule (or the rule
family), which returns exactly the values the job's outputs depend on, already resolved
for its wildcards (its backbone's entry, its step count) and spelt as the keyword
arguments of the settings object or function the Snakemake adapter calls, so that an
adapter builds its settings with `Settings(**params)` and reads no config key itself.

Two properties follow, both tested with real dry runs:
- an edit re-runs only the jobs whose inputs it changes (tests/test_rerun_scope.py):
  Snakemake re-runs a job whose params changed, and a rule that passed a whole block
  (all of `stage2`) re-trained every adapter when a user added a seed: hundreds of
  GPU-hours on the paper's configuration;
- a config whose keys are only reordered (a file written back by `yaml.safe_dump`)
  re-runs nothing (tests/test_config_order.py): a function builds its dict in an order
  of its own (some of which reach an output, e.g. the split fractions in the data
  report), and passes a free-form block (a backbone entry, the API block) `canonical`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cec.datasets.sources import Source
from cec.plumbing.config import override_key_problem

Config = Mapping[str, Any]


def canonical(value: Any) -> Any:
    """Mappings with their keys sorted, at every depth. Snakemake compares params by their
    printed form, so a block passed as read would re-run its jobs when only the order of
    its keys changed (a config file rewritten, or a default filled in by the schema)."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


# ---- data -----------------------------------------------------------------------------


def synth_mimic(config: Config) -> dict[str, Any]:
    """The synthetic MIMIC-III: `cec.synth.mimic3_writer.write_synthetic_mimic`'s keywords."""
    spec = config["mimic"]["synthetic"]
    return canonical(
        {
            "n_admissions": int(spec["admissions"]),
            "seed": int(spec["seed"]),
            "top50_sizes": spec.get("top50_split"),
            "rare_sizes": spec.get("rare50_split"),
            "other_notes_per_admission": float(spec.get("other_notes_per_admission", 30)),
        }
    )


def synth_mimic4(config: Config) -> dict[str, Any]:
    """The synthetic MIMIC-IV: `cec.synth.mimic4_writer.write_synthetic_mimic4`'s keywords."""
    spec = config["mimic4"]["synthetic"]
    return canonical(
        {
            "n_admissions": int(spec["admissions"]),
            "seed": int(spec["seed"]),
            "icd9_fraction": float(spec["icd9_fraction"]),
        }
    )


def source(config: Config, dataset: str) -> dict[str, Any]:
    """Which MIMIC a dataset reads, as `cec.datasets.sources.Source`'s keywords."""
    found = Source.of(config["datasets"][dataset])
    return {"icd_version": found.icd_version, "name": found.name}


def count_codes(config: Config, dataset: str) -> dict[str, Any]:
    """A counted code list: `Source.write_code_list`'s keywords (the ICD version is the
    source's). A MIMIC-III list is written as the dataset's labels are and counts the
    discharge summaries prepare keeps, so that it matches what prepare reads."""
    spec = config["datasets"][dataset]
    settings: dict[str, Any] = {
        "top": spec["codes"].get("top"),
        "min_count": int(spec["codes"].get("min_count", 1)),
    }
    if Source.of(spec).name == "mimic3":
        settings["code_format"] = str(spec.get("code_format", "exact"))
        settings["exclude_error_notes"] = bool(spec.get("exclude_error_notes", True))
    return canonical(settings)


def prepare_dataset(config: Config, dataset: str) -> dict[str, Any]:
    """A dataset's split and reading options (`Source.options`' keywords); the code list
    and split files are the job's inputs."""
    spec = config["datasets"][dataset]
    return Source.of(spec).option_values(spec)


def code_table(config: Config, dataset: str) -> dict[str, Any]:
    """How a code table writes its label strings (`Source.write_code_table`)."""
    return {"code_format": config["datasets"][dataset].get("code_format", "exact")}


# ---- concepts -------------------------------------------------------------------------


def concept_source(config: Config, dataset: str) -> str:
    """llm (the Fig. 6/7 prompts) or derived (public ICD text, `cec.concepts.derived`)."""
    return str(config["datasets"][dataset].get("concepts", "llm"))


def generate_concepts(config: Config, dataset: str) -> dict[str, Any]:
    """Concept generation: `GenerationSettings`' keywords and the API block (`ApiSettings`'
    fields); `gamma` belongs to de-duplication, and the recordings path is passed resolved
    per dataset. Derived concepts read no API setting, only the ICD version (ICD-10-CM
    codes take inclusion terms)."""
    if concept_source(config, dataset) == "derived":
        version = int(config["datasets"][dataset].get("icd_version", 9))
        return {"source": "derived", "icd_version": version}
    concepts = config["concepts"]
    return canonical(
        {
            "generation": {
                "mode": concepts["mode"],
                "min_batch": int(concepts["batch"]["min"]),
                "max_batch": int(concepts["batch"]["max"]),
                "max_parse_retries": int(concepts["max_parse_retries"]),
            },
            "api": concepts.get("api") or {},
        }
    )


def dedup_concepts(config: Config) -> dict[str, Any]:
    return {"gamma": float(config["concepts"]["gamma"])}


def concept_coverage(config: Config) -> dict[str, Any]:
    """`cec.concepts.coverage.write_coverage`'s keywords."""
    spec = config["coverage"]
    return canonical(
        {
            "window": int(spec["window"]),
            "stride": int(spec["stride"]),
            "min_score": float(spec["min_score"]),
        }
    )


def section_titles(config: Config) -> dict[str, Any]:
    """`cec.sections.SectionSettings`' keywords."""
    spec = config["sections"]
    return canonical(
        {
            "min_df": float(spec["min_df"]),
            "min_score": float(spec["min_score"]),
            "max_words": int(spec["max_words"]),
            "keep": list(spec["keep"]),
        }
    )


# ---- the LLM stages -------------------------------------------------------------------


def backbone_entry(backbones: Config, name: str) -> dict[str, Any]:
    """A backbone's config entry, as a job's params (`Backbone.from_config` validates it)."""
    return canonical(backbones[name])


def steps_for(block: Config, row_backbone: str) -> int:
    """A stage's step count for one backbone row (`steps.<row>` or `steps.default`)."""
    steps = block["steps"]
    return int(steps.get(row_backbone, steps["default"]))


def lora_for(block: Config, row_backbone: str, dataset: str | None = None) -> dict[str, Any]:
    """A stage's LoRA block for one adapter: `lora`, then `lora_overrides.<row backbone>`,
    then `lora_overrides.<dataset>/<row backbone>` over it (e.g. QLoRA for one backbone
    only). Only the adapters an override names see it in their params, so adding one
    re-runs those alone. A key naming a backbone the stage does not train is an error, as
    is a dataset/backbone key where the caller passes no dataset (it would never apply)."""
    lora = dict(block.get("lora", {}))
    overrides = block.get("lora_overrides") or {}
    for key in overrides:
        problem = override_key_problem(key, block)
        if problem is None and "/" in key and dataset is None:
            problem = "a dataset/backbone override needs the job's dataset"
        if problem is not None:
            raise ValueError(f"lora_overrides.{key}: {problem}")
    lora.update(overrides.get(row_backbone, {}))
    if dataset is not None:
        lora.update(overrides.get(f"{dataset}/{row_backbone}", {}))
    return canonical(lora)  # the schema allows only LoraSettings fields in these blocks


def stage1_training(
    stage1: Config, row_backbone: str, dataset: str | None = None
) -> dict[str, Any]:
    """One concept adapter: `LoraSettings`' keywords (its LoRA block with its overrides,
    step count and seed; the targets are the backbone's `lora_targets`) and its device."""
    lora = lora_for(stage1, row_backbone, dataset)
    lora["steps"] = steps_for(stage1, row_backbone)
    lora["seed"] = int(stage1["trainset"]["seed"])
    return {"device": stage1["device"], "lora": canonical(lora)}


def concept_trainset(config: Config) -> dict[str, Any]:
    """`cec.stage1.trainset.TrainsetSettings`' keywords."""
    spec = config["stage1"]["trainset"]
    return canonical(
        {
            "neg_per_pos": float(spec["neg_per_pos"]),
            "max_pos_per_note": spec.get("max_pos_per_note"),
            "seed": int(spec["seed"]),
        }
    )


def stage1_scoring(stage1: Config) -> dict[str, Any]:
    """`cec.stage1.run.score_notes`' keywords."""
    return {"batch_size": int(stage1["score_batch"]), "device": stage1["device"]}


def label_trainset(config: Config) -> dict[str, Any]:
    """`cec.stage2.trainset.build_label_trainset`'s keywords (the variant and the seed
    are wildcards)."""
    spec = config["stage2"]["trainset"]
    return {
        "k": int(spec["k"]),
        "m": int(spec["m"]),
        "false_per_true": float(spec["false_per_true"]),
    }


def stage2_training(
    stage2: Config, row_backbone: str, dataset: str | None = None
) -> dict[str, Any]:
    """One label adapter: `LoraSettings`' keywords (the LoRA block with its overrides and
    the step count of its row; the seed is a wildcard) and its device."""
    lora = lora_for(stage2, row_backbone, dataset)
    lora["steps"] = steps_for(stage2, row_backbone)
    return {"device": stage2["device"], "lora": canonical(lora)}


def stage2_prediction(config: Config, dataset: str) -> dict[str, Any]:
    """`cec.stage2.run.PredictionSettings`' keywords: k and m (the layout), the token
    limits, the device and, for a re-ranked full code set, how many candidates; not the
    LoRA block, the seeds or the method list (the method and the seed are wildcards)."""
    stage2 = config["stage2"]
    settings = {
        "device": stage2["device"],
        "m": int(stage2["trainset"]["m"]),
        "max_tokens": int(stage2["max_tokens"]),
        "row_tokens": int(stage2["row_tokens"]),
        "train_k": int(stage2["trainset"]["k"]),
    }
    count = rerank(config, dataset)
    if count is not None:
        settings["rerank"] = count
    return settings


def retrieve_candidates(config: Config) -> dict[str, Any]:
    """`cec.retrieval.run.retrieve_candidates`' keywords."""
    spec = config["retrieval"]
    return {
        "ks": [int(k) for k in spec["ks"]],
        "choose_at": int(spec["choose_at"]),
        "neighbours": int(spec["neighbours"]),
    }


def rerank(config: Config, dataset: str) -> int | None:
    """How many of a note's retrieved codes the concept and label stages work on, for a
    full code set the config retrieves for (`retrieval.datasets`); None for the others,
    which score every code of their set."""
    spec = config.get("retrieval") or {}
    if dataset not in (spec.get("datasets") or []):
        return None
    return int(spec["rerank"] if "rerank" in spec else spec["choose_at"])


def unlisted(config: Config, dataset: str) -> float | None:
    """The probability of a code a prediction file does not list: 0 for a re-ranked full
    code set (its files list each note's retrieved codes, `cec.stage2.candidates`); None
    (every code must be listed) for the others."""
    return None if rerank(config, dataset) is None else 0.0


def bow_baseline(config: Config) -> dict[str, Any]:
    """`cec.baseline.bow.run_bow_baseline`'s keywords (the seed is a wildcard)."""
    spec = config["bow_baseline"]
    return {"C": float(spec["C"]), "max_features": int(spec["max_features"])}


# ---- evaluation -----------------------------------------------------------------------


def evaluation_run(evaluation: Config) -> dict[str, Any]:
    """`cec.evaluation.run.evaluate_method`'s keywords: the bootstrap settings only."""
    return {
        "bootstrap_seed": int(evaluation["bootstrap_seed"]),
        "resamples": int(evaluation["bootstrap"]),
    }


def summary(evaluation: Config) -> dict[str, Any]:
    """What `cec.evaluation.summary.write_summary` reads of `evaluation`."""
    return canonical(
        {
            "cec_method": evaluation["cec_method"],
            "data_note": evaluation["data_note"],
            "paper_row": evaluation.get("paper_row") or {},
        }
    )


# What each table reads beyond its metric files (the method lists are resolved by the
# rules from the method registry).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "table1_main": (
        "datasets",
        "backbones",
        "cec_method",
        "decision_rule_first",
        "data_note",
        "derived_concepts",
    ),  # fmt: skip
    "table2_ablation": (
        "datasets",
        "backbones",
        "ablation",
        "cec_method",
        "decision_rule_first",
        "data_note",
        "derived_concepts",
        "m",
    ),  # fmt: skip
    "table3_concepts": (
        "datasets",
        "backbones",
        "k_methods",
        "decision_rule_first",
        "data_note",
        "derived_concepts",
        "m",
    ),  # fmt: skip
    "table4_auc": (
        "datasets",
        "table4_backbone",
        "ablation",
        "cec_method",
        "data_note",
        "derived_concepts",
    ),  # fmt: skip
}


def table(name: str, candidates: Config) -> dict[str, Any]:
    """The values one table reads, picked from every value a table may read: Table 4
    (AUC) does not change with the decision rule, Table 3 not with Table 2's method list."""
    if name not in TABLE_KEYS:
        raise ValueError(f"unknown table {name!r} ({', '.join(TABLE_KEYS)})")
    return canonical({key: candidates[key] for key in TABLE_KEYS[name]})
