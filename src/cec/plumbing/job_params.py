"""What each workflow job reads from the config, and nothing more.

Snakemake re-runs a job whose `params` changed since it last ran. A rule that passes a
whole config block (all of `stage2`, all of `backbones`) therefore re-trains every adapter
when a user adds a seed, a backbone or a method: hundreds of GPU-hours on the paper's
configuration. Each function here returns exactly the values one job's outputs depend on,
already resolved for its wildcards (its backbone's entry, its step count), so that an edit
re-runs only the jobs whose inputs it changes. tests/test_rerun_scope.py holds the rules to
that with real dry runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def backbone_entry(backbones: Config, name: str) -> dict[str, Any]:
    """A backbone's config entry, as a job's params."""
    return canonical(backbones[name])


def steps_for(block: Config, row_backbone: str) -> int:
    """A stage's step count for one backbone row (`steps.<row>` or `steps.default`)."""
    steps = block["steps"]
    return int(steps.get(row_backbone, steps["default"]))


def concept_generation(concepts: Config) -> dict[str, Any]:
    """Concept generation reads its mode, batching, retries and API settings; `gamma`
    belongs to de-duplication, and the recordings path is passed resolved per dataset."""
    keep = ("mode", "batch", "max_parse_retries", "api")
    return canonical({key: concepts[key] for key in keep})


def override_key_problem(
    key: str,
    block: Config,
    datasets: set[str] | None = None,
    rows_name: str = "this stage's backbones",
) -> str | None:
    """Why a `lora_overrides` key of a stage block would never apply (None: it would): its
    backbone is not one the stage trains, or (where `datasets` is given) its dataset is not
    configured. One rule for the config check and for the jobs' params."""
    dataset, _, backbone = key.rpartition("/")
    rows = set(block.get("backbones") or ())
    if backbone not in rows:
        return f"{backbone!r} is not among {rows_name} ({', '.join(sorted(rows)) or 'none'})"
    if dataset and datasets is not None and dataset not in datasets:
        return f"unknown dataset {dataset!r}; the config defines: {', '.join(sorted(datasets))}"
    return None


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
    return canonical(lora)


def stage1_training(
    stage1: Config, row_backbone: str, dataset: str | None = None
) -> dict[str, Any]:
    """One concept adapter: its LoRA block (with its overrides), its step count, its seed
    and its device."""
    return {
        "lora": lora_for(stage1, row_backbone, dataset),
        "steps": steps_for(stage1, row_backbone),
        "seed": int(stage1["trainset"]["seed"]),
        "device": stage1["device"],
    }


def stage1_scoring(stage1: Config) -> dict[str, Any]:
    return {"score_batch": int(stage1["score_batch"]), "device": stage1["device"]}


def stage2_training(
    stage2: Config, row_backbone: str, dataset: str | None = None
) -> dict[str, Any]:
    """One label adapter: the LoRA block (with its overrides) and the step count of its row
    (the seed and the variant are wildcards)."""
    return {
        "lora": lora_for(stage2, row_backbone, dataset),
        "steps": steps_for(stage2, row_backbone),
        "device": stage2["device"],
    }


def stage2_prediction(stage2: Config) -> dict[str, Any]:
    """Predictions read k and m (the layout), the token limits and the device; not the
    LoRA block, the seeds or the method list (the method is a wildcard)."""
    return {
        "k": int(stage2["trainset"]["k"]),
        "m": int(stage2["trainset"]["m"]),
        "max_tokens": int(stage2["max_tokens"]),
        "row_tokens": int(stage2["row_tokens"]),
        "device": stage2["device"],
    }


def evaluation_run(evaluation: Config) -> dict[str, Any]:
    """Metrics of one method read the bootstrap settings only."""
    return {
        "bootstrap": int(evaluation["bootstrap"]),
        "bootstrap_seed": int(evaluation["bootstrap_seed"]),
    }


# What each table reads beyond its metric files (the method lists are resolved by the
# rules from the method registry).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "table1_main": ("datasets", "backbones", "cec_method", "decision_rule_first", "data_note"),
    "table2_ablation": (
        "datasets",
        "backbones",
        "ablation",
        "cec_method",
        "decision_rule_first",
        "data_note",
        "m",
    ),  # fmt: skip
    "table3_concepts": (
        "datasets",
        "backbones",
        "k_methods",
        "decision_rule_first",
        "data_note",
        "m",
    ),  # fmt: skip
    "table4_auc": ("datasets", "table4_backbone", "ablation", "cec_method", "data_note"),
}


def table(name: str, candidates: Config) -> dict[str, Any]:
    """The values one table reads, picked from every value a table may read: Table 4
    (AUC) does not change with the decision rule, Table 3 not with Table 2's method list."""
    if name not in TABLE_KEYS:
        raise ValueError(f"unknown table {name!r} ({', '.join(TABLE_KEYS)})")
    return {key: candidates[key] for key in TABLE_KEYS[name]}
