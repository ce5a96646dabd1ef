"""Privacy: the concept-generation rule reads no note, by the Snakemake DAG itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cec.plumbing.config import load_config
from tests.tiny_workflow import TinyRun
from tests.tiny_workflow import snakemake as _run

# MIMIC-III's note table, and MIMIC-IV-Note's discharge tables
NOTE_TABLE = re.compile(r"((^|/)NOTEEVENTS|/note/discharge(_detail)?)\.csv(\.gz)?$")


@pytest.fixture(scope="module")
def work(tiny_run: TinyRun) -> Path:
    """The finished tiny run (Snakemake lists a job's input files in its summary only once
    its outputs exist)."""
    tiny_run.require_success()
    return tiny_run.work


def _summary(work: Path, target: str, config: str) -> dict[str, tuple[str, list[str]]]:
    """output file -> (rule, input files), from `snakemake --detailed-summary`."""
    result = _run(
        [target, "--forceall", "--detailed-summary", "--configfile", config], work, hang_guard_s=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows: dict[str, tuple[str, list[str]]] = {}
    lines = result.stdout.splitlines()
    header = lines.index(next(x for x in lines if x.startswith("output_file\t")))
    for line in lines[header + 1 :]:
        parts = line.split("\t")
        if len(parts) >= 5:
            rows[parts[0]] = (parts[2], [p for p in parts[4].split(",") if p])
    return rows


# A counted code list (rule count_codes: Edin et al.'s and caml-mimic's counts) reads the
# note table only for which admissions have a discharge note (their ids, and for MIMIC-IV a
# digest of each text so that a repeated row counts once) and writes code strings with
# counts: the one way note tables reach the codes whose titles the concept prompts send.
ID_ONLY_READERS = frozenset({"count_codes"})


def _note_derived(
    path: str,
    graph: dict[str, tuple[str, list[str]]],
    seen: set[str],
    id_only: frozenset[str] = ID_ONLY_READERS,
) -> bool:
    """True if `path` is a note table or is built (transitively) from one by a rule that
    is not in `id_only`."""
    if NOTE_TABLE.search(path):
        return True
    if path in seen or path not in graph or graph[path][0] in id_only:
        return False
    seen.add(path)
    return any(_note_derived(p, graph, seen, id_only) for p in graph[path][1])


# MIMIC-III (seeded and file splits; listed codes) and MIMIC-IV (its discharge table; a
# code list counted over the admissions with a note; derived concepts)
@pytest.mark.parametrize("dataset", ["mimic3_50", "rare50", "mimic4_icd10_full"])
def test_concept_generation_has_no_note_derived_content_input(work: Path, dataset: str) -> None:
    # The summary reports the inputs of the jobs as run (replay mode, as in the demo);
    # record mode has the same inputs minus the recordings file.
    target = f"results/concepts/{dataset}/raw/concepts_raw.jsonl"
    graph = _summary(work, target, "tests/config/tiny.yaml")
    rule, inputs = graph[target]
    assert rule == "generate_concepts"
    derived = sorted(p for p in inputs if _note_derived(p, graph, set()))
    # The one note-derived input is the guard's set of one-way 8-word-run hashes, which
    # it uses only to refuse requests; the prompts are built from the other inputs.
    assert derived == [f"results/privacy/{dataset}/note_shingles.npy"]
    codes = f"results/data/{dataset}/codes.tsv"
    assert codes in inputs
    settings = load_config(work / "tests/config/tiny.yaml")["datasets"][dataset]
    # a counted list's codes.tsv reaches a note table, and only through count_codes
    counted = isinstance(settings["codes"], dict)
    assert _note_derived(codes, graph, set(), id_only=frozenset()) is counted
    recordings = f"src/cec/resources/concepts/recordings/{dataset}.jsonl"
    assert (recordings in inputs) is (settings.get("concepts") != "derived")  # none replayed
    # the DAG walk can fail: the dataset JSONL is note-derived and would be caught
    assert _note_derived(f"results/data/{dataset}/train.jsonl", graph, set())
