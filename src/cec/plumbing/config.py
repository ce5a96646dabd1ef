"""Reading a workflow config outside Snakemake, with the schema's defaults filled in.

The paper's constants (Appendix A, gamma, k, m, the prompts, batch sizes) are defaults in
the config schema (`src/cec/resources/config.schema.yaml`, package data, so that an
installed `cec` finds it too), and each config file holds only what differs from them. Snakemake
fills the defaults when the Snakefile validates its config; Python code that reads a
config by itself (`cec code`, the benchmarks) calls `load_config`, which does the same, so
that every reader sees the same values.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from cec.plumbing.errors import InputError

# the one schema of every config: the Snakefile validates with it, `load_config` too
SCHEMA = Path(str(files("cec") / "resources" / "config.schema.yaml"))


def _with_defaults(validator_class: Any) -> Any:
    """A validator that sets each missing property that has a `default` before checking
    it, so nested defaults are filled too (the recipe Snakemake's `validate` uses)."""
    from jsonschema import validators

    check_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(
        validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file as a mapping, or an `InputError` naming the file and, for YAML
    faults, the line. Plain YAML only (`safe_load`): a tag that would build a Python
    object is refused, never executed. An empty file is refused too: falling back to the
    demo's settings for a file the user named would run the wrong experiment silently."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a config file", file=path)
    if not path.is_file():
        raise InputError("config file not found", file=path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    if "\x00" in text:
        raise InputError("holds a NUL byte: not a text file", file=path)
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        row = mark.line + 1 if mark is not None else None
        column = f" (column {mark.column + 1})" if mark is not None else ""
        problem = exc.problem or exc.context or "unreadable"
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem = f"{problem}: configs hold plain YAML data, no tags"
        raise InputError(f"not valid YAML: {problem}{column}", file=path, row=row) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({type(exc).__name__})", file=path) from None
    if data is None or data == {}:
        raise InputError("the config is empty: it names no datasets, models or stages", file=path)
    if not isinstance(data, dict):
        raise InputError(
            f"a config is a mapping of blocks (name: settings), not a {_kind(data)}", file=path
        )
    return data


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def with_base(config: dict[str, Any], origin: str | Path = "the config") -> dict[str, Any]:
    """`config` laid over the config its `base` key names (a path from the working
    directory, itself possibly with a base): each top-level key of `config` replaces the
    base's whole block. Whole blocks, not a deep merge, so that an overlay's `datasets`
    is the run's dataset list rather than one added to the base's. Errors name the file
    that holds the faulty `base`, or the base file that is faulty."""
    seen: list[str] = []
    holder = str(origin)
    while "base" in config:
        value = config["base"]
        if not isinstance(value, str) or not value.strip():
            raise InputError(
                f"base must be the path of a config file, not a {_kind(value)}",
                file=holder,
                field="base",
            )
        base_path = Path(value)
        if str(base_path) in seen:
            raise InputError(f"configs name each other as base: {' -> '.join(seen)}", file=holder)
        seen.append(str(base_path))
        if not base_path.exists():
            raise InputError(f"base config {base_path} not found", file=holder, field="base")
        try:
            base = read_config_file(base_path)
        except InputError as exc:
            raise exc.restated(f"{exc.message} (the base config of {holder})") from None
        overlay = {k: v for k, v in config.items() if k != "base"}
        config = {**base, **overlay}
        holder = str(base_path)
    return config


def check_config(config: dict[str, Any], origin: str | Path) -> None:
    """What a schema cannot say: every number finite, fractions that add up, and every
    backbone a stage or table names defined under `backbones`. Checked before any job
    is planned, so a typo is reported as a typo, not as a missing input file later."""
    for where, value in _leaves(config):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{value} is not a finite number", file=origin, field=where)
    for name, dataset in (config.get("datasets") or {}).items():
        shares = dataset.get("split_fractions") if isinstance(dataset, dict) else None
        if isinstance(shares, dict) and all(isinstance(v, int | float) for v in shares.values()):
            total = sum(shares.values())
            if abs(total - 1.0) > 1e-6:
                raise InputError(
                    f"the shares add up to {total:g}, not 1",
                    file=origin,
                    field=f"datasets.{name}.split_fractions",
                )
    retrieval = config.get("retrieval") or {}
    datasets = set(config.get("datasets") or {})
    for index, name in enumerate(retrieval.get("datasets") or []):
        if name not in datasets:
            raise InputError(
                f"unknown dataset {name!r}; the config defines: {', '.join(sorted(datasets))}",
                file=origin,
                field=f"retrieval.datasets[{index}]",
            )
    if "choose_at" in retrieval and retrieval["choose_at"] not in (retrieval.get("ks") or []):
        raise InputError(
            f"{retrieval['choose_at']} is not one of retrieval.ks {retrieval.get('ks')}",
            file=origin,
            field="retrieval.choose_at",
        )
    if "rerank" in retrieval and retrieval["rerank"] > max(retrieval.get("ks") or [0]):
        raise InputError(
            f"{retrieval['rerank']} is more than the retriever writes (max of retrieval.ks "
            f"{retrieval.get('ks')})",
            file=origin,
            field="retrieval.rerank",
        )
    defined = set(config.get("backbones") or {})
    for where, name in _backbone_references(config):
        if name not in defined:
            known = ", ".join(sorted(defined)) or "none"
            raise InputError(
                f"unknown backbone {name!r}; the config defines: {known}",
                file=origin,
                field=where,
            )
    _check_lora_overrides(config, origin)


def override_key_problem(
    key: str,
    block: Mapping[str, Any],
    datasets: set[str] | None = None,
    rows_name: str = "this stage's backbones",
) -> str | None:
    """Why a `lora_overrides` key of a stage block would never apply (None: it would): its
    backbone is not one the stage trains, or (where `datasets` is given) its dataset is not
    configured. One rule for the config check and for the jobs' params
    (`cec.job_params.lora_for`)."""
    dataset, _, backbone = key.rpartition("/")
    rows = set(block.get("backbones") or ())
    if backbone not in rows:
        return f"{backbone!r} is not among {rows_name} ({', '.join(sorted(rows)) or 'none'})"
    if dataset and datasets is not None and dataset not in datasets:
        return f"unknown dataset {dataset!r}; the config defines: {', '.join(sorted(datasets))}"
    return None


def _check_lora_overrides(config: dict[str, Any], origin: str | Path) -> None:
    """A `lora_overrides` key names a backbone the stage trains and, before a slash, a
    configured dataset: a misspelt key would otherwise never apply, silently training the
    full-precision adapter a user meant to replace."""
    datasets = set(config.get("datasets") or {})
    for stage in ("stage1", "stage2"):
        block = config.get(stage) or {}
        for key in block.get("lora_overrides") or {}:
            problem = override_key_problem(key, block, datasets, f"{stage}.backbones")
            if problem is not None:
                raise InputError(problem, file=origin, field=f"{stage}.lora_overrides.{key}")


def _leaves(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _leaves(sub, f"{where}[{index}]")
    else:
        yield where, value


def _backbone_references(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, name) for every place that names a backbone."""
    for stage in ("stage1", "stage2"):
        block = config.get(stage) or {}
        for index, name in enumerate(block.get("backbones") or []):
            yield f"{stage}.backbones[{index}]", name
        for name in block.get("steps") or {}:
            if name != "default":
                yield f"{stage}.steps.{name}", name
    for row, label in ((config.get("stage2") or {}).get("label_backbone") or {}).items():
        yield f"stage2.label_backbone.{row}", row
        if isinstance(label, dict):  # one backbone per variant (direct, leaf, cec)
            for variant, name in label.items():
                yield f"stage2.label_backbone.{row}.{variant}", name
        else:
            yield f"stage2.label_backbone.{row}", label
    evaluation = config.get("evaluation") or {}
    if evaluation.get("table4_backbone") is not None:
        yield "evaluation.table4_backbone", evaluation["table4_backbone"]
    for name in evaluation.get("paper_row") or {}:
        yield f"evaluation.paper_row.{name}", name


def load_config(path: str | Path, schema: str | Path | None = None) -> dict[str, Any]:
    """The config at `path` (over its `base`, if any), validated, with the schema's
    defaults filled in."""
    from jsonschema import Draft202012Validator, ValidationError

    path = Path(path)
    config = with_base(read_config_file(path), path)
    schema_path = Path(schema) if schema is not None else SCHEMA
    rules = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    try:
        _with_defaults(Draft202012Validator)(rules).validate(config)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise InputError(f"{exc.message} (at {where})", file=path) from None
    check_config(config, path)
    return dict(config)
