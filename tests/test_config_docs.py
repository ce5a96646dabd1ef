"""config/README.md describes every block of the config schema (the Snakemake workflow
catalog's convention), and every shipped config file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from cec.plumbing.config import SCHEMA
from tests.conftest import REPO

README = REPO / "config" / "README.md"


def test_every_schema_block_has_a_section() -> None:
    blocks = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))["properties"]
    headings = set(re.findall(r"^### (\w+)$", README.read_text(encoding="utf-8"), flags=re.M))
    assert set(blocks) - headings == set(), "blocks without a section in config/README.md"
    assert headings - set(blocks) == set(), "sections for blocks the schema does not have"


def test_every_config_file_is_listed() -> None:
    listed = set(re.findall(r"^\| `([\w.]+\.yaml)` \|", README.read_text(encoding="utf-8"), re.M))
    shipped = {p.name for p in (REPO / "config").glob("*.yaml")}
    assert listed == shipped


def test_the_schema_is_package_data() -> None:
    """Found inside the installed package (a wheel holds it: `cec = ["resources/**/*"]`),
    not by walking up to a checkout's config/ folder."""
    import cec

    package = Path(cec.__file__).parent
    assert SCHEMA.is_file() and SCHEMA.is_relative_to(package), SCHEMA
    globs = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["cec"]
    assert any(SCHEMA in set(package.glob(g)) for g in globs), globs
