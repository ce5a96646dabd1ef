"""The CUDA path on the demo model (`make gpu-check`): skipped where no CUDA device exists.

bf16 LoRA and 4-bit QLoRA training steps with paged AdamW 8-bit, adapter save and reload,
shared-prefix against naive scoring within bf16 tolerance, and throughput in tokens/s and
peak GPU memory, each printed beside Appendix A's setting (r 32, alpha 32, dropout 0.05,
gradient accumulation 4, lr 2e-4, paged AdamW 8-bit, 4-bit NF4 base computing in bf16).
The same QLoRA code runs on CPU in every `make test` (tests/test_qlora_cpu.py), where the
base computes in float32 and paged AdamW 8-bit runs unpaged.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from cec.llm.backbones import load_model
from cec.llm.lora import Group, LoraSettings, attach_lora, save_adapter, train
from cec.llm.prompting import PromptEncoder, QuestionTemplate
from cec.llm.yesno import score_naive, score_shared_prefix

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device on this machine: run `make gpu-check` on a GPU",
    ),
]
MODEL = Path(__file__).resolve().parents[1] / "results" / "models" / "smollm2"
NOTE = (
    "Pt admitted with dyspnea. Creatinine peaked at 3.4 from a baseline of 0.9 and improved "
    "with IV fluids. Extubated on hospital day two. "
) * 20
CONCEPTS = [f"concept number {i} about kidney or lung findings" for i in range(64)]


def _encoder(tokenizer) -> PromptEncoder:  # noqa: ANN001
    return PromptEncoder(tokenizer, QuestionTemplate.load("concept_question_v1.jinja2"), 512)


@pytest.mark.parametrize("qlora", [False, True], ids=["bf16-lora", "4bit-qlora"])
def test_cuda_training_save_reload(qlora: bool, tmp_path: Path) -> None:
    torch.cuda.reset_peak_memory_stats()
    model, tokenizer = load_model(MODEL, "bfloat16", "cuda", quantize_4bit=qlora)
    enc = _encoder(tokenizer)
    note = enc.note(NOTE).ids
    qs = [enc.question(c) for c in CONCEPTS[:4]]
    s = LoraSettings(
        r=32,
        alpha=32,
        dropout=0.05,
        steps=10,
        grad_accum=4,
        lr=2e-4,
        optimizer="paged_adamw_8bit",
        qlora=qlora,
    )
    model = attach_lora(model, s)
    t0 = time.perf_counter()
    report = train(
        model, [Group(note, qs, [1, 0, 1, 0])] * s.steps, enc.answer_ids, s, progress=False
    )
    torch.cuda.synchronize()
    print(
        f"\n{'QLoRA (4-bit NF4, bf16 compute)' if qlora else 'bf16 LoRA'} on "
        f"{torch.cuda.get_device_name()}: r {s.r}, alpha {s.alpha}, dropout {s.dropout}, "
        f"grad_accum {s.grad_accum}, lr {s.lr}, {s.optimizer} (Appendix A: r 32, alpha 32, "
        f"dropout 0.05, grad_accum 4, lr 2e-4, paged_adamw_8bit, 4-bit): "
        f"{report.tokens / (time.perf_counter() - t0):.0f} train tokens/s at {len(note)} note "
        f"tokens, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
        f"losses {report.losses[0]:.3f} -> {report.losses[-1]:.3f}"
    )
    assert all(torch.isfinite(torch.tensor(report.losses)))
    before = score_shared_prefix(model, note, qs, enc.answer_ids)
    save_adapter(model, tmp_path / "adapter", {"qlora": qlora}, report.losses, "gpu")
    from peft import PeftModel

    base, _ = load_model(MODEL, "bfloat16", "cuda", quantize_4bit=qlora)
    again = score_shared_prefix(
        PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval(), note, qs, enc.answer_ids
    )
    assert max(abs(a - b) for a, b in zip(before, again, strict=True)) < 1e-2


def test_cuda_shared_prefix_matches_naive_in_bf16() -> None:
    model, tokenizer = load_model(MODEL, "bfloat16", "cuda")
    model.eval()
    enc = _encoder(tokenizer)
    note = enc.note(NOTE).ids
    qs = [enc.question(c) for c in CONCEPTS]
    t0 = time.perf_counter()
    shared = score_shared_prefix(model, note, qs, enc.answer_ids, batch_size=64)
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    naive = score_naive(model, note, qs, enc.answer_ids)
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    shared_tokens = len(note) + sum(map(len, qs))
    naive_tokens = sum(len(note) + len(q) for q in qs)
    print(
        f"\nshared prefix: {shared_tokens / (t1 - t0):.0f} tokens/s ({t1 - t0:.3f} s); naive: "
        f"{naive_tokens / (t2 - t1):.0f} tokens/s ({t2 - t1:.3f} s); speed-up "
        f"{(t2 - t1) / (t1 - t0):.1f}x"
    )
    assert max(abs(a - b) for a, b in zip(shared, naive, strict=True)) < 2e-2  # bf16
