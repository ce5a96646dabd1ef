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


def load_config(path: str | Path, schema: str | Path | None = None) -> dict[str, Any]:
    """The config at `path`, validated, with the schema's defaults filled in."""
    from jsonschema import Draft202012Validator, ValidationError

    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", file=path)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
