"""The stage-1 training set (Appendix C): pseudo-labelled concept questions.

Pseudo-positives are the concepts of an admission's gold codes (their leaf concepts and
their parents' concepts); pseudo-negatives are drawn from concepts of codes it does not
have. Only the train split is used. Each admission draws from its own generator seeded
by (seed, hadm_id), so the set does not depend on file order.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cec.plumbing.io import atomic_write, write_json


@dataclass(frozen=True)
class TrainsetSettings:
    neg_per_pos: float = 1.0  # pseudo-negatives per pseudo-positive
    max_pos_per_note: int | None = 8  # cap on positives per admission (None: all)
    seed: int = 13


def gold_concepts(
    labels: Iterable[str], code_concepts: Mapping[str, Mapping[str, Sequence[str]]]
) -> list[str]:
    """Concept ids of the gold codes, leaf first, in label order, without repeats."""
    out: list[str] = []
    for code in labels:
        entry = code_concepts.get(code, {})
        out += list(entry.get("leaf", [])) + list(entry.get("parent", []))
    return list(dict.fromkeys(out))


def build_concept_trainset(
    records: Iterable[Mapping[str, Any]],
    code_concepts: Mapping[str, Mapping[str, Sequence[str]]],
    settings: TrainsetSettings,
    candidates: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Rows {hadm_id, concept_id, label} (label 1 = pseudo-positive).

    `candidates` (full code sets): each train note's retrieved codes. Its negatives are
    then drawn from their concepts, the ones scoring will ask about, rather than from
    thousands of codes' concepts that a note's text has nothing to do with."""
    all_ids = list(
        dict.fromkeys(
            c for e in code_concepts.values() for c in list(e["leaf"]) + list(e["parent"])
        )
    )
    rows: list[dict[str, Any]] = []
    for rec in sorted(records, key=lambda r: int(r["hadm_id"])):
        rng = random.Random(f"cec-stage1:{settings.seed}:{rec['hadm_id']}")
        pos = gold_concepts(rec["labels"], code_concepts)
        if not pos:
            continue
        if settings.max_pos_per_note is not None and len(pos) > settings.max_pos_per_note:
            pos = rng.sample(pos, settings.max_pos_per_note)
        gold = set(gold_concepts(rec["labels"], code_concepts))
        if candidates is None:
            source = all_ids
        else:
            source = gold_concepts(candidates.get(str(rec["hadm_id"]), []), code_concepts)
        pool = [c for c in source if c not in gold]
        n_neg = min(len(pool), round(len(pos) * settings.neg_per_pos))
        neg = rng.sample(pool, n_neg)
        pairs = [(c, 1) for c in pos] + [(c, 0) for c in neg]
        rng.shuffle(pairs)
        rows += [{"hadm_id": rec["hadm_id"], "concept_id": c, "label": y} for c, y in pairs]
    return rows


def write_trainset(
    rows: list[dict[str, Any]], out: Path, summary_path: Path, settings: TrainsetSettings
) -> dict[str, Any]:
    with atomic_write(out) as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    summary = {
        "rows": len(rows),
        "notes": len({r["hadm_id"] for r in rows}),
        "positives": sum(r["label"] for r in rows),
        "negatives": sum(1 - r["label"] for r in rows),
        "settings": {
            "neg_per_pos": settings.neg_per_pos,
            "max_pos_per_note": settings.max_pos_per_note,
            "seed": settings.seed,
        },
        "sha256": digest,
    }
    write_json(summary_path, summary)
    return summary
