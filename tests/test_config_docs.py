"""config/README.md describes every block of the config schema (the Snakemake workflow
catalog's convention), and every shipped config file."""

from __future__ import annotations

import re

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
