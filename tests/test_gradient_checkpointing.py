"""`gradient_checkpointing` (a LoRA option; `config/mimic3.yaml` turns it on): the paper's
8k-token training rows need it on an 80 GB GPU (`make bench-paper-scale`). It must change
the memory, not the training: the backward pass recomputes each decoder layer (so each runs
twice a step) and the LoRA gradients are those of the plain backward, dropout included.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cec import job_params
from cec.llm.backbones import load_model
from cec.llm.lora import LoraSettings, attach_lora
from cec.llm.prompting import PromptEncoder, QuestionTemplate
from cec.llm.tiny import build_tiny_model, workflow_texts
from cec.llm.yesno import shared_prefix_loss

NOTE = "patient admitted with acute kidney injury and fever, creatinine rose, discharged home"
CONCEPTS = ["kidney injury", "fever", "lung disease", "pain on admission"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "model"
    return build_tiny_model("llama", out, workflow_texts() + [NOTE] * 10, seed=3, vocab_size=1024)


def _step(model_dir: Path, checkpointing: bool) -> tuple[dict[str, torch.Tensor], int]:
    """LoRA gradients of one training step, and how many decoder-layer forwards it ran."""
    model, tokenizer = load_model(model_dir, "float32", "cpu")
    s = LoraSettings(r=4, alpha=8, dropout=0.3, targets=("q_proj", "v_proj"), seed=2)
    lora = attach_lora(model, replace(s, gradient_checkpointing=checkpointing))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():  # B starts at zero: give every LoRA matrix a value, alike in both
        for name, param in lora.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    layers = lora.base_model.model.model.layers
    calls = [0]

    def count(*_: object) -> None:
        calls[0] += 1

    for layer in layers:  # inside the layer: transformers checkpoints its forward, not hooks
        layer.mlp.register_forward_pre_hook(count)
    enc = PromptEncoder(tokenizer, QuestionTemplate.load("concept_question_v1.jinja2"), 64)
    prefix = enc.note(NOTE).ids
    questions = [enc.question(c) for c in CONCEPTS]
    lora.train()
    torch.manual_seed(11)  # the same dropout masks in both runs
    loss = shared_prefix_loss(lora, prefix, questions, [1, 1, 0, 0], enc.answer_ids)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in lora.named_parameters() if "lora_" in n}
    return grads, calls[0] // len(layers)


def test_checkpointing_recomputes_the_layers_and_keeps_the_gradients(model_dir: Path) -> None:
    plain, plain_passes = _step(model_dir, checkpointing=False)
    ckpt, ckpt_passes = _step(model_dir, checkpointing=True)
    # each layer once without; once more in the backward pass with (else it is not on)
    assert (plain_passes, ckpt_passes) == (1, 2)
    assert plain.keys() == ckpt.keys() and len(plain) == 8
    for name, want in plain.items():
        scale = float(want.abs().max())
        assert scale > 1e-4, name  # a real gradient, not zero against zero
        # float32 rounding only: a dropout mask not replayed, or a layer's gradient lost,
        # differs by the order of the gradient itself
        assert float((ckpt[name] - want).abs().max()) <= 1e-5 * scale, name


def test_the_option_reaches_the_settings() -> None:
    block = {"r": 8, "alpha": 16, "dropout": 0.0, "grad_accum": 1, "lr": 1e-3}
    block |= {"optimizer": "adamw", "qlora": False}
    stage = {"lora": block, "steps": {"default": 1}, "device": "cpu", "backbones": ["b"]}
    off = LoraSettings(**job_params.stage2_training(stage, "b")["lora"], targets=["q_proj"])
    stage["lora"] = {**block, "gradient_checkpointing": True}
    on = LoraSettings(**job_params.stage2_training(stage, "b")["lora"], targets=["q_proj"])
    assert (off.gradient_checkpointing, on.gradient_checkpointing) == (False, True)
