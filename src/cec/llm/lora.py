"""LoRA fine-tuning of a yes/no answerer, shared by both stages.

A training step takes `grad_accum` question/answer pairs about one note and runs the note
once (see `yesno.shared_prefix_loss`): with LoRA dropout 0 its gradient is that of
accumulating the pairs one by one (Appendix A: gradient accumulation 4, batch 1); with
dropout the masks of one pass differ from those of several, so the two agree in
expectation. It costs a single prefix pass. The loss is the next-token cross-entropy of
the correct answer over the whole vocabulary (the paper appends the answer and
fine-tunes), or optionally a 2-way Yes/No one. The demo's CPU runs fp32 LoRA with torch
AdamW (matmuls optionally under bf16 autocast); the paper's CUDA runs bf16 with 4-bit QLoRA
and paged AdamW 8-bit (bitsandbytes). QLoRA and the 8-bit optimizers run on CPU too
(bitsandbytes >= 0.50), so that the tests exercise the paper's path; there the 4-bit base
computes in fp32, and "paged" means nothing (see `_optimizer`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cec.llm.yesno import shared_prefix_loss
from cec.plumbing.io import atomic_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Group:
    """One optimizer step's worth of pairs about the same note."""

    prefix: list[int]
    questions: list[list[int]]
    labels: list[int]


@dataclass(frozen=True)
class LoraSettings:
    r: int = 32
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    steps: int = 100
    grad_accum: int = 4
    lr: float = 2e-4
    seed: int = 13
    optimizer: str = "adamw"  # see OPTIMIZERS
    qlora: bool = False  # a 4-bit NF4 base (the model must be loaded so: load_base_model)
    cpu_autocast: str | None = None  # e.g. "bfloat16": CPU matmuls in bf16, weights fp32
    loss: str = "full_vocab"  # full_vocab (next-token CE) | yes_no (2-way CE)
    # keep one decoder layer's activations at a time and recompute the rest in the backward
    # pass (QLoRA always does): about a third more compute, and at 8k-token rows on an 8B
    # model the difference between fitting an 80 GB GPU and not (make bench-paper-scale)
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        """Values as the config's YAML gives them (`cec.job_params.stage1_training`,
        `stage2_training`): a list of targets, an integer learning rate."""
        for name, kind in (
            ("r", int),
            ("alpha", int),
            ("dropout", float),
            ("steps", int),
            ("grad_accum", int),
            ("lr", float),
            ("seed", int),
            ("optimizer", str),
            ("qlora", bool),
            ("loss", str),
            ("gradient_checkpointing", bool),
        ):
            object.__setattr__(self, name, kind(getattr(self, name)))
        object.__setattr__(self, "targets", tuple(self.targets))


@dataclass(frozen=True)
class TrainingFiles:
    """What an adapter is trained from and where it goes (`code_table`: stage 2 only)."""

    model_dir: str | Path
    trainset: str | Path
    train_jsonl: str | Path
    concepts_tsv: str | Path
    out_dir: str | Path
    code_table: str | Path | None = None


@dataclass(frozen=True)
class TrainingOptions:
    """How an adapter is trained: the note view (a `cec.sections.NoteView`; None: the whole
    note), device, prompt template (None: the stage's default), progress bar, and a hook
    run after every step (the learning-curve benchmark evaluates there)."""

    view: Any = None
    device: str = "auto"
    template: str | None = None
    progress: bool = True
    after_step: Callable[[int, Any], None] | None = None


@dataclass
class TrainReport:
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0


def compute_dtype(device: str, dtype: str, s: LoraSettings) -> str:
    """The dtype training matmuls run in: the weights' on CUDA, the autocast one on CPU
    (none with QLoRA: its 4-bit base computes in fp32 on CPU, see `train`)."""
    if device == "cuda":
        return dtype
    return _cpu_autocast(s) or dtype


def _cpu_autocast(s: LoraSettings) -> str | None:
    """The CPU autocast dtype of a training step, if any. QLoRA on CPU runs without: its
    base dequantizes to fp32 and computes there (`quantization_4bit`), and the CPU path
    exists to check the paper's CUDA one, so it keeps one dtype throughout."""
    if s.qlora or not s.cpu_autocast or s.cpu_autocast == "float32":
        return None
    return s.cpu_autocast


def make_groups(
    items: Sequence[tuple[list[int], list[list[int]], list[int]]], size: int, steps: int, seed: int
) -> list[Group]:
    """Cut each note's pairs into groups of `size`, then deal groups round-robin over
    seeded note orders until `steps` groups exist (an epoch is one pass over all pairs)."""
    chunks: list[Group] = []
    for prefix, questions, labels in items:
        for i in range(0, len(questions), size):
            chunks.append(Group(prefix, questions[i : i + size], labels[i : i + size]))
    if not chunks:
        raise ValueError("no training pairs")
    out: list[Group] = []
    epoch = 0
    while len(out) < steps:
        order = list(chunks)
        random.Random(f"cec-lora:{seed}:{epoch}").shuffle(order)
        out += order[: steps - len(out)]
        epoch += 1
    return out


def attach_lora(model: Any, s: LoraSettings) -> Any:
    """Wrap the model with LoRA; the adapter's random init is seeded by `s.seed`."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    torch.manual_seed(s.seed)

    if s.qlora:
        # fp32 norms and embeddings, input gradients, and gradient checkpointing, as QLoRA
        # does; non-reentrant checkpointing (torch's recommended form) gives the LoRA
        # gradients of the dequantized model exactly (tests/test_qlora_cpu.py)
        model = prepare_model_for_kbit_training(
            model, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    elif s.gradient_checkpointing:
        # non-reentrant: needs no gradient on the inputs (the embeddings stay frozen) and
        # replays dropout with the RNG state of the first pass, so the gradients are those
        # of the plain backward (tests/test_gradient_checkpointing.py)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=list(s.targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


OPTIMIZERS = ("adamw", "adamw_8bit", "paged_adamw_8bit")


def _optimizer(model: Any, s: LoraSettings) -> Any:
    """torch AdamW, or bitsandbytes' AdamW with 8-bit states (the paper: paged).

    Paged AdamW 8-bit keeps its states in CUDA unified memory, which the driver pages out
    to host RAM under memory pressure instead of failing. On CPU there is nothing to page
    to: bitsandbytes 0.50.2 warns "Paged optimizers are not supported on CPU. Falling back
    to non-paged optimizer behavior." and runs plain AdamW 8-bit, so on CPU
    `paged_adamw_8bit` and `adamw_8bit` are the same optimizer. Either keeps 8-bit
    (blockwise-quantized) states only for tensors of at least 4,096 elements (bitsandbytes'
    `min_8bit_size`); smaller LoRA matrices get 32-bit states."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer in ("paged_adamw_8bit", "adamw_8bit"):
        import bitsandbytes as bnb

        if s.optimizer == "adamw_8bit":
            return bnb.optim.AdamW8bit(params, lr=s.lr)
        if all(p.device.type == "cpu" for p in params):
            log.info("paged_adamw_8bit on CPU: bitsandbytes runs it unpaged (AdamW 8-bit)")
        return bnb.optim.PagedAdamW8bit(params, lr=s.lr)
    if s.optimizer != "adamw":
        raise ValueError(f"unknown optimizer {s.optimizer!r} (one of {', '.join(OPTIMIZERS)})")
    return torch.optim.AdamW(params, lr=s.lr)


def train(
    model: Any,
    groups: Sequence[Group],
    answer_ids: tuple[int, int],
    s: LoraSettings,
    progress: bool = True,
    after_step: Callable[[int, Any], None] | None = None,
) -> TrainReport:
    """Run one optimizer step per group; return the loss curve. `after_step(step, model)`
    runs after every step (the learning-curve benchmark evaluates there; it must leave the
    model as it found it, in train mode)."""
    import torch

    torch.manual_seed(s.seed)
    model.train()
    opt = _optimizer(model, s)
    report = TrainReport()
    start = time.perf_counter()
    on_cpu = next(model.parameters()).device.type == "cpu"
    for group in tqdm(
        groups, desc="LoRA steps", disable=not progress, file=sys.stderr, mininterval=5.0
    ):
        autocast = _cpu_autocast(s) if on_cpu else None
        if autocast is not None:
            context: Any = torch.autocast("cpu", dtype=getattr(torch, autocast))
        else:
            context = contextlib.nullcontext()
        with context:
            loss = shared_prefix_loss(
                model, group.prefix, group.questions, group.labels, answer_ids, s.loss
            )
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss at step {len(report.losses) + 1}")
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        report.losses.append(value)
        report.tokens += len(group.prefix) + sum(len(q) for q in group.questions)
        if after_step is not None:
            after_step(len(report.losses), model)
    report.seconds = time.perf_counter() - start
    model.eval()
    return report


def save_adapter(
    model: Any, out_dir: str | Path, provenance: dict[str, Any], losses: Sequence[float], title: str
) -> None:
    """PEFT adapter + provenance.json + loss-curve figure, all or nothing."""
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
        plot_loss(losses, tmp / "loss_curve.png", title)


def plot_loss(losses: Sequence[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, lw=1, alpha=0.5, label="step loss")
    if len(losses) >= 5:
        k = max(2, len(losses) // 10)
        smooth = [
            sum(losses[max(0, i - k + 1) : i + 1]) / len(losses[max(0, i - k + 1) : i + 1])
            for i in range(len(losses))
        ]
        ax.plot(range(1, len(losses) + 1), smooth, lw=2, label=f"mean of last {k}")
    ax.axhline(math.log(2), color="grey", ls="--", lw=1, label="chance (ln 2)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("2-way cross-entropy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def settings_dict(s: LoraSettings) -> dict[str, Any]:
    d = asdict(s)
    d["targets"] = list(s.targets)
    return d


@dataclass(frozen=True)
class AdapterRun:
    """What one adapter is trained from and for: the provenance an adapter carries (enough
    to tell two adapters apart and to redo one), minus what training itself measures."""

    stage: str  # e.g. "concept relevance (stage 1)"
    title: str  # of the loss plot
    backbone: Any  # cec.llm.backbones.Backbone, with the note budget as trained
    model_dir: str | Path
    device: str
    dtype: str
    template: str
    answer_ids: tuple[int, int]
    note_view: str
    trainset: str | Path
    out_dir: str | Path
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. the label variant


def adapter_provenance(
    run: AdapterRun,
    s: LoraSettings,
    notes: int,
    truncated: int,
    report: TrainReport,
    quantization: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a trained adapter came from: enough to tell two adapters apart and to redo one.
    `quantization` (`cec.llm.backbones.quantization_of` the base; None: full precision)
    tells scoring to load the base in 4-bit again (`cec.llm.loading.load_scoring_model`)."""
    import hashlib

    return {
        "stage": run.stage,
        "backbone": run.backbone.name,
        "base_model": str(run.model_dir),
        "revision": run.backbone.revision,
        "device": run.device,
        "dtype": run.dtype,
        "qlora": s.qlora,
        "quantization": None if quantization is None else dict(quantization),
        "lora": settings_dict(s),
        "template": run.template,
        "answer_token_ids": list(run.answer_ids),
        "note_budget_tokens": run.backbone.note_budget,
        "note_view": run.note_view,
        "notes": notes,
        "notes_truncated": truncated,
        "share_truncated": round(truncated / max(1, notes), 4),
        "trainset_sha256": hashlib.sha256(Path(run.trainset).read_bytes()).hexdigest(),
        "train_seconds": round(report.seconds, 1),
        "train_tokens": report.tokens,
        "loss_curve": [round(x, 5) for x in report.losses],
        **run.extra,
    }


def fit_adapter(
    model: Any,
    items: Sequence[tuple[list[int], list[list[int]], list[int]]],
    truncated: int,
    run: AdapterRun,
    s: LoraSettings,
    progress: bool = True,
    after_step: Callable[[int, Any], None] | None = None,
) -> dict[str, Any]:
    """The training skeleton both stages share: `items` (note ids, question ids, labels per
    note) cut into steps, LoRA attached and trained, its compute logged, the adapter saved
    with its provenance. Returns the provenance."""
    from cec.llm.backbones import quantization_of
    from cec.llm.token_meter import TokenMeter, log_compute

    quantization = quantization_of(model)
    if s.qlora != (quantization is not None):
        raise ValueError(
            f"qlora {s.qlora} on a {'quantized' if quantization else 'full-precision'} base "
            "(load it with load_base_model(..., qlora=settings.qlora))"
        )
    groups = make_groups(items, s.grad_accum, s.steps, s.seed)
    model = attach_lora(model, s)
    log.info(
        "%s: LoRA on %s, %d steps of %d pairs, %d notes (%.1f%% cut to %s note tokens)",
        run.stage,
        run.backbone.name,
        s.steps,
        s.grad_accum,
        len(items),
        100 * truncated / max(1, len(items)),
        run.backbone.note_budget,
    )
    meter = TokenMeter(model)
    report = train(model, groups, run.answer_ids, s, progress, after_step)
    meter.minimum = report.tokens
    dtype = compute_dtype(run.device, run.dtype, s)
    log_compute(log, meter.summary("train", dtype, report.seconds))
    provenance = adapter_provenance(run, s, len(items), truncated, report, quantization)
    save_adapter(model, run.out_dir, provenance, report.losses, run.title)
    return provenance
