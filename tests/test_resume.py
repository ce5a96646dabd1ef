"""Killing a training job and rerunning the target: no half-written output, a clean rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.tiny_workflow import TinyRun
from tests.tiny_workflow import snakemake as _run

TARGET = "results/adapters/rare50/tiny_llama/concept"
STEPS = 300  # long enough to be killed mid-way: a step takes tens of milliseconds
# hang guard (seconds) for training to start; it starts within seconds
START_HANG_GUARD_S = 600


def test_killed_training_leaves_no_adapter_and_reruns(tiny_run: TinyRun, tmp_path: Path) -> None:
    # a copy of the finished run: longer training changes the job's params, so Snakemake
    # redoes the adapter (and only what is asked for: the adapter itself)
    work = tiny_run.copy_to(tmp_path / "wf")
    config = yaml.safe_load((work / "tests" / "config" / "tiny.yaml").read_text())
    config["stage1"]["steps"]["default"] = STEPS
    (work / "config" / "long.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = work / "results/logs/train_concept_model/rare50/tiny_llama.log"
    log.unlink()  # the finished run's log says "LoRA steps" too
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            TARGET,
            "--cores",
            "2",
            "--configfile",
            "config/long.yaml",
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + START_HANG_GUARD_S
    while time.time() < deadline and "LoRA steps" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.5)
    assert "LoRA steps" in log.read_text(), "training never started"
    time.sleep(1)
    assert proc.poll() is None, "training ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # as a cluster's OOM killer or time limit would
    proc.wait()
    adapter = work / TARGET
    assert not adapter.exists() or not any(adapter.iterdir())  # nothing half-written
    # a killed Snakemake leaves its lock: the documented recovery is --unlock, then rerun
    unlock = _run([TARGET, "--unlock", "--configfile", "config/long.yaml"], work)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = _run(
        [TARGET, "--cores", "2", "--configfile", "config/long.yaml", "--rerun-incomplete"],
        work,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    provenance = json.loads((adapter / "provenance.json").read_text())
    assert len(provenance["loss_curve"]) == STEPS  # trained anew, with the new settings
    assert (adapter / "adapter_model.safetensors").exists()
