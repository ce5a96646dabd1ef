"""Killing a training job and rerunning the target: no half-written output, a clean rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.test_workflow import _copy_workflow, _run

TARGET = "results/adapters/rare50/tiny_llama/concept"


def test_killed_training_leaves_no_adapter_and_reruns(tmp_path: Path) -> None:
    work = _copy_workflow(tmp_path)
    config = yaml.safe_load((work / "config" / "tiny.yaml").read_text())
    config["stage1"]["steps"]["default"] = 600  # long enough to be killed mid-way
    (work / "config" / "long.yaml").write_text(yaml.safe_dump(config))
    prep = _run(
        [TARGET, "--cores", "2", "--configfile", "config/long.yaml", "--until", "concept_trainset"],
        work,
    )
    assert prep.returncode == 0, prep.stderr[-2000:]
    log = work / "results/logs/train_concept_model/rare50/tiny_llama.log"
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
    deadline = time.time() + 120
    while time.time() < deadline and "LoRA steps" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.5)
    assert "LoRA steps" in log.read_text(), "training never started"
    time.sleep(2)
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
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (adapter / "provenance.json").exists()
    assert (adapter / "adapter_model.safetensors").exists()
