"""The paths Python code finds workflow outputs by are the rules' own outputs."""

from __future__ import annotations

import re
from pathlib import Path

from cec.artifacts import PATTERNS, artifact
from tests.conftest import REPO

DIRECTIVE = re.compile(r"^    (\w+):", re.M)


def rule_outputs() -> dict[str, set[str]]:
    """rule -> the quoted strings of its `output:` section, from rules/*.smk."""
    out: dict[str, set[str]] = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        for block in re.split(r"^(?=rule \w+:)", text, flags=re.M):
            name = re.match(r"rule (\w+):", block)
            if name is None:
                continue
            sections = DIRECTIVE.split(block)
            for key, body in zip(sections[1::2], sections[2::2], strict=True):
                if key == "output":
                    out[name.group(1)] = set(re.findall(r'"([^"]+)"', body))
    return out


def test_every_pattern_is_a_rule_output() -> None:
    outputs = rule_outputs()
    assert len(outputs) > 15  # the parser read the rules
    declared = {path for paths in outputs.values() for path in paths}
    missing = {name: p for name, p in PATTERNS.items() if p not in declared}
    assert not missing, f"not the output of any rule: {missing}"


def test_artifact_paths_follow_the_results_folder(tmp_path: Path) -> None:
    path = artifact(
        "label_adapter", tmp_path, dataset="rare50", backbone="smollm2", variant="cec", seed=13
    )
    assert path == tmp_path / "adapters/rare50/smollm2/label_cec/seed13"
    assert artifact("model", backbone="x") == Path("results/models/x")
