"""The files that stages hand to each other: one home for their readers and writers.

A file written by one stage and read by another (`codes.tsv`, `concepts.tsv`, the stage-1
scores) is parsed here, once, with the checks every reader needs (header, field count,
numbers), so that no stage imports another stage to read its output.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_write, json_type, not_utf8, read_text_lines

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
    "note_shingles": "results/privacy/{dataset}/note_shingles.npy",
}


def artifact(name: str, results: str | Path = "results", **wildcards: object) -> Path:
    """The path of workflow output `name` under `results` (the workflow's results folder,
    or a copy of it elsewhere) for the given wildcards."""
    pattern = PATTERNS[name].removeprefix("results/")
    return Path(results) / pattern.format(**wildcards)


# --- damaged artefacts: name the file, say what is wrong, say how to make it again ---

# A damaged file inside an output that exists (an adapter folder, a model folder) is not
# rebuilt by a plain `snakemake TARGET`: Snakemake sees the output and does nothing. Hence
# --force, which reruns the rule of the target named and nothing else.
REBUILD = "snakemake --cores 2 --force"


def workflow_target(path: str | Path) -> str | None:
    """The workflow's own name (`results/...`) of the output `path` is, or lies in, when
    it is one of PATTERNS, wherever the results folder is (`cec code --results`)."""
    candidates = [Path(path), *Path(path).parents]
    for pattern in PATTERNS.values():
        parts = pattern.split("/")[1:]  # without the results folder's own name
        regex = ["[^/]+".join(map(re.escape, re.split(r"\{\w+\}", p))) for p in parts]
        for candidate in candidates:
            tail = candidate.parts[-len(parts) :]
            if len(tail) == len(parts) and all(
                re.fullmatch(r, t) for r, t in zip(regex, tail, strict=True)
            ):
                return "/".join(["results", *tail])
    return None


def rebuild_hint(path: str | Path) -> str:
    """How to make `path` again: the Snakemake command for the output it is or lies in."""
    target = workflow_target(path)
    if target is not None:
        return f"to (re)build it: {REBUILD} {target}"
    return "replace it with a good copy (no rule of the workflow builds it)"


def damaged(path: str | Path, problem: str, rebuild: str | None = None) -> InputError:
    """The one error for an artefact that cannot be used: the file, what is wrong with
    it, and how to make it again (`rebuild`; by default `rebuild_hint`: a file the
    workflow did not build, such as a downloaded backbone, needs its own words)."""
    return InputError(f"{problem}; {rebuild or rebuild_hint(path)}", file=path)


def _artifact_text(path: Path, rebuild: str | None) -> str:
    """A small artefact's whole text, or a `damaged` error (missing, empty, binary, not
    UTF-8); the message never shows the bytes."""
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "missing"
        raise damaged(path, what, rebuild)
    data = path.read_bytes()
    if not data.strip():
        raise damaged(path, "empty (cut to nothing?)", rebuild)
    if b"\x00" in data:
        at = data.find(b"\x00") + 1
        raise damaged(path, f"a NUL byte at byte {at}: binary, not text", rebuild)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise damaged(path, not_utf8(exc), rebuild) from None


def read_json_artifact(path: str | Path, expect: type = dict, rebuild: str | None = None) -> Any:
    """A JSON file the workflow wrote (provenance, code concepts, a model's config), whose
    top level must be `expect`; a cut, garbled or wrong file is a `damaged` error naming
    it, never a bare JSONDecodeError, KeyError or TypeError from whoever reads it next."""
    path = Path(path)
    text = _artifact_text(path, rebuild)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            problem = f"not valid JSON ({exc.msg} at the end of its {len(text)} characters): cut"
        else:
            problem = (
                f"not valid JSON ({exc.msg}: character {exc.pos + 1} of {len(text)}): "
                "damaged or cut"
            )
        raise damaged(path, problem, rebuild) from None
    except RecursionError:
        raise damaged(path, "JSON nested too deeply", rebuild) from None
    if not isinstance(value, expect):
        wanted = json_type(expect())
        raise damaged(path, f"expected {wanted} at the top, found {json_type(value)}", rebuild)
    return value


# safetensors: 8 bytes (little-endian header length), a JSON header, then the tensor data
_SAFETENSORS_HEADER_MAX = 100_000_000


def check_safetensors(path: str | Path, rebuild: str | None = None) -> None:
    """A `.safetensors` file is whole: its header reads and accounts for every byte. Cheap
    (reads the header only) and catches a cut copy or garbage before the loader meets
    them with `SafetensorError: incomplete metadata`, naming no file."""
    path = Path(path)
    if not path.is_file():
        raise damaged(path, "missing: the weights file", rebuild)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or length > min(size - 8, _SAFETENSORS_HEADER_MAX):
            raise damaged(
                path,
                f"not a whole safetensors file ({size} bytes; its header length field does "
                "not fit): cut or damaged",
                rebuild,
            )
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
        ends = [
            int(entry["data_offsets"][1])
            for name, entry in header.items()
            if name != "__metadata__"
        ]
    except (ValueError, RecursionError, AttributeError, KeyError, IndexError, TypeError):
        raise damaged(path, "the safetensors header is unreadable: damaged", rebuild) from None
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        how = "cut" if size < expected else "longer than its header says"
        raise damaged(
            path, f"{size} bytes where its header accounts for {expected}: {how}", rebuild
        )


# the splits of every dataset, in this order (results/data/{dataset}/{split}.jsonl)
SPLITS: tuple[str, ...] = ("train", "dev", "test")

CODE_TABLE_COLUMNS = ("code", "kind", "description", "parent", "parent_description")


def write_code_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_write(path) as fh:
        fh.write("\t".join(CODE_TABLE_COLUMNS) + "\n")
        for row in rows:
            fh.write("\t".join(row[c].replace("\t", " ") for c in CODE_TABLE_COLUMNS) + "\n")


def read_code_table(path: str | Path) -> list[dict[str, str]]:
    """Read codes.tsv back, checking its header (BOM, CRLF, NUL and non-UTF-8: cec.plumbing.io's
    one rule for line-based files, since `cec evaluate --codes` takes a hand-made one)."""
    path = Path(path)
    lines = read_text_lines(path)
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
    """concept_id -> text, from concepts.tsv (checked header and field count). The file is
    the workflow's: a damaged one (cut, garbled, missing) says how to rebuild it."""
    path = Path(concepts_tsv)
    text = _artifact_text(path, None)
    if not text.endswith("\n"):
        raise damaged(path, "cut: the last line has no line end", None)
    lines = text.splitlines()
    if tuple(lines[0].split("\t")) != CONCEPT_COLUMNS:
        raise InputError(
            f"not a concepts.tsv header (expected {', '.join(CONCEPT_COLUMNS)}); "
            + rebuild_hint(path),
            file=path,
            row=1,
        )
    texts: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != len(CONCEPT_COLUMNS):
            raise InputError(
                f"expected {len(CONCEPT_COLUMNS)} tab-separated fields, found {len(parts)}; "
                + rebuild_hint(path),
                file=path,
                row=number,
            )
        texts[parts[0]] = parts[3]
    return texts


CodeConceptMap = dict[str, dict[str, list[str]]]
CONCEPT_LEVELS = ("leaf", "parent")


def read_code_concepts(
    code_concepts_json: str | Path, concepts_tsv: str | Path | None = None
) -> CodeConceptMap:
    """code_concepts.json (code -> {"leaf": [ids], "parent": [ids]}), its shape checked,
    and with `concepts_tsv` every id it names found there: the two files come from one
    rule, and a cut concepts.tsv would otherwise surface as a KeyError mid-run."""
    path = Path(code_concepts_json)
    mapping = read_json_artifact(path)
    for code, entry in mapping.items():
        if not isinstance(entry, dict):
            raise damaged(path, f"code {code}: expected an object, found {json_type(entry)}")
        for level in CONCEPT_LEVELS:
            ids = entry.get(level)
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise damaged(path, f"code {code}: '{level}' is not an array of concept ids")
    if concepts_tsv is not None:
        known = read_concept_texts(concepts_tsv)
        for code, entry in mapping.items():
            absent = [i for lv in CONCEPT_LEVELS for i in entry[lv] if i not in known]
            if absent:
                raise damaged(
                    concepts_tsv,
                    f"has no concept {absent[0]}, which {path.name} gives code {code} "
                    f"({len(absent)} missing in all): one of the two is cut or from another run",
                )
    return mapping


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


CANDIDATE_COLUMNS = ("hadm_id", "code", "score", "rank")


def read_candidates(path: str | Path, keep: int | None = None) -> dict[str, list[str]]:
    """A split's retrieved codes (`results/candidates/{dataset}/{split}.tsv`, written by
    `cec.retrieval.run`): hadm_id -> codes, best first, the first `keep` (None: as deep
    as the retriever wrote them). Ranks must run 1, 2, ... per admission: a cut or
    reordered file would silently change which codes the label stages re-rank."""
    path = Path(path)
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        if tuple(next(reader, None) or ()) != CANDIDATE_COLUMNS:
            raise damaged(path, f"the header must be {', '.join(CANDIDATE_COLUMNS)}")
        for number, row in enumerate(reader, start=2):
            if len(row) != len(CANDIDATE_COLUMNS):
                raise InputError(
                    f"expected {len(CANDIDATE_COLUMNS)} fields, found {len(row)}",
                    file=path,
                    row=number,
                )
            codes = out.setdefault(row[0], [])
            if row[3] != str(len(codes) + 1):
                raise InputError(
                    f"rank {row[3]!r} where {len(codes) + 1} comes next for this admission",
                    file=path,
                    row=number,
                    field="rank",
                )
            codes.append(row[1])
    if keep is not None:
        out = {hadm: codes[:keep] for hadm, codes in out.items()}
    return out
