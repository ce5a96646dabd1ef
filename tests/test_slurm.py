"""The slurm profile on a real one-node SLURM cluster brought up on this machine.

`tools/slurm/up.sh` installs munge, slurmctld, slurmd, slurmdbd and MariaDB from the Debian
packages and starts them with a fake GPU as GRES; the tiny workflow then runs end to end
through `snakemake --profile slurm`, and `sacct` must show every LLM job with a GPU
allocated and every job COMPLETED. The daemons are stopped by the PIDs up.sh recorded.
Skipped, with the reason, where the machine cannot do this (not root, or no apt-get).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_workflow import _copy_workflow

LLM_RULES = {"train_concept_model", "score_concepts", "train_label_model", "predict_labels",
             "predict_cec"}  # fmt: skip


def _can_run_slurm() -> str | None:
    if os.geteuid() != 0:
        return "bringing up SLURM needs root (apt-get install, daemons as root)"
    if shutil.which("apt-get") is None:
        return "bringing up SLURM needs apt-get (Debian packages)"
    if shutil.which("slurmctld") is None and os.environ.get("CEC_NO_APT") == "1":
        return "CEC_NO_APT=1: not installing SLURM"
    return None


@pytest.mark.integration
def test_tiny_workflow_on_a_real_slurm_cluster(tmp_path: Path) -> None:
    reason = _can_run_slurm()
    if reason:
        pytest.skip(reason)
    piddir = tmp_path / "pids"
    env = {**os.environ, "FAKE_GPUS": "2", "PIDDIR": str(piddir)}
    up = subprocess.run(
        ["bash", str(REPO / "tools/slurm/up.sh")], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        print(up.stdout.strip().splitlines()[-1])  # the bring-up time
        work = _copy_workflow(tmp_path / "wf")
        shutil.copytree(REPO / "profiles" / "slurm", work / "slurm")
        run = subprocess.run(
            [sys.executable, "-m", "snakemake", "--profile", "slurm", "all",
             "--configfile", "config/tiny.yaml", "--jobs", "4",
             "--slurm-init-seconds-before-status-checks", "3"],
            cwd=work, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
            text=True, timeout=2400,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        sacct = subprocess.run(
            ["sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-3hours",
             "--format=JobID,State,AllocTRES%80,SubmitLine%2000"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        jobs = []
        for line in sacct.stdout.splitlines():
            job_id, state, tres, submit = line.split("|", 3)
            rule = re.search(r"rule_([a-z0-9_]+?)(?:_wildcards|['\"\s]|$)", submit)
            if rule and str(work) in submit:
                jobs.append((job_id, rule.group(1), state, "gres/gpu" in tres))
        listing = "\n".join(f"{j}\t{r}\t{s}\tgpu={g}" for j, r, s, g in jobs)
        (tmp_path / "jobs.tsv").write_text(listing)
        print(f"{len(jobs)} SLURM jobs:\n{listing}")
        rules = {r for _, r, _, _ in jobs}
        assert rules >= LLM_RULES, rules  # the LLM rules ran as SLURM jobs ...
        assert "prepare_dataset" in rules and "make_table" not in rules  # localrules stay local
        for _, rule, state, gpu in jobs:
            assert state == "COMPLETED", (rule, state)
            assert gpu == (rule in LLM_RULES), (rule, gpu)  # ... with a GPU, and only they
        assert (work / "results/tables/table2_ablation.tex").exists()
    finally:
        down = subprocess.run(
            ["bash", str(REPO / "tools/slurm/down.sh")], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        print(down.stdout)
    for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd"):
        assert not (piddir / f"{name}.pid").exists()  # every daemon it started was stopped
