"""The slurm profile on a real one-node SLURM cluster brought up on this machine.

`tools/slurm/up.sh` installs munge, slurmctld, slurmd, slurmdbd and MariaDB from the Debian
packages and starts them with two fake GPUs as GRES; the session's one run of the tiny
workflow (tests/tiny_workflow.py) then goes through `snakemake --profile slurm`, and `sacct`
must show every LLM job with a GPU allocated and every job COMPLETED. The daemons are
stopped by the PIDs up.sh recorded at the end of the session, and checked then. Where the
machine cannot do this (not root, or no apt-get) the run is local and this test skips
with the reason; under CI=true it fails.
"""

from __future__ import annotations

import pytest

from tests.tiny_workflow import TEST_PARTITION, TinyRun, in_ci

LLM_RULES = {"train_concept_model", "score_concepts", "train_label_model", "predict_labels",
             "predict_cec"}  # fmt: skip


@pytest.mark.integration
def test_tiny_workflow_on_a_real_slurm_cluster(tiny_run: TinyRun) -> None:
    if tiny_run.executor != "slurm":
        reason = f"the tiny workflow ran locally: {tiny_run.slurm_skipped}"
        if in_ci():
            pytest.fail(f"CI must run the SLURM test; {reason}")
        pytest.skip(reason)
    print(next(x for x in tiny_run.slurm_up.splitlines() if x.startswith("slurm up:")))
    tiny_run.require_success()
    listing = "\n".join(
        f"{j.job_id}\t{j.rule}\t{j.state}\tgpu={j.gpu}" for j in tiny_run.slurm_jobs
    )
    print(f"{len(tiny_run.slurm_jobs)} SLURM jobs in {tiny_run.seconds:.0f} s:\n{listing}")
    rules = {j.rule for j in tiny_run.slurm_jobs}
    assert rules >= LLM_RULES, rules  # the LLM rules ran as SLURM jobs ...
    assert "prepare_dataset" in rules and "make_table" not in rules  # localrules stay local
    for job in tiny_run.slurm_jobs:
        assert job.state == "COMPLETED", (job.rule, job.state)
        assert job.gpu == (job.rule in LLM_RULES), (job.rule, job.gpu)  # ... with a GPU, only they
        # placement comes from the profile's resources (set by the test as a user would)
        assert job.partition == TEST_PARTITION, (job.rule, job.partition)
    assert (tiny_run.work / "results/tables/table2_ablation.tex").exists()
    # the cluster is stopped at the end of the session; a daemon left running is an error
    # in the teardown of the `tiny_run` fixture (tests/conftest.py)
