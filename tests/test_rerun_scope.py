"""A config edit re-runs only the jobs whose outputs depend on it (real `snakemake -n` on
the finished tiny run).

Snakemake re-runs a job whose params changed. When rules passed whole config blocks, one
more seed re-trained every adapter; on the paper's configuration that is hundreds of
GPU-hours. Each test edits one thing, lists the jobs a dry run schedules, prints them,
and fails on any job outside the edit's reach.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cec.plumbing.config import load_config
from tests.conftest import REPO
from tests.tiny_workflow import TinyRun, snakemake

pytestmark = pytest.mark.integration

Job = tuple[str, dict[str, str]]
EVALUATION = {"tune_threshold", "evaluate_method", "make_table", "plot_results", "summary"}
N_DATASETS = len(load_config(REPO / "tests" / "config" / "tiny.yaml")["datasets"])  # all are coded


@pytest.fixture(scope="module")
def work(tiny_run: TinyRun) -> Path:
    tiny_run.require_success()
    return tiny_run.work


def scheduled(work: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> list[Job]:
    """The jobs (rule, wildcards) that a dry run with the edited test config schedules."""
    config = load_config(work / "tests/config/tiny.yaml")  # the schema's defaults filled in
    edited = copy.deepcopy(config)
    edit(edited)
    assert edited != config, "the edit changed nothing"
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(edited, sort_keys=False))
    dry = snakemake(["all", "-n", "--configfile", str(path)], work)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    jobs: list[Job] = []
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", dry.stdout, flags=re.M):
        head = re.match(r"(?:local)?rule (\w+):$", block, flags=re.M)
        if not head or head.group(1) == "all":
            continue
        found = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        wildcards = dict(p.split("=", 1) for p in found.group(1).split(", ")) if found else {}
        jobs.append((head.group(1), wildcards))
    print(f"{len(jobs)} jobs:")
    for rule, wildcards in jobs:
        print(f"  {rule} {wildcards}")
    return jobs


def count(jobs: list[Job], rule: str) -> int:
    return sum(1 for r, _ in jobs if r == rule)


def test_a_new_seed_schedules_only_its_own_jobs(work: Path, tmp_path: Path) -> None:
    jobs = scheduled(work, tmp_path, lambda c: c["stage2"]["seeds"].append(14))
    extra = [(r, w) for r, w in jobs if r not in EVALUATION and w.get("seed") != "14"]
    assert not extra, f"jobs of the existing seed or other stages: {extra}"
    # the new seed's own work is all there: 3 adapters per dataset
    assert count(jobs, "train_label_model") == 3 * N_DATASETS
    assert count(jobs, "label_trainset") == 3 * N_DATASETS
    assert count(jobs, "predict_cec") == N_DATASETS * 2  # datasets x splits


def test_a_new_backbone_schedules_only_its_own_jobs(work: Path, tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["backbones"]["tiny_llama_b"] = dict(c["backbones"]["tiny_llama"])
        c["stage1"]["backbones"].append("tiny_llama_b")
        c["stage2"]["backbones"].append("tiny_llama_b")
        c["evaluation"]["paper_row"]["tiny_llama_b"] = "llama"

    jobs = scheduled(work, tmp_path, edit)
    shared = {"make_table", "summary"}  # they show every backbone
    extra = [(r, w) for r, w in jobs if r not in shared and w.get("backbone") != "tiny_llama_b"]
    assert not extra, f"jobs of the existing backbone or shared stages: {extra}"
    assert count(jobs, "build_backbone") == 1
    assert count(jobs, "train_concept_model") == N_DATASETS
    assert count(jobs, "train_label_model") == 3 * N_DATASETS


def test_a_dropped_method_redoes_only_what_shows_it(work: Path, tmp_path: Path) -> None:
    """The method list is read by the tables, figures and summary that show the methods;
    no model, prediction or metric depends on which other methods run."""
    jobs = scheduled(work, tmp_path, lambda c: c["stage2"]["methods"].remove("leaf_concepts"))
    assert {r for r, _ in jobs} <= {"make_table", "plot_results", "summary"}, jobs
    # Table 1 shows CEC only and Table 3 the CEC k's: neither is redone
    tables = {w["table"] for r, w in jobs if r == "make_table"}
    assert tables == {"table2_ablation", "table4_auc"}


def test_an_evaluation_setting_redoes_only_evaluation(work: Path, tmp_path: Path) -> None:
    jobs = scheduled(work, tmp_path, lambda c: c["evaluation"].update(bootstrap=500))
    assert {r for r, _ in jobs} <= EVALUATION, jobs
    # datasets x methods, and the bag-of-words baseline of each re-ranked full code set
    full = len(load_config(REPO / "tests" / "config" / "tiny.yaml")["retrieval"]["datasets"])
    assert count(jobs, "evaluate_method") == N_DATASETS * 7 + full
    assert count(jobs, "tune_threshold") == 0  # the dev threshold has no bootstrap


def test_the_decision_rule_redoes_only_the_tables_that_use_it(work: Path, tmp_path: Path) -> None:
    jobs = scheduled(
        work, tmp_path, lambda c: c["evaluation"].update(decision_rule_first="model_answer")
    )
    assert {r for r, _ in jobs} <= {"make_table", "summary"}, jobs
    tables = {w["table"] for r, w in jobs if r == "make_table"}
    assert tables == {"table1_main", "table2_ablation", "table3_concepts"}  # not AUC


def test_a_stage2_lora_value_redoes_stage2_only(work: Path, tmp_path: Path) -> None:
    jobs = scheduled(work, tmp_path, lambda c: c["stage2"]["lora"].update(lr=0.002))
    stage2 = {"train_label_model", "predict_labels", "predict_cec"}
    assert {r for r, _ in jobs} <= stage2 | EVALUATION, jobs
    assert count(jobs, "train_label_model") == 3 * N_DATASETS
    # zero-shot direct coding has no adapter: its predictions stand
    assert not [w for r, w in jobs if r == "predict_labels" and w["method"] == "direct_zeroshot"]
