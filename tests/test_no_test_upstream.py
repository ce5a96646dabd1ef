"""No test data upstream of any choice, by the Snakemake DAG itself.

KEPT built its trainer's evaluation set from the test split. Here every step that
chooses something (training sets, LoRA training, the dev-tuned threshold) is walked back
through the DAG of the finished tiny run, and no test split file may appear upstream,
directly or through other rules (test predictions, test scores...). The walk stops at
the dataset's split files: `prepare_dataset` writes all three at once from MIMIC, and
its tests keep them disjoint. The privacy guard's one-way fingerprints are not followed:
they only refuse API requests and cannot shape a concept set (tests/test_privacy_dag.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_privacy_dag import _summary
from tests.tiny_workflow import TinyRun

SPLIT_FILE = re.compile(r"^results/data/[^/]+/(train|dev|test)\.jsonl$")
GUARD = re.compile(r"^results/privacy/")
CHOICES = {"concept_trainset", "train_concept_model", "label_trainset", "train_label_model",
           "tune_threshold"}  # fmt: skip


def _upstream_splits(
    path: str, graph: dict[str, tuple[str, list[str]]], seen: set[str]
) -> set[str]:
    """The dataset split files that `path` is built from, through any number of rules."""
    if SPLIT_FILE.match(path):
        return {path}
    if path in seen or path not in graph or GUARD.match(path):
        return set()
    seen.add(path)
    out: set[str] = set()
    for parent in graph[path][1]:
        out |= _upstream_splits(parent, graph, seen)
    return out


@pytest.fixture(scope="module")
def graph(tiny_run: TinyRun) -> dict[str, tuple[str, list[str]]]:
    tiny_run.require_success()
    return _summary(tiny_run.work, "all", "tests/config/tiny.yaml")


def test_no_choice_has_test_data_upstream(graph: dict[str, tuple[str, list[str]]]) -> None:
    choices = {out: rule for out, (rule, _) in graph.items() if rule in CHOICES}
    assert {rule for rule in choices.values()} == CHOICES  # every kind of choice was found
    for out in sorted(choices):
        splits = _upstream_splits(out, graph, set())
        assert splits, out  # the walk reaches the data ...
        tests = sorted(s for s in splits if s.endswith("/test.jsonl"))
        assert not tests, f"{out} ({choices[out]}) is built from {tests}"
    # thresholds are chosen on dev (and, through the label model, train data)
    tuned = [out for out, rule in choices.items() if rule == "tune_threshold"]
    assert tuned
    for out in tuned:
        names = {Path(s).name for s in _upstream_splits(out, graph, set())}
        assert "dev.jsonl" in names and names <= {"dev.jsonl", "train.jsonl"}, (out, names)


def test_the_walk_finds_test_data_where_it_is(graph: dict[str, tuple[str, list[str]]]) -> None:
    """The check can fail: metric files, which are built from test predictions, have the
    test split upstream."""
    metrics = [out for out, (rule, _) in graph.items() if rule == "evaluate_method"]
    assert metrics
    for out in metrics:
        assert any(s.endswith("/test.jsonl") for s in _upstream_splits(out, graph, set())), out
