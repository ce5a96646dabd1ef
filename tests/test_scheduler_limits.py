"""Snakemake itself never runs more than the resources it is given.

Snakemake 9.10 to 9.15 start a job without claiming its resources when it is the only
ready job, and give the unclaimed resources back when it ends (upstream #3913): every
such job enlarges the pool, and later jobs then run side by side beyond `--cores` and
`--resources gpu=N`. On a one-GPU workstation that is two 8B trainings on one GPU. The
workflow below is shaped to show it: a chain of lone ready jobs, then a fan-out that a
correct scheduler runs one GPU job at a time. Each job writes its own start and end times;
the test counts, from those, the threads and GPU jobs that ever overlapped. Run against
another Snakemake by pointing CEC_SNAKEMAKE at its executable (this fails on 9.15.0).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SNAKEFILE = """
CHAIN = 3
FAN = 4

rule all:
    input: expand("done/fan{i}", i=range(FAN))

rule chain:
    input: lambda w: [] if int(w.i) == 0 else f"done/chain{int(w.i) - 1}"
    output: "done/chain{i}"
    threads: 1
    resources: gpu=1
    shell: "python3 -c 'import time; print(time.time())' > {output}; sleep 1; "
           "python3 -c 'import time; print(time.time())' >> {output}"

rule fan:
    input: f"done/chain{CHAIN - 1}"
    output: "done/fan{i}"
    threads: 1
    resources: gpu=1
    shell: "python3 -c 'import time; print(time.time())' > {output}; sleep 2; "
           "python3 -c 'import time; print(time.time())' >> {output}"

rule wide:
    output: "done/wide"
    threads: 2
    shell: "python3 -c 'import time; print(time.time())' > {output}; sleep 2; "
           "python3 -c 'import time; print(time.time())' >> {output}"
"""

# A hang guard, far above the ~15 s a run takes.
HANG_GUARD_S = 600


def _snakemake() -> list[str]:
    given = os.environ.get("CEC_SNAKEMAKE")
    return [given] if given else [sys.executable, "-m", "snakemake"]


def _intervals(folder: Path) -> dict[str, tuple[float, float]]:
    spans = {}
    for path in sorted(folder.iterdir()):
        start, end = (float(x) for x in path.read_text().split())
        spans[path.name] = (start, end)
    return spans


def peak(spans: dict[str, tuple[float, float]], weight: dict[str, int]) -> int:
    """The largest total weight of jobs running at one instant (an end before a start
    at the same instant: touching jobs do not overlap)."""
    events = []
    for name, (start, end) in spans.items():
        events += [(start, 1, weight[name]), (end, 0, -weight[name])]
    level = top = 0
    for _, _, change in sorted(events):
        level += change
        top = max(top, level)
    return top


def test_peak_counts_overlaps_only() -> None:
    """The counter itself: touching intervals do not overlap, nested ones do."""
    spans = {"a": (0.0, 2.0), "b": (2.0, 3.0), "c": (2.5, 2.6)}
    assert peak(spans, {"a": 1, "b": 1, "c": 1}) == 2
    assert peak(spans, {"a": 5, "b": 1, "c": 3}) == 5


def _run_toy(folder: Path, *args: str) -> dict[str, tuple[float, float]]:
    (folder / "Snakefile").write_text(SNAKEFILE, encoding="utf-8")
    run = subprocess.run(
        [*_snakemake(), "all", "done/wide", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    spans = _intervals(folder / "done")
    assert len(spans) == 3 + 4 + 1
    return spans


def _gpus(spans: dict[str, tuple[float, float]]) -> dict[str, int]:
    return {name: 0 if name == "wide" else 1 for name in spans}


@pytest.mark.integration
def test_never_more_threads_or_gpu_jobs_than_given(tmp_path: Path) -> None:
    spans = _run_toy(tmp_path, "--cores", "2", "--resources", "gpu=1")
    threads = {name: 2 if name == "wide" else 1 for name in spans}
    assert peak(spans, _gpus(spans)) == 1, f"GPU jobs overlapped: {spans}"
    assert peak(spans, threads) <= 2, f"more than 2 threads at once: {spans}"


@pytest.mark.integration
def test_the_gpu_profile_runs_one_gpu_job_at_a_time(tmp_path: Path) -> None:
    """profiles/gpu, as a one-GPU workstation uses it (all cores, one GPU)."""
    spans = _run_toy(tmp_path, "--profile", str(REPO / "profiles" / "gpu"))
    assert peak(spans, _gpus(spans)) == 1, f"GPU jobs overlapped: {spans}"
