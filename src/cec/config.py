"""Reading a workflow config outside Snakemake, with the schema's defaults filled in.

The paper's constants (Appendix A, gamma, k, m, the prompts, batch sizes) are defaults in
`config/schema.yaml`, and each config file holds only what differs from them. Snakemake
fills the defaults when the Snakefile validates its config; Python code that reads a
config by itself (`cec code`, the benchmarks) calls `load_config`, which does the same, so
that every reader sees the same values.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from cec.errors import InputError

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


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


def with_base(config: dict[str, Any], origin: str | Path = "the config") -> dict[str, Any]:
    """`config` laid over the config its `base` key names (a path from the working
    directory, itself possibly with a base): each top-level key of `config` replaces the
    base's whole block. Whole blocks, not a deep merge, so that an overlay's `datasets`
    is the run's dataset list rather than one added to the base's."""
    seen: list[str] = []
    while "base" in config:
        base_path = Path(str(config["base"]))
        if str(base_path) in seen:
            raise InputError(f"configs name each other as base: {' -> '.join(seen)}", file=origin)
        seen.append(str(base_path))
        if not base_path.is_file():
            raise InputError(f"base config {base_path} not found", file=origin, field="base")
        base = yaml.safe_load(base_path.read_text(encoding="utf-8")) or {}
        overlay = {k: v for k, v in config.items() if k != "base"}
        config = {**base, **overlay}
    return config


def load_config(path: str | Path, schema: str | Path | None = None) -> dict[str, Any]:
    """The config at `path` (over its `base`, if any), validated, with the schema's
    defaults filled in."""
    from jsonschema import Draft202012Validator, ValidationError

    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", file=path)
    config = with_base(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path)
    schema_path = Path(schema) if schema is not None else path.parent / "schema.yaml"
    if not schema_path.is_file():
        schema_path = SCHEMA
    rules = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    try:
        _with_defaults(Draft202012Validator)(rules).validate(config)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise InputError(f"{exc.message} (at {where})", file=path) from None
    return dict(config)
