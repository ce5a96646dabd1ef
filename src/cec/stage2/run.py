"""Stage 2 end to end: the label training set, the label LoRA, and predictions."""

from __future__ import annotations

import contextlib
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
from cec.llm.prompting import CutStats
from cec.llm.token_meter import TokenMeter, log_compute, model_dtype
from cec.plumbing.artifacts import read_concept_texts, read_scores
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_write, read_dataset, read_jsonl
from cec.sections import NoteView
from cec.stage2.candidates import split_ranked, with_rest
from cec.stage2.methods import Method, variant_template
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate
from cec.stage2.sampling import CodeConcepts
from cec.stage2.score import LabelScorer
from cec.stage2.trainset import code_titles, concept_view

log = logging.getLogger(__name__)


def train_label_model(
    backbone: Backbone,
    files: TrainingFiles,
    lora: LoraSettings,
    variant: str,
    options: TrainingOptions | None = None,
) -> dict[str, Any]:
    """Fine-tune the label model on the Section 3.4 questions; save the adapter."""
    if files.code_table is None:
        raise ValueError("the label model needs the code table (TrainingFiles.code_table)")
    options = options or TrainingOptions()
    view = options.view or NoteView()
    model, tokenizer, device, dtype = load_base_model(
        backbone, files.model_dir, options.device, lora.qlora
    )
    if lora.cpu_autocast is None:
        lora = replace(lora, cpu_autocast=cpu_dtype_here(backbone.cpu_dtype))
    template = options.template or variant_template(variant)
    encoder = LabelPromptEncoder(tokenizer, LabelTemplate.load(template), 0)
    titles = code_titles(files.code_table)
    concepts = read_concept_texts(files.concepts_tsv)
    notes = {str(r["hadm_id"]): r["text"] for r in read_dataset(files.train_jsonl)}
    by_note: dict[str, list[tuple[list[int], int]]] = {}
    for number, row in enumerate(read_jsonl(files.trainset), start=1):
        if row["code"] not in titles:
            raise InputError(
                f"code {row['code']} is not in the label set", file=files.trainset, row=number
            )
        unknown = [c for c, _ in row["concepts"] if c not in concepts]
        if unknown:
            raise InputError(
                f"unknown concepts {unknown}", file=files.trainset, row=number, field="concepts"
            )
        ids = [t for c, y in row["concepts"] for t in encoder.line(concepts[c], bool(y))]
        ids += encoder.question(titles[row["code"]])
        by_note.setdefault(str(row["hadm_id"]), []).append((ids, int(row["label"])))
    longest = max((len(q) for pairs in by_note.values() for q, _ in pairs), default=0)
    encoder.note_budget = backbone.note_tokens(encoder.around_note(longest))
    backbone = replace(backbone, note_budget=encoder.note_budget)  # as trained, for provenance
    items = []
    truncated = 0
    for hadm in sorted(by_note, key=int):
        if hadm not in notes:
            raise InputError(f"admission {hadm} is not in the train split", file=files.trainset)
        enc = encoder.note(view(notes[hadm]))
        truncated += enc.truncated
        pairs = by_note[hadm]
        items.append((enc.ids, [q for q, _ in pairs], [y for _, y in pairs]))
    run = AdapterRun(
        stage=f"label model (stage 2), variant {variant}",
        title=f"stage 2 ({backbone.name}, {variant})",
        backbone=backbone,
        model_dir=files.model_dir,
        device=device,
        dtype=dtype,
        template=Path(template).name,
        answer_ids=encoder.answer_ids,
        note_view=view.mode,
        trainset=files.trainset,
        out_dir=files.out_dir,
        extra={"variant": variant},
    )
    return fit_adapter(model, items, truncated, run, lora, options.progress, options.after_step)


@dataclass(frozen=True)
class PredictionInputs:
    """The files one prediction job reads (`scores_tsv`: stage-1 answers, None for direct
    coding; `adapter_dir`: None for zero-shot)."""

    model_dir: str | Path
    adapter_dir: str | Path | None
    split_jsonl: str | Path
    scores_tsv: str | Path | None
    code_table: str | Path
    code_concepts: CodeConcepts
    concepts_tsv: str | Path
    # full code sets: each note's retrieved codes, best first (`read_candidates`)
    candidates: Mapping[str, Sequence[str]] | None = None


@dataclass(frozen=True)
class PredictionSettings:
    """How a prediction job runs: the seed of its concept draws, m and the training k
    (Section 3.4), the note view, the packing budget and the device."""

    seed: int
    m: int = 2
    train_k: int = 5
    view: NoteView = NoteView()
    max_tokens: int = 4096
    row_tokens: int = 640
    device: str = "auto"
    template: str | None = None
    progress: bool = True
    rerank: int = 50  # full code sets: how many of a note's candidates the model scores


def predict_split(
    backbone: Backbone,
    methods: Sequence[Method],
    inputs: PredictionInputs,
    outputs: Mapping[str, str | Path],
    settings: PredictionSettings,
) -> dict[str, Any]:
    """P(code) for every (admission, code) of a split, for methods of one variant (they
    share the label model): writes `hadm_id code prob` per method. With candidates (full
    code sets) the model scores a note's first `rerank` candidates and the file lists only
    the codes the retriever ranked (`cec.stage2.candidates`)."""
    variants = {mth.variant for mth in methods}
    if len(variants) != 1:
        raise ValueError(f"methods of one variant per call, got {sorted(variants)}")
    variant = variants.pop()
    model, tokenizer, provenance = load_scoring_model(
        backbone, inputs.model_dir, inputs.adapter_dir, settings.device
    )
    template = settings.template or variant_template(variant)
    if provenance is not None and provenance["template"] != Path(template).name:
        raise InputError(
            f"the adapter was trained with {provenance['template']}", file=inputs.adapter_dir
        )
    encoder = LabelPromptEncoder(tokenizer, LabelTemplate.load(template), 0)
    if provenance is not None and list(encoder.answer_ids) != provenance["answer_token_ids"]:
        raise InputError(
            "the adapter was trained with other answer tokens", file=inputs.adapter_dir
        )
    titles = code_titles(inputs.code_table)
    codes = list(titles)
    cview = concept_view(inputs.code_concepts, codes, variant)
    ks = None if cview is None else sorted({mth.k or settings.train_k for mth in methods})
    concept_text = read_concept_texts(inputs.concepts_tsv)
    shown = [] if cview is None else [concept_text[c] for c in cview.space]
    tail = encoder.longest_tail(shown, titles.values(), 0 if ks is None else settings.m + max(ks))
    encoder.note_budget = backbone.note_tokens(encoder.around_note(tail))
    cut = CutStats(encoder.note_budget)
    scores = (
        read_scores(inputs.scores_tsv)
        if cview is not None and inputs.scores_tsv is not None
        else {}
    )
    scorer = LabelScorer(
        model,
        encoder,
        titles,
        concept_text,
        cview,
        seed=settings.seed,
        m=settings.m,
        max_tokens=settings.max_tokens,
        row_tokens=settings.row_tokens,
    )
    records = list(read_dataset(inputs.split_jsonl))
    meter = TokenMeter(model)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        handles = {
            mth.name: stack.enter_context(atomic_write(outputs[mth.name])) for mth in methods
        }
        for fh in handles.values():
            fh.write("hadm_id\tcode\tprob\n")
        for rec in tqdm(
            records,
            desc=f"labels {Path(inputs.split_jsonl).stem}",
            unit="note",
            disable=not settings.progress,
            file=sys.stderr,
            mininterval=5.0,
        ):
            hadm = str(rec["hadm_id"])
            mine: list[str] | None = None
            rest: list[str] = []
            if inputs.candidates is not None:
                if hadm not in inputs.candidates:
                    raise InputError(f"admission {hadm} has no candidates", file=inputs.split_jsonl)
                mine, rest = split_ranked(inputs.candidates[hadm], titles, settings.rerank)
            p_yes = None
            if cview is not None:
                p_yes = scores.get(hadm)
                needed = (
                    cview.space
                    if mine is None
                    else list(dict.fromkeys(c for code in mine for c in cview.own[code]))
                )
                missing = [c for c in needed if p_yes is None or c not in p_yes]
                if missing:
                    raise InputError(
                        f"admission {hadm} has no stage-1 answer for {len(missing)} concepts "
                        f"(e.g. {missing[:3]})",
                        file=inputs.scores_tsv,
                    )
            enc = encoder.note(settings.view(rec["text"]))
            cut.add(enc)
            result = scorer.score(enc.ids, hadm, ks, p_yes, mine)
            meter.minimum += result.tokens
            for mth in methods:
                probs = result.probs[None if ks is None else (mth.k or settings.train_k)]
                if mine is not None:
                    probs = with_rest(probs, mine, rest)
                written = codes if mine is None else list(probs)
                handles[mth.name].writelines(f"{hadm}\t{c}\t{probs[c]:.6f}\n" for c in written)
    summary = {
        "backbone": backbone.name,
        "variant": variant,
        "methods": [mth.name for mth in methods],
        "split": Path(inputs.split_jsonl).stem,
        "notes": len(records),
        "codes": len(codes),
        "rerank": None if inputs.candidates is None else settings.rerank,
        "prompt_tokens_per_note": round(meter.minimum / len(records), 1) if records else None,
        **cut.as_dict(),
        "seed": settings.seed,
        "seconds": round(time.perf_counter() - start, 1),
    }
    log.info("stage-2 predictions: %s", summary)
    log_compute(log, meter.summary("score", model_dtype(model), time.perf_counter() - start))
    return summary
