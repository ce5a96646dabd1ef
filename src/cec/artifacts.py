"""The files that stages hand to each other: one home for their readers and writers.

A file written by one stage and read by another (`codes.tsv`, `concepts.tsv`, the stage-1
scores) is parsed here, once, with the checks every reader needs (header, field count,
numbers), so that no stage imports another stage to read its output.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cec.errors import InputError
from cec.io import atomic_write

# Where the workflow writes the files that Python code outside a rule (`cec code`, the
# backbone loader) finds by name. Rules keep their literal paths (the Snakemake idiom);
# tests/test_artifacts.py checks that each pattern is a rule's output, so the two agree.
PATTERNS: dict[str, str] = {
    "codes": "results/data/{dataset}/codes.tsv",
    "concepts": "results/concepts/{dataset}/concepts.tsv",
    "code_concepts": "results/concepts/{dataset}/code_concepts.json",
    "sections_report": "results/sections/{dataset}/sections_report.json",
    "model": "results/models/{backbone}",
    "concept_adapter": "results/adapters/{dataset}/{backbone}/concept",
    "label_adapter": "results/adapters/{dataset}/{backbone}/label_{variant}/seed{seed}",
    "scores": "results/scores/{dataset}/{backbone}/{split}.tsv",
}


def artifact(name: str, results: str | Path = "results", **wildcards: object) -> Path:
    """The path of workflow output `name` under `results` (the workflow's results folder,
    or a copy of it elsewhere) for the given wildcards."""
    pattern = PATTERNS[name].removeprefix("results/")
    return Path(results) / pattern.format(**wildcards)


CODE_TABLE_COLUMNS = ("code", "kind", "description", "parent", "parent_description")


def write_code_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_write(path) as fh:
        fh.write("\t".join(CODE_TABLE_COLUMNS) + "\n")
        for row in rows:
            fh.write("\t".join(row[c].replace("\t", " ") for c in CODE_TABLE_COLUMNS) + "\n")


def read_code_table(path: str | Path) -> list[dict[str, str]]:
    """Read codes.tsv back, checking its header."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not lines or tuple(lines[0].split("\t")) != CODE_TABLE_COLUMNS:
        raise InputError(
            f"not a code table: the header must be {', '.join(CODE_TABLE_COLUMNS)}",
            file=path,
            row=1,
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        values = line.split("\t")
        if len(values) != len(CODE_TABLE_COLUMNS):
            raise InputError(
                f"expected {len(CODE_TABLE_COLUMNS)} tab-separated fields, found {len(values)}",
                file=path,
                row=number,
            )
        rows.append(dict(zip(CODE_TABLE_COLUMNS, values, strict=True)))
    return rows


CONCEPT_COLUMNS = ("concept_id", "level", "owner", "text")
SCORE_COLUMNS = ("hadm_id", "concept_id", "p_yes")


def write_concepts(path: str | Path, rows: Iterable[tuple[str, str, str, str]]) -> None:
    """concepts.tsv: (concept_id, level, owner, text) per kept concept."""
    with atomic_write(path) as fh:
        fh.write("\t".join(CONCEPT_COLUMNS) + "\n")
        for row in rows:
            fh.write("\t".join(row) + "\n")


@contextlib.contextmanager
def scores_writer(path: str | Path) -> Iterator[Callable[[str, str, float], None]]:
    """The stage-1 answers file, written row by row as notes are scored (atomically)."""
    with atomic_write(path) as fh:
        fh.write("\t".join(SCORE_COLUMNS) + "\n")

        def write(hadm_id: str, concept_id: str, p_yes: float) -> None:
            fh.write(f"{hadm_id}\t{concept_id}\t{p_yes:.6f}\n")

        yield write


def read_concept_texts(concepts_tsv: str | Path) -> dict[str, str]:
    """concept_id -> text, from concepts.tsv (checked header and field count)."""
    texts: dict[str, str] = {}
    with open(concepts_tsv, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if tuple(header) != CONCEPT_COLUMNS:
            raise InputError("not a concepts.tsv header", file=concepts_tsv, row=1)
        for number, line in enumerate(fh, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                raise InputError("expected 4 tab-separated fields", file=concepts_tsv, row=number)
            texts[parts[0]] = parts[3]
    return texts


def read_scores(scores_tsv: str | Path) -> dict[str, dict[str, float]]:
    """Stage-1 answers: hadm_id -> concept_id -> p_yes."""
    out: dict[str, dict[str, float]] = {}
    with open(scores_tsv, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if tuple(header or ()) != SCORE_COLUMNS:
            raise InputError(
                "expected the header hadm_id, concept_id, p_yes", file=scores_tsv, row=1
            )
        for number, row in enumerate(reader, start=2):
            try:
                p = float(row[2])
            except (IndexError, ValueError):
                raise InputError(
                    "p_yes is not a number", file=scores_tsv, row=number, field="p_yes"
                ) from None
            out.setdefault(row[0], {})[row[1]] = p
    return out
