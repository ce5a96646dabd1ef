"""Stage 1 end to end: train the concept-relevance LoRA, then score notes x concepts."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cec.llm.backbones import Backbone
from cec.llm.cpu_dtype import cpu_dtype_here
from cec.llm.loading import load_base_model, load_scoring_model
from cec.llm.lora import AdapterRun, LoraSettings, TrainingFiles, TrainingOptions, fit_adapter
from cec.llm.prompting import CutStats, PromptEncoder, QuestionTemplate
from cec.llm.token_meter import TokenMeter, log_compute, model_dtype
from cec.llm.yesno import score_shared_prefix
from cec.plumbing.artifacts import read_concept_texts, scores_writer
from cec.plumbing.errors import InputError
from cec.plumbing.io import read_dataset, read_jsonl, write_json
from cec.sections import NoteView
from cec.stage1.trainset import gold_concepts

log = logging.getLogger(__name__)
TEMPLATE = "concept_question_v1.jinja2"


def rank_auc(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half."""
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if not pos or not neg:
        return None
    ordered = sorted(pairs, key=lambda t: t[0])
    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # average 1-based rank of the tie block
        rank_sum += mid * sum(1 for _, y in ordered[i:j] if y)
        i = j
    return round((rank_sum - pos * (pos + 1) / 2) / (pos * neg), 4)


def train_concept_model(
    backbone: Backbone,
    files: TrainingFiles,
    lora: LoraSettings,
    options: TrainingOptions | None = None,
) -> dict[str, Any]:
    """Fine-tune the backbone on the pseudo-labelled concept questions; save the adapter."""
    options = options or TrainingOptions()
    view = options.view or NoteView()
    template = options.template or TEMPLATE
    model, tokenizer, device, dtype = load_base_model(
        backbone, files.model_dir, options.device, lora.qlora
    )
    if lora.cpu_autocast is None:
        lora = replace(lora, cpu_autocast=cpu_dtype_here(backbone.cpu_dtype))
    encoder = PromptEncoder(tokenizer, QuestionTemplate.load(template), 0)
    concepts = read_concept_texts(files.concepts_tsv)
    questions = {c: encoder.question(text) for c, text in concepts.items()}
    encoder.note_budget = backbone.note_tokens(encoder.around_note(list(questions.values())))
    backbone = replace(backbone, note_budget=encoder.note_budget)  # as trained, for provenance
    notes = {r["hadm_id"]: r["text"] for r in read_dataset(files.train_jsonl)}
    by_note: dict[str, list[tuple[str, int]]] = {}
    for row in read_jsonl(files.trainset):
        if row["concept_id"] not in concepts:
            raise InputError(f"unknown concept {row['concept_id']}", file=files.trainset)
        by_note.setdefault(str(row["hadm_id"]), []).append((row["concept_id"], int(row["label"])))
    items = []
    truncated = 0
    for hadm in sorted(by_note, key=int):
        if hadm not in notes:
            raise InputError(f"admission {hadm} is not in the train split", file=files.trainset)
        enc = encoder.note(view(notes[hadm]))
        truncated += enc.truncated
        pairs = by_note[hadm]
        items.append((enc.ids, [questions[c] for c, _ in pairs], [y for _, y in pairs]))
    run = AdapterRun(
        stage="concept relevance (stage 1)",
        title=f"stage 1 ({backbone.name}): concept relevance",
        backbone=backbone,
        model_dir=files.model_dir,
        device=device,
        dtype=dtype,
        template=template,
        answer_ids=encoder.answer_ids,
        note_view=view.mode,
        trainset=files.trainset,
        out_dir=files.out_dir,
    )
    return fit_adapter(model, items, truncated, run, lora, options.progress, options.after_step)


@dataclass(frozen=True)
class ScoringFiles:
    """What a stage-1 scoring job reads and writes."""

    model_dir: str | Path
    adapter_dir: str | Path
    split_jsonl: str | Path
    concepts_tsv: str | Path
    code_concepts: Mapping[str, Mapping[str, Sequence[str]]]
    out_tsv: str | Path
    summary_json: str | Path
    # full code sets: each note's retrieved codes (cut at the number to re-rank); only
    # their concepts are asked about. None: every concept, for every note (50-code sets).
    candidates: Mapping[str, Sequence[str]] | None = None


def note_concepts(
    hadm_id: str,
    ids: Sequence[str],
    files: ScoringFiles,
) -> list[str]:
    """The concepts asked about for one note: all of them, or those of its candidates in
    the concept table's order (so a note's rows come out in one canonical order)."""
    if files.candidates is None:
        return list(ids)
    if hadm_id not in files.candidates:
        raise InputError(f"admission {hadm_id} has no candidates", file=files.split_jsonl)
    wanted = set(gold_concepts(files.candidates[hadm_id], files.code_concepts))
    return [c for c in ids if c in wanted]


def score_notes(
    backbone: Backbone,
    files: ScoringFiles,
    *,
    view: NoteView = NoteView(),
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """p(yes) for every (admission, concept) (for a full code set: every concept of the
    note's candidate codes); accuracy against the gold-code pseudo-labels."""
    model, tokenizer, provenance = load_scoring_model(
        backbone, files.model_dir, files.adapter_dir, device
    )
    assert provenance is not None
    encoder = PromptEncoder(tokenizer, QuestionTemplate.load(provenance["template"]), 0)
    if list(encoder.answer_ids) != provenance["answer_token_ids"]:
        raise InputError("the adapter was trained with other answer tokens", file=files.adapter_dir)
    concepts = read_concept_texts(files.concepts_tsv)
    ids = list(concepts)
    questions = {c: encoder.question(concepts[c]) for c in ids}
    encoder.note_budget = backbone.note_tokens(encoder.around_note(list(questions.values())))
    cut = CutStats(encoder.note_budget)
    records = list(read_dataset(files.split_jsonl))
    correct = positives = true_pos = pred_pos = asked = 0
    pairs: list[tuple[float, bool]] = []
    meter = TokenMeter(model)
    start = time.perf_counter()
    with scores_writer(files.out_tsv) as write_score:
        for rec in tqdm(
            records,
            desc=f"scoring {Path(files.split_jsonl).stem}",
            unit="note",
            disable=not progress,
            file=sys.stderr,
            mininterval=5.0,
        ):
            enc = encoder.note(view(rec["text"]))
            cut.add(enc)
            mine = note_concepts(str(rec["hadm_id"]), ids, files)
            asking = [questions[c] for c in mine]
            probs = score_shared_prefix(model, enc.ids, asking, encoder.answer_ids, batch_size)
            meter.minimum += len(enc.ids) + sum(len(q) for q in asking)
            asked += len(mine)
            gold = set(gold_concepts(rec["labels"], files.code_concepts))
            for cid, p in zip(mine, probs, strict=True):
                write_score(rec["hadm_id"], cid, p)
                y, yhat = cid in gold, p > 0.5
                pairs.append((p, y))
                correct += y == yhat
                positives += y
                pred_pos += yhat
                true_pos += y and yhat
    n = asked
    negatives = n - positives
    true_neg = correct - true_pos
    summary = {
        "backbone": backbone.name,
        "split": Path(files.split_jsonl).stem,
        "notes": len(records),
        "concepts": len(ids),
        "questions": n,
        "candidates": files.candidates is not None,
        "prompt_tokens_per_note": round(meter.minimum / len(records), 1) if records else None,
        **cut.as_dict(),  # what the model read: budget, notes cut, share of tokens lost
        "seconds": round(time.perf_counter() - start, 1),
        "pseudo_label_accuracy": round(correct / n, 4) if n else None,
        "pseudo_label_balanced_accuracy": round(
            0.5 * (true_pos / positives + true_neg / negatives), 4
        )
        if positives and negatives
        else None,
        "pseudo_label_auc": rank_auc(pairs),
        "pseudo_positive_share": round(positives / n, 4) if n else None,
        "predicted_yes_share": round(pred_pos / n, 4) if n else None,
    }
    write_json(files.summary_json, summary)
    log_compute(log, meter.summary("score", model_dtype(model), time.perf_counter() - start))
    return summary
