"""The finished tiny workflow (one run per session, see tests/tiny_workflow.py), and
real Snakemake runs on copies of the workflow."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from cec.icd.code_lists import read_code_list
from cec.llm.token_meter import parse_compute
from cec.plumbing.config import SCHEMA, load_config, with_base
from cec.plumbing.io import read_jsonl
from cec.plumbing.logs import MODULES_LINE, STARTED_LINE
from tests.conftest import REPO, WORKFLOW_CONFIGS
from tests.test_scheduler_limits import peak
from tests.tiny_workflow import CONFIG, TinyRun, copy_workflow, snakemake


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Snakemake in `cwd`, under a hang guard far above any real run."""
    return snakemake(args, cwd)


# the 50-code datasets of the tiny run; its full code set (MIMIC-IV) is FULL
DATASETS = ("mimic3_50", "rare50")
FULL = "mimic4_icd10_full"


@pytest.fixture(scope="module")
def work(tiny_run: TinyRun) -> Path:
    tiny_run.require_success()
    return tiny_run.work


@pytest.mark.integration
def test_data_stage(work: Path) -> None:
    for dataset in (*DATASETS, FULL):
        folder = work / "results" / "data" / dataset
        report = json.loads((folder / "data_report.json").read_text())
        sizes = report["split"]["sizes"]
        for split in ("train", "dev", "test"):
            records = list(read_jsonl(folder / f"{split}.jsonl"))
            assert len(records) == sizes[split] > 0
        assert (work / "results" / "logs" / "prepare_dataset" / f"{dataset}.log").exists()
        assert (work / "results" / "benchmarks" / "prepare_dataset" / f"{dataset}.tsv").exists()
        assert (folder / "codes.tsv").read_text().startswith("code\tkind\tdescription")
    top50 = json.loads((work / "results/data/mimic3_50/data_report.json").read_text())
    assert top50["split"]["source"].startswith("seeded patient-level split")
    rare = json.loads((work / "results/data/rare50/data_report.json").read_text())
    assert rare["split"]["source"] == "split files"
    assert rare["split"]["sizes"] == {"train": 60, "dev": 4, "test": 8}


@pytest.mark.integration
def test_mimic4_icd10_dataset(work: Path) -> None:
    """The MIMIC-IV dataset: ICD-10 admissions only, labels of its counted code list, Edin et
    al.'s split file (generated), ICD-10 parents in codes.tsv, its own columns in the tables."""
    folder = work / f"results/data/{FULL}"
    report = json.loads((folder / "data_report.json").read_text())
    assert report["source"] == "MIMIC-IV v2.2" and report["icd_version"] == 10
    assert report["split"]["source"] == "split files"
    assert report["split"]["files"]["dev"].endswith("splits/mimic4_icd10_split.csv")
    # the split file lists 38 / 5 / 8 admissions; 3 train ones carry no listed code
    assert report["split"]["sizes"] == {"train": 35, "dev": 5, "test": 8}
    assert report["split"]["lost_every_label"]["train"]["count"] == 3
    assert report["code_tables"]["rows_of_the_other_icd_version"] > 0  # ICD-9 stays skipped
    listed = {c.code for c in read_code_list(folder / "code_list.txt", version=10)}
    assert len(listed) == report["n_codes"] > 50
    labels = {c for s in ("train", "dev", "test") for r in read_jsonl(folder / f"{s}.jsonl")
              for c in r["labels"]}  # fmt: skip
    assert labels <= listed and any(len(c) == 7 for c in labels)  # PCS codes among them
    rows = {line.split("\t")[0]: line.split("\t") for line in
            (folder / "codes.tsv").read_text().splitlines()[1:]}  # fmt: skip
    assert rows["I50.9"][3:] == ["I50", "Heart failure"]
    assert rows["I10"][3] == "I10-I16" and rows["02HV33Z"][3] == "02H"
    table1 = (work / "results/tables/table1_main.tex").read_text()
    assert "MIMIC-IV-ICD10-full" in table1


@pytest.mark.integration
def test_concepts_sections_and_guard(work: Path) -> None:
    for dataset in DATASETS:
        concepts = work / "results" / "concepts" / dataset
        summary = json.loads((concepts / "dedup_summary.json").read_text())
        assert summary["kept"]["parent"] > 0 and summary["kept"]["leaf"] > 0
        code_map = json.loads((concepts / "code_concepts.json").read_text())
        assert all(v["leaf"] and v["parent"] for v in code_map.values())
        coverage = json.loads((concepts / "coverage.json").read_text())
        assert 0.5 < coverage["overall"]["share"] <= 1.0
        assert (concepts / "coverage.png").stat().st_size > 0
        titles = (work / "results" / "sections" / dataset / "section_titles.tsv").read_text()
        assert "history of present illness" in titles
        guard = np.load(work / "results" / "privacy" / dataset / "note_shingles.npy")
        assert guard.dtype == np.uint64 and guard.ndim == 1  # hashes only, no text
    # the concept counts are logged beside the paper's
    log = (work / "results/logs/dedup_concepts/mimic3_50.log").read_text()
    assert "paper: 325 = 229 parent + 96 leaf" in log


@pytest.mark.integration
def test_stage1_adapter_and_scores(work: Path) -> None:
    for dataset in DATASETS:
        sizes = json.loads((work / f"results/data/{dataset}/data_report.json").read_text())
        sizes = sizes["split"]["sizes"]
        adapter = work / "results" / "adapters" / dataset / "tiny_llama" / "concept"
        provenance = json.loads((adapter / "provenance.json").read_text())
        assert provenance["lora"]["r"] == 32 and len(provenance["loss_curve"]) == 4
        assert (adapter / "adapter_model.safetensors").exists()
        scores = work / "results" / "scores" / dataset / "tiny_llama" / "dev.tsv"
        rows = scores.read_text().splitlines()
        concepts = work / "results" / "concepts" / dataset / "concepts.tsv"
        n_concepts = len(concepts.read_text().splitlines()) - 1
        assert rows[0] == "hadm_id\tconcept_id\tp_yes"
        assert len(rows) - 1 == sizes["dev"] * n_concepts
        assert all(0.0 <= float(r.split("\t")[2]) <= 1.0 for r in rows[1:])


@pytest.mark.integration
def test_stage2_adapters_and_predictions(work: Path) -> None:
    for dataset in DATASETS:
        sizes = json.loads((work / f"results/data/{dataset}/data_report.json").read_text())
        sizes = sizes["split"]["sizes"]
        # one trained label adapter per variant (Appendix A settings) ...
        for variant in ("direct", "leaf", "cec"):
            label = work / "results/adapters" / dataset / "tiny_llama" / f"label_{variant}/seed13"
            prov = json.loads((label / "provenance.json").read_text())
            assert prov["lora"]["alpha"] == 128 and prov["lora"]["targets"] == ["k_proj", "v_proj"]
            assert prov["template"].startswith("direct" if variant == "direct" else "label")
            assert len(prov["loss_curve"]) == 3 and (label / "loss_curve.png").exists()
        # ... and one probability per (admission, code) for every method
        n_codes = len((work / "results/data" / dataset / "codes.tsv").read_text().splitlines()) - 1
        preds = {}
        for method in ("direct_zeroshot", "direct_ft", "leaf_concepts", "cec_k3", "cec_k6"):
            path = work / "results/predictions" / dataset / "tiny_llama" / method / "seed13/dev.tsv"
            rows = path.read_text().splitlines()
            assert rows[0] == "hadm_id\tcode\tprob"
            assert len(rows) - 1 == sizes["dev"] * n_codes
            preds[method] = [float(r.split("\t")[2]) for r in rows[1:]]
            assert all(0.0 <= p <= 1.0 for p in preds[method])
        assert preds["cec_k3"] != preds["cec_k6"]  # k changes the prompts
        assert preds["direct_zeroshot"] != preds["direct_ft"]  # the adapter changes answers


# The adapters tests/config/tiny.yaml trains on the paper's path: a 4-bit NF4 base with an
# 8-bit AdamW (its `lora_overrides`); every other adapter is full precision with AdamW.
QLORA_ADAPTERS = {
    (FULL, "concept"): "paged_adamw_8bit",
    **{("rare50", f"label_{v}/seed13"): "adamw_8bit" for v in ("direct", "leaf", "cec")},
}


@pytest.mark.integration
def test_qlora_adapters_go_through_the_rules(work: Path) -> None:
    """The override reaches only the adapters it names, their provenance says 4-bit, and
    the jobs that score with them load a 4-bit base (their logs say so; no other does)."""
    adapters = sorted((work / "results/adapters").glob("*/tiny_llama/**/provenance.json"))
    assert len(adapters) == 4 * (len(DATASETS) + 1)  # and the full code set's
    for path in adapters:
        folder = path.parent.relative_to(work / "results/adapters")
        dataset, kind = folder.parts[0], "/".join(folder.parts[2:])
        prov = json.loads(path.read_text())
        optimizer = QLORA_ADAPTERS.get((dataset, kind))
        if optimizer is None:
            assert prov["qlora"] is False and prov["quantization"] is None, folder
            assert prov["lora"]["optimizer"] == "adamw", folder
            continue
        assert prov["qlora"] is True and prov["lora"]["optimizer"] == optimizer, folder
        quant = prov["quantization"]
        assert (quant["bits"], quant["quant_type"], quant["compute_dtype"]) == (4, "nf4", "float32")
    marker = "scoring on a 4-bit nf4 base"
    four_bit = {
        log.relative_to(work / "results/logs").as_posix()
        for log in (work / "results/logs").glob("**/*.log")
        if marker in log.read_text()
    }
    assert f"score_concepts/{FULL}/tiny_llama/dev.log" in four_bit
    assert all(
        name.startswith((f"score_concepts/{FULL}/", "predict_labels/rare50/")) for name in four_bit
    ), four_bit
    for method in ("direct_ft", "leaf_concepts", "cec"):  # cec: cec_k3..cec_k6 in one job
        assert f"predict_labels/rare50/tiny_llama/{method}/seed13/dev.log" in four_bit, method


def _job_spans(logs: Path) -> dict[str, tuple[float, float, int]]:
    """(start, end, threads) of every job, from its own log's first and last lines."""

    def stamp(line: str) -> float:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    spans = {}
    for path in sorted(logs.rglob("*.log")):
        lines = path.read_text(encoding="utf-8").splitlines()
        started = next(line for line in lines if STARTED_LINE in line)
        ended = next(line for line in reversed(lines) if MODULES_LINE in line)
        spans[str(path.relative_to(logs))] = (
            stamp(started),
            stamp(ended),
            int(started.rsplit(STARTED_LINE, 1)[1]),
        )
    return spans


def _local_rules() -> set[str]:
    """The Snakefile's `localrules:` (they run where Snakemake runs, beside SLURM jobs)."""
    text = (REPO / "Snakefile").read_text(encoding="utf-8")
    block = text.split("localrules:", 1)[1].split("\n\n", 1)[0]
    return {name.strip() for name in block.replace("\n", " ").split(",") if name.strip()}


def test_the_slurm_profile_caps_every_local_rule() -> None:
    """Each local rule claims the profile's local_cpus (Snakemake itself does not hold local
    jobs to local-cores in cluster mode), and the cap is local-cores."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text(encoding="utf-8"))
    capped = {rule for rule, res in profile["set-resources"].items() if "local_cpus" in res}
    assert capped == _local_rules() - {"all"}
    assert profile["resources"]["local_cpus"] == profile["local-cores"]


@pytest.mark.integration
def test_never_more_threads_than_cores(tiny_run: TinyRun) -> None:
    """From the jobs' own logs: the threads of the jobs that ran at once never exceed the
    cores Snakemake was given (2 locally; the SLURM node's CPUs for cluster jobs)."""
    tiny_run.require_success()
    spans = _job_spans(tiny_run.work / "results" / "logs")
    assert len(spans) >= 40  # every job of the tiny run wrote its log
    groups: dict[str, dict[str, tuple[float, float, int]]] = {"local": {}, "cluster": {}}
    local = _local_rules() if tiny_run.executor == "slurm" else None
    for name, span in spans.items():
        rule = name.split("/", 1)[0].removesuffix(".log")  # logs/summary.log: rule summary
        on = "local" if local is None or rule in local else "cluster"
        groups[on][name] = span
    limits = {"local": 2, "cluster": os.cpu_count() or 1}
    for on, jobs in groups.items():
        if not jobs:
            continue
        times = {name: (start, end) for name, (start, end, _) in jobs.items()}
        threads = {name: n for name, (_, _, n) in jobs.items()}
        assert peak(times, threads) <= limits[on], (on, jobs)
    assert any(n > 0 for n in (len(g) for g in groups.values()))


@pytest.mark.integration
def test_every_llm_job_logs_what_it_computed(work: Path) -> None:
    """One compute line per LLM job (read by benchmarks/bench_demo_rules.py): training
    computes exactly the minimum (one row per step, no padding), scoring and prediction
    stay within the efficiency goal of 1.5x the minimum."""
    logs = {
        rule: sorted((work / "results/logs" / rule).rglob("*.log"))
        for rule in ("train_concept_model", "score_concepts", "train_label_model", "predict_labels")
    }
    assert all(logs.values())
    for rule, paths in logs.items():
        for path in paths:
            lines = path.read_text().splitlines()
            found = [f for f in map(parse_compute, lines) if f is not None]
            assert len(found) == 1, path
            figures = found[0]
            assert figures["minimum_tokens"] > 0 and figures["threads"] >= 1, path
            if rule.startswith("train"):
                assert figures["kind"] == "train"
                assert figures["positions_computed"] == figures["minimum_tokens"], path
            else:
                assert figures["kind"] == "score"
                assert 1.0 <= figures["positions_per_minimum"] <= 1.5, (path, figures)


@pytest.mark.integration
def test_every_output_has_the_same_mode(work: Path) -> None:
    """Adapter weights were written 0600 while every other output was 0644: on a shared
    cluster file system others could read the results but not the models."""
    reference = stat.S_IMODE((work / "results/data/mimic3_50/data_report.json").stat().st_mode)
    modes = {
        str(p.relative_to(work)): stat.S_IMODE(p.stat().st_mode)
        for p in (work / "results").rglob("*")
        if p.is_file()
    }
    assert any(name.endswith(".safetensors") for name in modes)
    odd = {name: oct(mode) for name, mode in modes.items() if mode != reference}
    assert not odd, odd


@pytest.mark.integration
def test_nothing_left_to_do_and_no_note_text_in_logs(work: Path) -> None:
    again = _run(["all", "-n", "--configfile", "tests/config/tiny.yaml"], work)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    notes = [
        rec["text"]
        for split in ("train", "dev", "test")
        for rec in read_jsonl(work / "results/data/mimic3_50" / f"{split}.jsonl")
    ]
    logs = "\n".join(
        p.read_text(errors="replace") for p in (work / "results" / "logs").rglob("*.log")
    )
    assert logs  # the check below reads real logs
    for note in notes:
        for line in note.splitlines():
            if len(line.split()) >= 8:
                assert line not in logs


@pytest.mark.integration
def test_cec_code_on_a_dev_note(work: Path, tmp_path: Path) -> None:
    """`cec code` on a dev note with the adapters the run trained, with no network."""
    import socket

    from cec.cli import main

    record = next(iter(read_jsonl(work / "results/data/rare50/dev.jsonl")))
    note = tmp_path / "note.txt"
    note.write_text(record["text"])
    args = [
        "code",
        str(note),
        "--dataset",
        "rare50",
        "--backbone",
        "tiny_llama",
        "--configfile",
        str(work / "tests/config/tiny.yaml"),
        "--results",
        str(work / "results"),
    ]

    def no_network(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("cec code tried to open a network connection")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket, "create_connection", no_network)
        import io
        from contextlib import redirect_stderr, redirect_stdout

        err = io.StringIO()
        with redirect_stderr(err):
            assert main(args) == 2  # the note is over the 128-token budget ...
        assert "budget is 128" in err.getvalue() and "--truncate" in err.getvalue()
        out = io.StringIO()
        with redirect_stdout(out):
            assert main([*args, "--truncate", "--json"]) == 0  # ... unless cut on purpose
        result = json.loads(out.getvalue())
        codes = (work / "results/data/rare50/codes.tsv").read_text().splitlines()[1:]
        assert len(result["codes"]) == len(codes) and result["truncated"]
        probs = [c["prob"] for c in result["codes"]]
        assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
        top = result["codes"][0]
        assert 1 <= len(top["concepts"]) <= 2 + 6
        assert {e["answer"] for e in top["concepts"]} <= {"yes", "no"}
        assert all(e["answer"] == "no" for e in top["concepts"] if e["of"] == "another code")
        text = io.StringIO()
        with redirect_stdout(text):
            assert main([*args, "--truncate", "--all"]) == 0
        assert top["title"] in text.getvalue()  # the report names codes by their titles


@pytest.mark.integration
def test_evaluation_outputs_and_single_table(work: Path) -> None:
    """Metrics, the four tables, figures, summary; one table alone redoes nothing."""
    for dataset in DATASETS:
        m = json.loads((work / f"results/metrics/{dataset}/tiny_llama/cec_k6.json").read_text())
        assert m["threshold_source"].startswith("dev") and m["n_seeds"] == 1
        assert 0 <= m["f1_micro"] <= 1 and "ci95" in m["per_seed"]["13"]
    for name in ("table1_main", "table2_ablation", "table3_concepts", "table4_auc"):
        tex = (work / f"results/tables/{name}.tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex
    assert (work / "results/figures/rare50/tiny_llama/pr_curves.pdf").stat().st_size > 0
    assert "Table 2" in (work / "results/summary.md").read_text()
    dry = _run(
        ["results/tables/table2_ablation.tex", "-n", "--configfile", "tests/config/tiny.yaml"], work
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr


@pytest.mark.integration
def test_report_holds_the_tables_and_no_note_text(tiny_run: TinyRun, tmp_path: Path) -> None:
    import base64
    import re

    work = tiny_run.copy_to(tmp_path / "wf")
    report = _run(["--report", "results/report.html", "--configfile", CONFIG], work)
    assert report.returncode == 0, report.stderr[-2000:]
    html = (work / "results/report.html").read_text(errors="replace")
    blobs = [html]
    for blob in re.findall(r"base64,([A-Za-z0-9+/=]{16,})", html):
        blobs.append(base64.b64decode(blob + "===").decode("utf-8", errors="replace"))
    everything = "\n".join(blobs)
    assert "table2_ablation" in everything  # the tables are in the report
    lines = 0
    for split in ("train", "dev", "test"):
        for rec in read_jsonl(work / "results/data/rare50" / f"{split}.jsonl"):
            for line in rec["text"].splitlines():
                if len(line.split()) >= 8:
                    lines += 1
                    assert line not in everything
    assert lines > 100  # the check compared real note lines


@pytest.mark.integration
def test_template_edit_reruns_only_its_readers(tiny_run: TinyRun, tmp_path: Path) -> None:
    """A changed prompt template re-runs the rules that read it (and what follows), only."""
    import re

    work = tiny_run.copy_to(tmp_path / "wf")
    template = work / "src/cec/resources/prompts/label_question_v1.jinja2"
    template.write_text(template.read_text() + "{#- edited -#}\n")
    dry = _run(["all", "-n", "--configfile", "tests/config/tiny.yaml"], work)
    jobs = set(re.findall(r"^(\w+)\s+\d+$", dry.stdout, flags=re.M)) - {"total", "all"}
    assert {"train_label_model", "predict_labels", "predict_cec"} <= jobs, dry.stdout
    assert not jobs & {"train_concept_model", "score_concepts", "prepare_dataset", "dedup_concepts"}
    # direct coding does not read this template: none of its jobs is redone
    assert "variant=direct" not in dry.stdout and "method=direct" not in dry.stdout


def _bad_config(tmp_path: Path, edit) -> subprocess.CompletedProcess[str]:
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "tests" / "config" / "tiny.yaml").read_text())
    edit(config)
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    return _run(["all", "-n", "--configfile", "config/bad.yaml"], work)


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    def edit(c):
        c["datasets"]["rare50"]["split_sed"] = 3

    result = _bad_config(tmp_path, edit)
    assert result.returncode != 0
    assert "split_sed" in result.stdout + result.stderr


def test_missing_config_key_is_named(tmp_path: Path) -> None:
    def edit(c):
        del c["mimic"]["synthetic"]["admissions"]

    result = _bad_config(tmp_path, edit)
    assert result.returncode != 0
    assert "'admissions' is a required property" in result.stdout + result.stderr


def test_default_and_paper_configs_are_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snakemake.utils import validate

    monkeypatch.chdir(REPO)  # a `base` is named from the working directory
    for path in WORKFLOW_CONFIGS:
        config = with_base(yaml.safe_load(path.read_text()))
        validate(config, str(SCHEMA))
    raw = yaml.safe_load((REPO / "config" / "mimic3.yaml").read_text())
    # the paper's constants live in the schema, once: the paper config adds only what
    # Appendix A leaves open (gradient checkpointing, from the full-scale rehearsal)
    for stage in ("stage1", "stage2"):
        assert set(raw[stage].get("lora", {})) <= {"gradient_checkpointing"}, stage
    paper = load_config(REPO / "config" / "mimic3.yaml")
    assert paper["stage1"]["backbones"] == ["llama3_8b", "gemma_7b"]
    assert paper["stage1"]["steps"] == {"default": 100, "gemma_7b": 500}  # Appendix A
    lora = paper["stage1"]["lora"]
    assert (lora["r"], lora["alpha"], lora["grad_accum"], lora["lr"]) == (32, 32, 4, 2e-4)
    assert lora["optimizer"] == "paged_adamw_8bit"
    assert paper["concepts"]["gamma"] == 0.83 and paper["stage2"]["trainset"]["k"] == 5


def test_a_configfile_run_never_inherits_the_demo(tmp_path: Path) -> None:
    """`--configfile config/mimic3.yaml` replaces the demo config instead of being merged
    over it (Snakefile: the demo applies only without a config), and the schema's defaults
    are the paper's values, not the demo's: no synthetic data, no demo learning rate,
    batch or prompt."""
    demo = load_config(REPO / "config" / "config.yaml")
    paper = load_config(REPO / "config" / "mimic3.yaml")
    assert "synthetic" in demo["mimic"] and "synthetic" not in paper["mimic"]
    for block in ("stage1", "stage2"):
        for key in ("lr", "grad_accum", "optimizer"):
            assert paper[block]["lora"][key] != demo[block]["lora"][key], (block, key)
    assert paper["stage2"]["templates"]["label"] == "label_question_v1.jinja2"  # Fig. 4
    assert paper["note_view"] == "full" != demo["note_view"]
    # a dry run of the paper's config with stand-ins for the data and the models: it plans
    # the real-data jobs and nothing of the synthetic demo
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "config" / "mimic3.yaml").read_text())
    mimic = work / "mimic"
    mimic.mkdir()
    for table in ("NOTEEVENTS", "DIAGNOSES_ICD", "PROCEDURES_ICD", "D_ICD_DIAGNOSES",
                  "D_ICD_PROCEDURES"):  # fmt: skip
        (mimic / f"{table}.csv.gz").write_bytes(b"")
    config["mimic"]["dir"] = str(mimic)
    for name, dataset in config["datasets"].items():
        for split in ("train", "dev", "test"):
            path = work / "splits" / name / f"{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("1\n")
            dataset["split_files"][split] = str(path)
    for name, entry in config["backbones"].items():
        (work / "models" / name).mkdir(parents=True)
        entry["path"] = str(work / "models" / name)
    (work / "config" / "paper.yaml").write_text(yaml.safe_dump(config))
    dry = _run(["all", "-n", "--configfile", "config/paper.yaml"], work)
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text[-3000:]
    assert "rule prepare_dataset" in text and "rule train_concept_model" in text
    assert "synth_mimic" not in text and "results/synthetic" not in text
    # the label jobs read Fig. 4 (the schema's default), not the demo's compact prompt
    assert "label_question_v1.jinja2" in text and "compact" not in text


def test_mimic4_config_plans_counted_lists_and_codes_the_full_sets_by_reranking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config/mimic4.yaml on stand-in tables: it keeps mimic3.yaml's models and settings
    (its base), counts each code list from hosp/, and codes every dataset: the 50-code
    sets directly, the *_full sets by re-ranking their retrieved candidates (with the
    bag-of-words baseline beside them)."""
    work = copy_workflow(tmp_path)
    monkeypatch.chdir(work)  # a base is named from the working directory
    config = with_base(yaml.safe_load((work / "config" / "mimic4.yaml").read_text()))
    base = yaml.safe_load((work / "config" / "mimic3.yaml").read_text())
    assert config["stage2"] == base["stage2"] and config["backbones"] == base["backbones"]
    assert config["concepts"]["recordings"] == "recordings/mimic4/{dataset}.jsonl"
    root = work / "mimic-iv"
    for folder, table in (("hosp", "diagnoses_icd"), ("hosp", "procedures_icd"),
                          ("hosp", "d_icd_diagnoses"), ("hosp", "d_icd_procedures"),
                          ("note", "discharge")):  # fmt: skip
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{table}.csv.gz").write_bytes(b"")
    config["mimic4"]["dir"] = str(root)
    for dataset in config["datasets"].values():
        split = work / "splits" / Path(dataset["split_files"]["edin"]).name
        split.parent.mkdir(exist_ok=True)
        split.write_bytes(b"")
        dataset["split_files"]["edin"] = str(split)
    for name, entry in config["backbones"].items():
        (work / "models" / name).mkdir(parents=True)
        entry["path"] = str(work / "models" / name)
    (work / "config" / "paper4.yaml").write_text(yaml.safe_dump(config))
    dry = _run(["all", "-n", "--configfile", "config/paper4.yaml"], work)
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text[-3000:]
    for dataset in ("mimic4_icd9_50", "mimic4_icd10_50", "mimic4_icd9_full", "mimic4_icd10_full"):
        assert f"results/data/{dataset}/code_list.txt" in text, dataset
        assert f"results/data/{dataset}/data_report.json" in text, dataset
        full = "full" in dataset
        assert f"results/concepts/{dataset}/" in text, dataset
        assert f"results/metrics/{dataset}/" in text, dataset
        assert (f"results/candidates/{dataset}/train.tsv" in text) == full, dataset
        assert (f"results/metrics/{dataset}/bow/bow_lr.json" in text) == full, dataset
    assert "synth_mimic" not in text and "results/synthetic" not in text
    assert "rule train_concept_model" in text


def test_mimic4_demo_plans_the_synthetic_mimic4_only(tmp_path: Path) -> None:
    """config/demo_mimic4.yaml over its base, the demo: the synthetic MIMIC-IV and its one
    dataset, the demo's model, none of the MIMIC-III datasets."""
    work = copy_workflow(tmp_path)
    result = _run(["all", "-n", "--configfile", "config/demo_mimic4.yaml"], work)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-2000:]
    assert "rule synth_mimic4" in text and "rule synth_mimic:" not in text
    assert "results/scores/mimic4_icd10_50/smollm2/test.tsv" in text
    assert "mimic3_50" not in text and "rare50" not in text


def test_gemma_demo_layers_over_the_demo(tmp_path: Path) -> None:
    work = copy_workflow(tmp_path)
    result = _run(
        ["all", "-n", "--configfile", "config/config.yaml", "config/demo_gemma.yaml"],
        work,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "results/scores/mimic3_50/gemma3_270m/test.tsv" in result.stdout


def test_lint_and_format_are_clean() -> None:
    lint = _run(["--lint"], REPO)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    bindir = Path(sys.executable).parent
    fmt = subprocess.run(
        [str(bindir / "snakefmt"), "--check", "Snakefile", "rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr
    ruff = subprocess.run(
        [str(bindir / "ruff"), "check", "src", "tests", "workflow", "benchmarks", "tools"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout
