"""De-duplication with all-MiniLM-L6-v2 (Section 3.2): gamma, first occurrence, maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cec.concepts.dedup import (
    counts_line,
    deduplicate,
    embed,
    load_encoder,
    read_code_phrases,
    write_concept_set,
)


def _unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_greedy_first_occurrence_with_hand_computed_cosines() -> None:
    # cos(0,1) = 0.9 > 0.83: 1 is a duplicate of 0; cos(0,2) = 0.8 kept; 3 copies 2
    e = _unit([1.0, 0.0, 0.0], [0.9, np.sqrt(1 - 0.81), 0.0], [0.8, 0.0, 0.6], [0.8, 0.0, 0.6])
    result = deduplicate(e, gamma=0.83)
    assert result.kept == [0, 2]
    assert result.representative == [0, 0, 2, 2]
    assert result.similarity[1] == pytest.approx(0.9, abs=1e-6)
    assert deduplicate(e, gamma=0.95).kept == [0, 1, 2]  # only the exact copy goes
    assert deduplicate(e, gamma=0.9).kept == [0, 2]  # "above gamma" is strict: 0.9 > 0.9 no


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201
    return load_encoder()


def test_minilm_is_offline_and_lexical(encoder) -> None:  # noqa: ANN001
    e = embed(
        ["kidney failure", "renal failure", "low blood pressure", "minimal blood pressure"], encoder
    )
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert float(e[0] @ e[1]) > 0.9  # merged at 0.83
    # the paper's own example stays apart at 0.83 (MiniLM is lexical; DESIGN.md)
    assert 0.7 < float(e[2] @ e[3]) < 0.83


def test_concept_set_outputs(tmp_path: Path, encoder) -> None:  # noqa: ANN001
    raw = tmp_path / "concepts_raw.jsonl"
    lines = [
        {"level": "parent", "owner": "584", "concepts": ["Kidney failure", "Oliguria"]},
        {"level": "parent", "owner": "585", "concepts": ["Dialysis dependence"]},
        {
            "level": "leaf",
            "owner": "584.9",
            "parent": "584",
            "concepts": ["Renal failure", "Creatinine recovery after fluids"],
        },
        {"level": "leaf", "owner": "585.9", "parent": "585", "concepts": ["Stable CKD baseline"]},
    ]
    raw.write_text("".join(json.dumps(x) + "\n" for x in lines))
    summary = write_concept_set(raw, tmp_path, "mimic3_50", gamma=0.83, encoder=encoder)
    assert summary["generated"] == {"total": 6, "parent": 3, "leaf": 3}
    assert summary["kept"] == {"total": 5, "parent": 3, "leaf": 2}
    assert "paper: 325 = 229 parent + 96 leaf" in counts_line(summary)
    concepts = (tmp_path / "concepts.tsv").read_text().splitlines()
    assert concepts[0] == "concept_id\tlevel\towner\ttext"
    assert concepts[1] == "C0001\tparent\t584\tKidney failure"
    report = (tmp_path / "dedup_report.tsv").read_text().splitlines()
    assert len(report) == 2 and report[1].startswith("Renal failure\tleaf\t584.9\tC0001\t")
    mapping = json.loads((tmp_path / "code_concepts.json").read_text())
    # 584.9 keeps its dropped concept through the kept one (C0001), not twice
    assert mapping["584.9"] == {"leaf": ["C0001", "C0004"], "parent": ["C0002"]}
    assert mapping["585.9"] == {"leaf": ["C0005"], "parent": ["C0003"]}
    phrases = read_code_phrases(tmp_path / "concepts.tsv", tmp_path / "code_concepts.json")
    assert phrases["585.9"] == ["Stable CKD baseline", "Dialysis dependence"]


def test_a_parent_concept_merged_into_the_leaf_leaves_the_code_its_concept(
    tmp_path: Path,
    encoder,  # noqa: ANN001
) -> None:
    """Derived concepts: "cholera" (the parent) and "cholera, unspecified" (the leaf) are
    one concept at gamma 0.83. The code keeps it (as its leaf concept) and ends with no
    parent concept of its own, which is counted, not refused; a code left with no leaf
    concept is still refused."""
    raw = tmp_path / "concepts_raw.jsonl"
    lines = [
        {"level": "parent", "owner": "A00", "concepts": ["cholera"]},
        {"level": "leaf", "owner": "A00.9", "parent": "A00", "concepts": ["cholera"]},
    ]
    raw.write_text("".join(json.dumps(x) + "\n" for x in lines))
    summary = write_concept_set(raw, tmp_path, "full", gamma=0.83, encoder=encoder)
    mapping = json.loads((tmp_path / "code_concepts.json").read_text())
    assert mapping["A00.9"] == {"leaf": ["C0001"], "parent": []}
    assert summary["codes_with_parent_concepts_only_as_leaf_concepts"] == 1
    raw.write_text(json.dumps(lines[0]) + "\n" + json.dumps({**lines[1], "concepts": []}) + "\n")
    with pytest.raises(Exception, match="A00.9 ends with no leaf concept"):
        write_concept_set(raw, tmp_path, "full", gamma=0.83, encoder=encoder)
