"""Rule retrieve_candidates, run by Snakemake on a full-code MIMIC-IV dataset of the
synthetic world (the tiny config plus that dataset): its candidates and recall@K."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.tiny_workflow import CONFIG, copy_workflow, snakemake

pytestmark = pytest.mark.integration
DATASET = "mimic4_icd10_full"


def test_candidates_of_a_full_code_set(tmp_path: Path) -> None:
    work = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((work / CONFIG).read_text(encoding="utf-8"))
    config["datasets"][DATASET] = {
        "prepare_only": True,
        "source": "mimic4",
        "icd_version": 10,
        "codes": {"min_count": 1},
        "split_files": "synthetic",
    }
    config["retrieval"] = {"datasets": [DATASET], "ks": [5, 20], "choose_at": 20}
    path = work / "full.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    target = f"results/candidates/{DATASET}/recall.json"
    run = snakemake([target, "--cores", "2", "--configfile", str(path)], work)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((work / target).read_text())
    codes = summary["codes"]
    listed = [
        x
        for x in (work / f"results/data/{DATASET}/code_list.txt").read_text().splitlines()
        if x and not x.startswith("#")
    ]
    assert codes == len(listed) > 50  # the full set: more codes than a top-50 list
    assert set(summary["recall"]) == {"neighbours", "titles"}
    dev = {name: r["dev"]["all"]["@20"] for name, r in summary["recall"].items()}
    assert summary["chosen"] == max(sorted(dev), key=lambda n: dev[n])  # dev decides
    for name, by_split in summary["recall"].items():
        for split, bands in by_split.items():
            assert set(bands) == {"all", "<10", "10-100", ">100"}, (name, split)
            for row in bands.values():
                for k in ("@5", "@20"):
                    assert row[k] is None or 0.0 <= row[k] <= 1.0
                if row["pairs"]:
                    assert row["@5"] <= row["@20"]
    for split in ("train", "dev", "test"):
        records = [json.loads(x) for x in (work / f"results/data/{DATASET}/{split}.jsonl").open()]
        with (work / f"results/candidates/{DATASET}/{split}.tsv").open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        assert len(rows) == 20 * len(records)  # the top max(ks) codes of every note
        assert {r["hadm_id"] for r in rows} == {str(r["hadm_id"]) for r in records}
        first = [r for r in rows if r["hadm_id"] == rows[0]["hadm_id"]]
        assert [int(r["rank"]) for r in first] == list(range(1, 21))
        assert [float(r["score"]) for r in first] == sorted(
            (float(r["score"]) for r in first), reverse=True
        )
    print(json.dumps({n: r["test"]["all"] for n, r in summary["recall"].items()}))
