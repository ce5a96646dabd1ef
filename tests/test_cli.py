"""The `cec` console script: the commands a person runs by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CEC = [sys.executable, "-m", "cec.cli"]
HANG_GUARD_S = 600  # a hang guard, far above any real run (seconds)


def _cec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CEC, *args], capture_output=True, text=True, timeout=HANG_GUARD_S)


def test_synth_then_prepare(tmp_path: Path) -> None:
    mimic = tmp_path / "mimic"
    synth = _cec(
        "synth-mimic",
        "--out",
        str(mimic),
        "--admissions",
        "200",
        "--seed",
        "3",
        "--top50-split",
        "40,5,5",
        "--rare50-split",
        "60,2,4",
        "--other-notes",
        "1",
        "--quiet",
    )
    assert synth.returncode == 0, synth.stderr
    assert "200 admissions" in synth.stdout
    out = tmp_path / "rare50"
    prep = _cec(
        "prepare",
        "--mimic-dir",
        str(mimic),
        "--codes",
        str(REPO / "config/codes/rare50_codes.txt"),
        "--splits",
        str(mimic / "splits" / "rare50"),
        "--out",
        str(out),
        "--code-format",
        "caml",
        "--quiet",
    )
    assert prep.returncode == 0, prep.stderr
    assert "train 60, dev 2, test 4 admissions, 50 codes (split files)" in prep.stdout
    report = json.loads((out / "data_report.json").read_text())
    assert report["split"]["sizes"] == {"train": 60, "dev": 2, "test": 4}
    # KEPT's three odd strings get their meaning: 40.7 is MIMIC's 0407, 52.0 and 77.7
    # are categories; none is left without a title
    assert report["codes_missing_from_dictionaries"] == []
    assert set(report["code_strings"]) == {"40.7", "52.0", "77.7"}
    assert report["PROCEDURES_ICD"]["listed_codes_read_as_caml"] == {"40.7": ["04.07"]}
    # exact ICD-9-CM strings cannot match KEPT's "40.7": its admissions lose that label
    exact = _cec(
        "prepare", "--mimic-dir", str(mimic),
        "--codes", str(REPO / "config/codes/rare50_codes.txt"),
        "--splits", str(mimic / "splits" / "rare50"), "--out", str(tmp_path / "exact"), "--quiet",
    )  # fmt: skip
    assert exact.returncode == 0, exact.stderr
    assert "missing from the ICD-9 dictionaries (kept, no description): 40.7" in exact.stderr


def test_bad_input_exits_2_with_a_located_message(tmp_path: Path) -> None:
    result = _cec(
        "prepare",
        "--mimic-dir",
        str(tmp_path),
        "--codes",
        str(REPO / "config/codes/top50_codes.txt"),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    )
    assert result.returncode == 2
    assert "error: file " in result.stderr and "NOTEEVENTS not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_bad_split_sizes_are_refused(tmp_path: Path) -> None:
    result = _cec(
        "synth-mimic", "--out", str(tmp_path / "m"), "--admissions", "50", "--rare50-split", "1,2"
    )
    assert result.returncode == 2
    assert "expected three counts" in result.stderr
