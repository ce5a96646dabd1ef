"""Shared fixtures: a hand-made miniature MIMIC-III whose every row we know."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cec.readers.tables import TABLE_COLUMNS
from cec.synth.mimic3_writer import CsvTable
from tests.tiny_workflow import REPO, TinyRun, TinyWorkflow

__all__ = ["REPO", "WORKFLOW_CONFIGS"]

# every config the workflow runs on its own: the shipped ones and the tests' (the Gemma
# overlay, config/demo_gemma.yaml, goes on top of config/config.yaml)
WORKFLOW_CONFIGS = [
    REPO / "config" / "config.yaml",
    REPO / "config" / "demo_mimic4.yaml",
    REPO / "config" / "mimic3.yaml",
    REPO / "config" / "mimic4.yaml",
    REPO / "tests" / "config" / "tiny.yaml",
]
_TINY = TinyWorkflow()


def _needs_run(item: pytest.Item) -> bool:
    return "tiny_run" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the one tiny-workflow run as soon as a selected test is known to need it, and
    move the tests that read it to the end: the unit tests run while it works."""
    if config.option.collectonly or not any(_needs_run(item) for item in items):
        return
    items.sort(key=_needs_run)  # stable: each group keeps its file order
    _TINY.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _TINY.stop()
    if exitstatus == 0 and _TINY.root is not None:
        shutil.rmtree(_TINY.root, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    run = _TINY.run
    if run.returncode is not None:
        where = (
            f"through SLURM ({len(run.slurm_jobs)} jobs; {_bring_up_line(run.slurm_up)})"
            if run.executor == "slurm"
            else f"locally ({run.slurm_skipped})"
        )
        terminalreporter.write_line(
            f"tiny workflow: {run.seconds:.0f} s {where}, exit {run.returncode}, in {run.work}"
        )


def _bring_up_line(output: str) -> str:
    """up.sh's own timing line (apt's messages may follow it)."""
    return next((x for x in output.splitlines() if x.startswith("slurm up:")), "no timing line")


@pytest.fixture(scope="session")
def tiny_run() -> Iterator[TinyRun]:
    """The finished tiny workflow (tests/config/tiny.yaml), run once per session: read it, or
    `copy_to` a folder of your own before changing anything. At the end of the session its
    SLURM cluster is stopped, and a daemon left running is an error."""
    yield _TINY.result()
    left = _TINY.stop()
    assert not left, f"tools/slurm/down.sh left {left} running:\n{_TINY.run.slurm_down}"


def write_table(folder: Path, table: str, rows: list[tuple[Any, ...]], *, gz: bool = True) -> Path:
    """Write rows (without ROW_ID) with the exact MIMIC quoting."""
    path = folder / (f"{table}.csv.gz" if gz else f"{table}.csv")
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        t = CsvTable(fh, table)
        for row in rows:
            t.write(*row)
    return path


NOTE_A = "Admission Date:  [**2151-7-16**]\nHistory of Present Illness:\nAKI on CKD.\n"
NOTE_A_ADDENDUM = 'Addendum: creatinine "improved", see above.'
NOTE_B = "Discharge summary of B, with a comma, and\nnewlines."
NOTE_C = "Note of C."


def mini_tables() -> dict[str, list[tuple[Any, ...]]]:
    """Five admissions covering the quirks prepare must handle."""
    return {
        # SUBJECT_ID, HADM_ID, CHARTDATE, CHARTTIME, STORETIME, CATEGORY, DESCRIPTION,
        # CGID, ISERROR, TEXT
        "NOTEEVENTS": [
            (
                1,
                101,
                "2151-08-20",
                None,
                None,
                "Discharge summary",
                "Addendum",
                None,
                None,
                NOTE_A_ADDENDUM,
            ),
            (1, 101, "2151-08-04", None, None, "Discharge summary", "Report", None, None, NOTE_A),
            (
                1,
                101,
                "2151-08-01",
                "2151-08-01 10:00:00",
                "2151-08-01 10:05:00",
                "Nursing",
                "Nursing Progress Note",
                15000,
                None,
                "nursing text",
            ),
            (2, 102, "2152-01-02", None, None, "Discharge summary", "Report", None, None, NOTE_B),
            (3, 103, "2153-01-02", None, None, "Discharge summary", "Report", None, None, NOTE_C),
            (
                3,
                None,
                "2153-02-02",
                None,
                None,
                "Discharge summary",
                "Report",
                None,
                None,
                "outpatient letter without admission",
            ),
            (
                4,
                104,
                "2154-01-02",
                None,
                None,
                "Discharge summary",
                "Report",
                None,
                "1",
                "flagged as error",
            ),
            (
                5,
                105,
                "2155-01-02",
                None,
                None,
                "Radiology",
                "CHEST (PA & LAT)",
                None,
                None,
                "no discharge summary for this stay",
            ),
        ],
        # SUBJECT_ID, HADM_ID, SEQ_NUM, ICD9_CODE
        "DIAGNOSES_ICD": [
            (1, 101, 1, "5849"),
            (1, 101, 2, "5859"),
            (1, 101, 3, "5849"),  # duplicate
            (1, 101, 4, "9671"),  # diagnosis 967.1, not procedure 96.71
            (2, 102, 1, "V4581"),
            (2, 102, 2, "E8497"),
            (3, 103, 1, "4019"),  # unlisted only
            (4, 104, 1, "5849"),
            (5, 105, 1, "486"),
            (2, 102, 3, None),  # NULL code as in real MIMIC
        ],
        "PROCEDURES_ICD": [
            (1, 101, 1, "9671"),
            (2, 102, 1, "0066"),
            (5, 105, 1, "9604"),
        ],
        "D_ICD_DIAGNOSES": [
            ("5849", "Acute kidney failure NOS", "Acute kidney failure, unspecified"),
            ("5859", "Chronic kidney dis NOS", "Chronic kidney disease, unspecified"),
            ("V4581", "Aortocoronary bypass", "Aortocoronary bypass status"),
            ("486", "Pneumonia, organism NOS", "Pneumonia, organism unspecified"),
            ("E8497", "Accid in resident instit", "Accidents occurring in residential institution"),
            ("9671", "Pois-oth sedative/hypnot", "Poisoning by other sedatives and hypnotics"),
        ],
        "D_ICD_PROCEDURES": [
            (
                "9671",
                "Cont inv mec ven <96 hrs",
                "Continuous invasive mechanical ventilation for less than 96 consecutive hours",
            ),
            ("0066", "PTCA", "Percutaneous transluminal coronary angioplasty [PTCA]"),
            ("9604", "Insert endotracheal tube", "Insertion of endotracheal tube"),
        ],
    }


@pytest.fixture
def mini_mimic(tmp_path: Path) -> Callable[..., Path]:
    """Build the miniature MIMIC (optionally edited) and return its folder."""

    def build(
        edit: Callable[[dict[str, list[tuple[Any, ...]]]], None] | None = None, *, gz: bool = True
    ) -> Path:
        tables = mini_tables()
        if edit is not None:
            edit(tables)
        folder = tmp_path / "mimic"
        folder.mkdir(exist_ok=True)
        for table in TABLE_COLUMNS:
            write_table(folder, table, tables[table], gz=gz)
        return folder

    return build


@pytest.fixture
def code_list(tmp_path: Path) -> Callable[[list[str]], Path]:
    def make(codes: list[str]) -> Path:
        path = tmp_path / "codes.txt"
        path.write_text("# test codes\n" + "\n".join(codes) + "\n", encoding="utf-8")
        return path

    return make


def assert_same_output_but_wall_time(first: Path, second: Path, n_files: int) -> None:
    """Two generator runs with one seed: the same files, byte for byte, but for the
    manifest, whose fields differ only in the run's wall time (what docs/synthetic.md promises,
    no more and no less)."""
    import json

    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert len(files) == n_files
    for rel in files:
        if rel.name != "synth_manifest.json":
            assert (second / rel).read_bytes() == (first / rel).read_bytes(), rel
    a, b = (json.loads((d / "synth_manifest.json").read_text()) for d in (first, second))
    assert {k for k in a if a[k] != b.get(k)} <= {"seconds"}
