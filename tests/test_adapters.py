"""The Snakemake adapters (workflow/scripts/) share one shape: Snakemake's typed handle,
then settings built from the job's params and one call into cec (docs/layout.md)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

ADAPTERS = sorted((REPO / "workflow" / "scripts").glob("*.py"))


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: p.stem)
def test_an_adapter_holds_snakemakes_typed_handle(path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typed = [
        node
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "snakemake"
        and isinstance(node.annotation, ast.Name)
        and node.annotation.id == "Snakemake"
    ]
    assert len(typed) == 1, "expected `snakemake: Snakemake = globals()['snakemake']`"
    imported = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "snakemake.iocontainers"
        for alias in node.names
    }
    assert "Snakemake" in imported


def test_every_rule_script_exists_and_every_script_has_a_rule() -> None:
    named = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for line in smk.read_text(encoding="utf-8").splitlines():
            if "workflow/scripts/" in line:
                named.add(line.strip().strip('"').rsplit("/", 1)[-1])
    assert named == {p.name for p in ADAPTERS}
