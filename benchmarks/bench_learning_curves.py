"""Benchmark: does the demo model learn? Learning curves of stage 1 and the CEC label model.

It builds a synthetic MIMIC-III-50 larger than the demo's (a copy of the workflow, run by
Snakemake up to the data, the concept set, the section titles and the demo model), then
trains with the demo's settings (config/config.yaml) for up to `--steps1` / `--steps2`
steps, and at the steps listed in `--at` (denser early, where the choice of the demo's step
counts is made) evaluates on a fixed held-out sample of dev admissions,
balanced between positives and negatives:

- stage 1: AUC of p(yes) against the gold-code pseudo-labels of (note, concept) pairs;
- stage 2 (CEC, k = 6, stage-1 answers of the finished stage-1 model): F1 at the model's
  own answer (p > 0.5) and AUC against the gold labels of (note, code) pairs.

It prints the curves, names the CPU, and writes JSON and a figure. Run on demand, not a
test (`make bench-learning`; about 40 minutes on 2 cores). Nothing here reads a test split.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_label_scoring import cpu_description  # noqa: E402

from cec import job_params  # noqa: E402
from cec.llm.backbones import Backbone  # noqa: E402
from cec.llm.cpu_dtype import cpu_dtype_here  # noqa: E402
from cec.llm.loading import load_scoring_model  # noqa: E402
from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions  # noqa: E402
from cec.llm.prompting import PromptEncoder, QuestionTemplate  # noqa: E402
from cec.llm.yesno import score_shared_prefix  # noqa: E402
from cec.plumbing.artifacts import read_concept_texts  # noqa: E402
from cec.plumbing.config import load_config  # noqa: E402
from cec.plumbing.io import read_jsonl  # noqa: E402
from cec.sections import NoteView  # noqa: E402
from cec.stage1.run import rank_auc, train_concept_model  # noqa: E402
from cec.stage1.trainset import TrainsetSettings, build_concept_trainset, gold_concepts  # noqa: E402
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate  # noqa: E402
from cec.stage2.run import train_label_model  # noqa: E402
from cec.stage2.sampling import ConceptView  # noqa: E402
from cec.stage2.score import LabelScorer  # noqa: E402
from cec.stage2.trainset import (  # noqa: E402
    build_label_trainset,
    code_titles,
    write_label_trainset,
)

WORKFLOW_PARTS = ["Snakefile", "rules", "workflow", "config", "envs", "profiles", "report",
                  "src/cec/resources"]  # fmt: skip
DATASET = "mimic3_50"


def build_data(work: Path, admissions: int, split: list[int]) -> dict[str, Any]:
    """A copy of the workflow and a larger synthetic MIMIC-III-50, up to the demo model.
    The copy is refreshed on every run, so that a work folder kept from an earlier version
    never runs old rules against the current package."""
    for part in WORKFLOW_PARTS:
        (work / part).parent.mkdir(parents=True, exist_ok=True)
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, work / part, dirs_exist_ok=True)
        else:
            shutil.copy2(src, work / part)
    base = load_config(REPO / "config/config.yaml")
    base["mimic"]["synthetic"].update(admissions=admissions, top50_split=split)
    base["datasets"] = {DATASET: base["datasets"][DATASET]}
    (work / "config/bench.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    name = base["stage1"]["backbones"][0]
    targets = [f"results/data/{DATASET}/{s}.jsonl" for s in ("train", "dev")] + [
        f"results/concepts/{DATASET}/concepts.tsv",
        f"results/sections/{DATASET}/sections_report.json",
        f"results/models/{name}",
    ]
    subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, "--cores", "2",
         "--configfile", "config/bench.yaml"],
        cwd=work, check=True,
    )  # fmt: skip
    return base


def balanced_concepts(records, code_concepts, rng, per_note: int) -> list[tuple[str, str, int]]:
    """(hadm_id, concept_id, pseudo-label): per note, equal positives and negatives."""
    every = sorted({c for e in code_concepts.values() for v in e.values() for c in v})
    out = []
    for rec in records:
        gold = set(gold_concepts(rec["labels"], code_concepts))
        pos = sorted(gold)
        neg = [c for c in every if c not in gold]
        n = min(per_note, len(pos))
        out += [(rec["hadm_id"], c, 1) for c in rng.sample(pos, n)]
        out += [(rec["hadm_id"], c, 0) for c in rng.sample(neg, n)]
    return out


def balanced_codes(records, codes, rng, per_note: int) -> list[tuple[str, str, int]]:
    out = []
    for rec in records:
        pos = sorted(set(rec["labels"]) & set(codes))
        neg = [c for c in codes if c not in set(pos)]
        n = min(per_note, len(pos))
        out += [(rec["hadm_id"], c, 1) for c in rng.sample(pos, n)]
        out += [(rec["hadm_id"], c, 0) for c in rng.sample(neg, n)]
    return out


def f1_at_half(pairs: list[tuple[float, int]]) -> float:
    tp = sum(1 for p, y in pairs if p > 0.5 and y)
    fp = sum(1 for p, y in pairs if p > 0.5 and not y)
    fn = sum(1 for p, y in pairs if p <= 0.5 and y)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=REPO / "results/bench_learning")
    parser.add_argument("--admissions", type=int, default=2000)
    parser.add_argument("--split", default="600,200,10", help="train,dev,test admissions")
    parser.add_argument("--steps1", type=int, default=None, help="default: the last of --at")
    parser.add_argument("--steps2", type=int, default=None, help="default: the last of --at")
    parser.add_argument(
        "--at",
        default="4,8,16,24,32,48,64,96,128,160",
        help="steps after which both stages are evaluated (the last one also ends training)",
    )
    parser.add_argument("--eval-notes", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/figures")
    args = parser.parse_args()
    at_steps = {int(x) for x in args.at.split(",")}
    args.steps1 = args.steps1 or max(at_steps)
    args.steps2 = args.steps2 or max(at_steps)
    torch.set_num_threads(args.threads)
    work = args.work.resolve()
    cfg = build_data(work, args.admissions, [int(x) for x in args.split.split(",")])
    res = work / "results"
    name = cfg["stage1"]["backbones"][0]
    backbone = Backbone.from_config(name, cfg["backbones"][name])
    model_dir = res / "models" / name
    data = res / "data" / DATASET
    concepts_tsv = res / "concepts" / DATASET / "concepts.tsv"
    code_concepts = json.loads((res / "concepts" / DATASET / "code_concepts.json").read_text())
    view = NoteView.from_report(
        cfg["note_view"], res / "sections" / DATASET / "sections_report.json"
    )
    rng = random.Random(13)
    train = list(read_jsonl(data / "train.jsonl"))
    dev = rng.sample(list(read_jsonl(data / "dev.jsonl")), args.eval_notes)
    texts = read_concept_texts(concepts_tsv)
    dtype = cpu_dtype_here(backbone.cpu_dtype)
    print(f"CPU: {cpu_description()}; {args.threads} thread(s); {name} ({dtype})")
    print(f"train {len(train)} admissions; held-out: {len(dev)} dev admissions")
    curves: dict[str, list[dict[str, float]]] = {"stage1": [], "stage2": []}
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    def save_partial() -> None:
        # the points so far, so that a run cut short still leaves its curves
        part = {"cpu": cpu_description(), "threads": args.threads, "curves": curves}
        (args.out / "learning_curves.partial.json").write_text(json.dumps(part, indent=1))

    # stage 1: pseudo-labelled concept questions, the demo's settings
    s1 = cfg["stage1"]
    trainset = work / "bench_concept_train.jsonl"
    rows = build_concept_trainset(train, code_concepts, TrainsetSettings(**s1["trainset"]))
    trainset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    held1 = balanced_concepts(dev, code_concepts, rng, per_note=4)
    template1 = QuestionTemplate.load("concept_question_v1.jinja2")
    lora1 = s1["lora"]
    settings1 = LoraSettings(
        r=lora1["r"], alpha=lora1["alpha"], dropout=lora1["dropout"],
        targets=backbone.lora_targets, steps=args.steps1, grad_accum=lora1["grad_accum"],
        lr=lora1["lr"], seed=s1["trainset"]["seed"], loss=lora1.get("loss", "full_vocab"),
    )  # fmt: skip
    notes = {r["hadm_id"]: r["text"] for r in dev}

    def eval_stage1(step: int, model: Any) -> None:
        if step not in at_steps and step != args.steps1:
            return
        model.eval()
        encoder = PromptEncoder(model_tokenizer[0], template1, backbone.note_budget or 0)
        pairs = []
        with torch.no_grad():
            for hadm in notes:
                mine = [(c, y) for h, c, y in held1 if h == hadm]
                qs = [encoder.question(texts[c]) for c, _ in mine]
                ids = encoder.note(view(notes[hadm])).ids
                probs = score_shared_prefix(model, ids, qs, encoder.answer_ids)
                pairs += [(p, bool(y)) for p, (_, y) in zip(probs, mine, strict=True)]
        model.train()
        auc = rank_auc(pairs)
        curves["stage1"].append(
            {"step": step, "auc": auc, "seconds": time.perf_counter() - started}
        )
        print(f"stage 1 step {step:4d}: AUC {auc} on {len(pairs)} pairs", flush=True)
        save_partial()

    from transformers import AutoTokenizer

    model_tokenizer = [AutoTokenizer.from_pretrained(model_dir)]
    adapter1 = work / "bench_adapters/concept"
    files1 = TrainingFiles(model_dir, trainset, data / "train.jsonl", concepts_tsv, adapter1)
    options1 = TrainingOptions(view, progress=False, after_step=eval_stage1)
    train_concept_model(backbone, files1, settings1, options1)

    # stage-1 answers for the held-out notes, from the finished stage-1 model
    model, tokenizer, _ = load_scoring_model(backbone, model_dir, adapter1, "cpu")
    encoder = PromptEncoder(tokenizer, template1, backbone.note_budget or 0)
    ids_all = list(texts)
    questions = [encoder.question(texts[c]) for c in ids_all]
    p_yes: dict[str, dict[str, float]] = {}
    for hadm, text in notes.items():
        probs = score_shared_prefix(
            model, encoder.note(view(text)).ids, questions, encoder.answer_ids
        )
        p_yes[hadm] = dict(zip(ids_all, probs, strict=True))
    del model

    # stage 2: the CEC label model, the demo's settings
    s2 = cfg["stage2"]
    titles = code_titles(res / "data" / DATASET / "codes.tsv")
    codes = list(titles)
    label_rows = build_label_trainset(train, codes, code_concepts, "cec", s2["seeds"][0],
                                      s2["trainset"]["k"], s2["trainset"]["m"],
                                      s2["trainset"]["false_per_true"])  # fmt: skip
    label_set = work / "bench_label_cec.jsonl"
    write_label_trainset(label_rows, label_set, work / "bench_label_cec_summary.json", {})
    held2 = balanced_codes(dev, codes, rng, per_note=3)
    cview = ConceptView.build(code_concepts, codes, "cec")
    template2 = LabelTemplate.load(s2["templates"]["label"])
    lora2 = {**job_params.stage2_training(s2, name)["lora"], "steps": args.steps2}
    settings2 = LoraSettings(**lora2, seed=s2["seeds"][0])

    def eval_stage2(step: int, model: Any) -> None:
        if step not in at_steps and step != args.steps2:
            return
        model.eval()
        enc = LabelPromptEncoder(model_tokenizer[0], template2, backbone.note_budget or 0)
        pairs = []
        with torch.no_grad():
            for hadm in notes:
                mine = [(c, y) for h, c, y in held2 if h == hadm]
                sub = {c: titles[c] for c, _ in mine}
                scorer = LabelScorer(
                    model, enc, sub, texts, cview, s2["seeds"][0], s2["trainset"]["m"],
                    s2["max_tokens"], s2["row_tokens"],
                )  # fmt: skip
                result = scorer.score(enc.note(view(notes[hadm])).ids, hadm, [6], p_yes[hadm])
                pairs += [(result.probs[6][c], y) for c, y in mine]
        model.train()
        auc = rank_auc([(p, bool(y)) for p, y in pairs])
        f1 = f1_at_half(pairs)
        share_yes = sum(p > 0.5 for p, _ in pairs) / len(pairs)
        curves["stage2"].append({"step": step, "auc": auc, "f1": f1, "share_yes": share_yes,
                                 "seconds": time.perf_counter() - started})  # fmt: skip
        print(f"stage 2 step {step:4d}: AUC {auc}, F1 (p > 0.5) {f1:.3f}, "
              f"says Yes to {100 * share_yes:.0f}% of {len(pairs)} pairs", flush=True)  # fmt: skip
        save_partial()

    files2 = TrainingFiles(
        model_dir, label_set, data / "train.jsonl", concepts_tsv,
        work / "bench_adapters/label_cec", code_table=res / "data" / DATASET / "codes.tsv",
    )  # fmt: skip
    template2 = str(REPO / "src/cec/resources/prompts" / s2["templates"]["label"])
    options2 = TrainingOptions(view, template=template2, progress=False, after_step=eval_stage2)
    train_label_model(backbone, files2, settings2, "cec", options2)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "cpu": cpu_description(), "threads": args.threads, "backbone": name,
        "train_admissions": len(train), "held_out_notes": len(dev),
        "stage1_pairs": len(held1), "stage2_pairs": len(held2), "curves": curves,
    }  # fmt: skip
    (args.out / "learning_curves.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "learning_curves.partial.json").unlink(missing_ok=True)
    plot(curves, args.out / "learning_curves.png", summary)
    print(f"wrote {args.out / 'learning_curves.png'} in {time.perf_counter() - started:.0f} s")


def plot(curves: dict[str, list[dict[str, float]]], path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    one = curves["stage1"]
    axes[0].plot([p["step"] for p in one], [p["auc"] for p in one], marker="o", label="AUC")
    axes[0].set_title(f"Stage 1 ({summary['stage1_pairs']} held-out pairs)")
    two = curves["stage2"]
    steps = [p["step"] for p in two]
    axes[1].plot(steps, [p["auc"] for p in two], marker="o", label="AUC")
    axes[1].plot(steps, [p["f1"] for p in two], marker="s", label="F1 (p > 0.5)")
    axes[1].plot(steps, [p["share_yes"] for p in two], ls=":", label="share answered Yes")
    axes[1].set_title(f"Stage 2, CEC k = 6 ({summary['stage2_pairs']} held-out pairs)")
    for ax in axes:
        ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance (AUC)")
        ax.set_xlabel("optimizer step")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.suptitle(f"{summary['backbone']} on synthetic MIMIC-III-50; {summary['cpu']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
