"""A full code set through the whole workflow (the tiny run's `mimic4_icd10_full`):
candidate retrieval, derived concepts, the concept and label stages re-ranking each
note's candidates, evaluation over the whole label set beside the bag-of-words baseline,
the summary and the tables."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from cec.icd.code_lists import read_code_list
from cec.plumbing.io import read_jsonl
from tests.tiny_workflow import TinyRun

pytestmark = pytest.mark.integration
DATASET = "mimic4_icd10_full"
RERANK, DEPTH = 10, 20  # tests/config/tiny.yaml: retrieval.rerank, max(retrieval.ks)


@pytest.fixture(scope="module")
def work(tiny_run: TinyRun) -> Path:
    tiny_run.require_success()
    return tiny_run.work


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _candidates(work: Path, split: str) -> dict[str, list[str]]:
    ranked: dict[str, list[str]] = defaultdict(list)
    for row in _tsv(work / f"results/candidates/{DATASET}/{split}.tsv"):
        assert int(row["rank"]) == len(ranked[row["hadm_id"]]) + 1
        ranked[row["hadm_id"]].append(row["code"])
    return dict(ranked)


def _records(work: Path, split: str) -> list[dict]:
    return list(read_jsonl(work / f"results/data/{DATASET}/{split}.jsonl"))


def test_candidates_and_recall(work: Path) -> None:
    summary = json.loads((work / f"results/metrics/{DATASET}/retrieval_recall.json").read_text())
    listed = read_code_list(work / f"results/data/{DATASET}/code_list.txt", version=10)
    assert summary["codes"] == len(listed) > 50  # more codes than a top-50 list
    assert set(summary["recall"]) == {"neighbours", "titles"}
    dev = {name: r["dev"]["all"]["@20"] for name, r in summary["recall"].items()}
    assert summary["chosen"] == max(sorted(dev), key=lambda n: dev[n])  # dev decides
    for name, by_split in summary["recall"].items():
        for split, bands in by_split.items():
            assert set(bands) == {"all", "<10", "10-100", ">100"}, (name, split)
            for row in bands.values():
                if row["pairs"]:
                    assert 0.0 <= row["@5"] <= row["@20"] <= 1.0
    for split in ("train", "dev", "test"):
        ranked = _candidates(work, split)
        assert set(ranked) == {str(r["hadm_id"]) for r in _records(work, split)}
        assert all(len(codes) == DEPTH for codes in ranked.values())
    # leave-one-out: a training note's own codes are not handed to it; train recall is
    # that of a new note, not inflated to 1 by its own vote
    train = summary["recall"][summary["chosen"]]["train"]["all"]["@20"]
    assert train < 0.999, train


def test_stage1_asks_only_about_the_candidates_concepts(work: Path) -> None:
    code_concepts = json.loads(
        (work / f"results/concepts/{DATASET}/code_concepts.json").read_text()
    )
    for split in ("dev", "test"):
        ranked = _candidates(work, split)
        asked: dict[str, set[str]] = defaultdict(set)
        for row in _tsv(work / f"results/scores/{DATASET}/tiny_llama/{split}.tsv"):
            asked[row["hadm_id"]].add(row["concept_id"])
        assert set(asked) == set(ranked)
        every = {c for e in code_concepts.values() for c in e["leaf"] + e["parent"]}
        for hadm, concepts in asked.items():
            mine = {
                c for code in ranked[hadm][:RERANK] for lv in ("leaf", "parent")
                for c in code_concepts[code][lv]
            }  # fmt: skip
            assert concepts == mine, hadm
            assert len(concepts) < len(every)  # not the whole concept space


def test_label_stage_reranks_the_candidates(work: Path) -> None:
    for split in ("dev", "test"):
        ranked = _candidates(work, split)
        for method in ("direct_ft", "cec_k5"):
            rows = _tsv(
                work / f"results/predictions/{DATASET}/tiny_llama/{method}/seed13/{split}.tsv"
            )
            by_note: dict[str, dict[str, float]] = defaultdict(dict)
            for row in rows:
                by_note[row["hadm_id"]][row["code"]] = float(row["prob"])
            assert set(by_note) == set(ranked)
            for hadm, probs in by_note.items():
                assert list(probs) == ranked[hadm]  # the retrieved codes, in rank order
                cands = [probs[c] for c in ranked[hadm][:RERANK]]
                rest = [probs[c] for c in ranked[hadm][RERANK:]]
                assert max(rest) <= min(cands)  # nothing outside outranks a candidate
                assert rest == sorted(rest, reverse=True)  # in the retriever's order
    # negatives of the label training set come from the note's train candidates
    train = _candidates(work, "train")
    rows = list(read_jsonl(work / f"results/trainsets/{DATASET}/label_cec_seed13.jsonl"))
    negatives = [r for r in rows if not r["label"]]
    assert negatives and all(r["code"] in train[r["hadm_id"]][:RERANK] for r in negatives)


def test_full_set_metrics_baseline_summary_and_tables(work: Path) -> None:
    n_codes = len(_tsv(work / f"results/data/{DATASET}/codes.tsv"))
    for backbone, method in (("tiny_llama", "cec_k5"), ("bow", "bow_lr")):
        m = json.loads((work / f"results/metrics/{DATASET}/{backbone}/{method}.json").read_text())
        assert m["n_codes"] == n_codes  # the whole label set, not the candidates
        assert 0.0 <= m["f1_micro"] <= 1.0 and m["p_at_8"] is not None
    bow = _tsv(work / f"results/predictions/{DATASET}/bow/bow_lr/seed13/test.tsv")
    assert len(bow) == len(_records(work, "test")) * n_codes  # the baseline scores all
    summary = (work / "results/summary.md").read_text()
    assert "## Full code sets: candidate retrieval, then re-ranking" in summary
    assert f"### {DATASET}: {n_codes} codes" in summary
    assert "| bow | bow_lr (" in summary and "| tiny_llama | cec_k5 (" in summary
    table = (work / "results/tables/table1_main.tex").read_text()
    assert "MIMIC-IV-ICD10-full$^\\dagger$" in table and "not generated by GPT-4" in table
    assert "MIMIC-IV-ICD10-50$^\\dagger$" not in table
    # derived concepts: no API exchange behind them
    raw = list(read_jsonl(work / f"results/concepts/{DATASET}/raw/concepts_raw.jsonl"))
    assert raw and all(r["request_key"].startswith("derived") for r in raw)
    assert (work / f"results/concepts/{DATASET}/raw/exchanges.jsonl").read_text() == ""
