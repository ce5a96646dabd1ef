"""Under Snakemake, a broken note table fails its job with one located line, and no note
text reaches the job log, Snakemake's own log or its console output.

The headerless NOTEEVENTS is the case that leaked before: the reader printed its first row
(a whole discharge summary) as "the header", and Snakemake copied the job log into
`.snakemake/log`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from cec.readers.tables import TABLE_COLUMNS
from tests.conftest import REPO, mini_tables, write_table
from tests.tiny_workflow import copy_workflow, snakemake

MARKER = "ZEBRA-MARKER-7741 patient note text"


def _mimic(folder: Path) -> Path:
    folder.mkdir()
    tables = mini_tables()
    tables["NOTEEVENTS"] = [
        (*row[:-1], f"{MARKER} {row[-1]} {MARKER}") for row in tables["NOTEEVENTS"]
    ]
    for table in TABLE_COLUMNS:
        write_table(folder, table, tables[table])
    notes = folder / "NOTEEVENTS.csv.gz"
    body = gzip.decompress(notes.read_bytes()).split(b"\n", 1)[1]  # the header row dropped
    notes.write_bytes(gzip.compress(body))
    return folder


@pytest.mark.integration
def test_a_headerless_note_table_fails_its_job_without_note_text(tmp_path: Path) -> None:
    work = copy_workflow(tmp_path / "work")
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text(encoding="utf-8"))
    config["mimic"] = {"source": "csv", "dir": str(_mimic(tmp_path / "mimic"))}
    config["datasets"] = {"mimic3_50": {"codes": "config/codes/top50_codes.txt"}}
    config.pop("mimic4", None)
    config.pop("retrieval", None)  # it names a dataset this run drops
    for stage in ("stage1", "stage2"):  # they name datasets this run drops
        config[stage].pop("lora_overrides", None)
    (work / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = snakemake(
        ["--cores", "1", "results/data/mimic3_50/data_report.json", "--configfile", "run.yaml"],
        work,
    )
    assert run.returncode != 0
    log = work / "results" / "logs" / "prepare_dataset" / "mimic3_50.log"
    text = log.read_text(encoding="utf-8")
    failed = [line for line in text.splitlines() if "job failed" in line]
    assert len(failed) == 1 and "NOTEEVENTS.csv.gz" in failed[0], text
    assert "Traceback" not in text
    seen = {"stdout": run.stdout, "stderr": run.stderr, str(log): text}
    for path in (work / ".snakemake" / "log").glob("*"):
        seen[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert len(seen) > 3  # Snakemake's own log was written and is read here
    leaks = [where for where, content in seen.items() if "ZEBRA-MARKER" in content]
    assert not leaks, leaks
