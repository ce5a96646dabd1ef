"""The label model's training set (Section 3.4, steps 1-3) and what it shares with
prediction (code titles, the concept view). Kept apart from `cec.stage2.run` so that the
rule that builds the training set (a data-stage job, envs/data.yaml) loads no model code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cec.plumbing.artifacts import read_code_table
from cec.plumbing.io import atomic_write, write_json
from cec.stage2.sampling import CodeConcepts, ConceptView, training_rows


def code_titles(code_table: str | Path) -> dict[str, str]:
    """Code -> the title its question shows (the code itself where the table has none)."""
    return {r["code"]: r["description"] or r["code"] for r in read_code_table(code_table)}


def concept_view(
    code_concepts: CodeConcepts, codes: Sequence[str], variant: str
) -> ConceptView | None:
    return None if variant == "direct" else ConceptView.build(code_concepts, codes, variant)


def build_label_trainset(
    records: Iterable[Mapping[str, Any]],
    codes: Sequence[str],
    code_concepts: CodeConcepts,
    variant: str,
    seed: int,
    k: int,
    m: int,
    false_per_true: float,
    candidates: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Every train admission's rows; `candidates` (full code sets): false codes come from
    each admission's retrieved codes (`training_rows`)."""
    view = concept_view(code_concepts, codes, variant)
    rows: list[dict[str, Any]] = []
    for rec in sorted(records, key=lambda r: int(r["hadm_id"])):
        mine = None if candidates is None else candidates.get(str(rec["hadm_id"]), [])
        rows += training_rows(rec, codes, view, seed, k, m, false_per_true, mine)
    return rows


def write_label_trainset(
    rows: Sequence[Mapping[str, Any]],
    out: str | Path,
    summary_path: str | Path,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    with atomic_write(out) as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    summary = {
        "rows": len(rows),
        "notes": len({r["hadm_id"] for r in rows}),
        "true_codes": sum(r["label"] for r in rows),
        "false_codes": sum(1 - r["label"] for r in rows),
        "concept_lines": sum(len(r["concepts"]) for r in rows),
        "settings": dict(settings),
        "sha256": hashlib.sha256(Path(out).read_bytes()).hexdigest(),
    }
    write_json(summary_path, summary)
    return summary
