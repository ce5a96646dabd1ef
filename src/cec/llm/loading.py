"""Loading a backbone for training or scoring, on the device the run asks for.

Shared by both stages and `cec code`: training loads the base model (CUDA in the
backbone's dtype, CPU in fp32 with bf16 autocast where native; with QLoRA a 4-bit NF4 base
on either, computing in the backbone's dtype on CUDA and in fp32 on CPU), scoring loads it
with the adapter merged in, in the dtype the device computes fastest, or, for an adapter
trained on a 4-bit base, that base again with the adapter attached as trained.

Every model and adapter folder is checked before a library reads it (`check_model_dir`,
`check_adapter_dir`), and the library's own reading runs inside `loading`: a cut, garbled
or missing file is a one-line InputError naming it and the Snakemake target that makes it
again, never a SafetensorError, a hub "repo id" message or a JSON error naming no file.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cec.llm.backbones import DTYPES, QUANT_TYPE, Backbone, load_model, torch_dtype
from cec.llm.cpu_dtype import cpu_dtype_here
from cec.plumbing.artifacts import check_safetensors, damaged, read_json_artifact
from cec.plumbing.errors import InputError

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")


def choose_device(requested: str, option: str = "device (stage1.device, stage2.device)") -> str:
    """The device to run on. `cuda` on a machine without one is the user's to fix (an
    InputError saying so, before anything loads), not a RuntimeError from deep in torch;
    `option` names where the request came from (`--device` for `cec code`)."""
    if requested not in DEVICES:
        raise InputError(f"{option} {requested!r}: expected one of {', '.join(DEVICES)}")
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        if option.startswith("--"):
            instead = f"use {option} cpu, or {option} auto to take a GPU where there is one"
        else:
            instead = "set it to cpu, or auto to take a GPU where there is one"
        raise InputError(
            f"{option} cuda: this machine has no CUDA device that torch can use "
            f"(torch {torch.__version__}); {instead}"
        )
    return requested


def model_rebuild(backbone: Backbone) -> str | None:
    """How to make a backbone's folder again: None (the default, the Snakemake target of
    results/models/NAME) for a built one; words of their own for a folder the user
    downloaded (source hf), which no rule builds."""
    if backbone.source != "hf":
        return None
    return (
        f"backbone {backbone.name} is a folder of your own (backbones.{backbone.name}.path): "
        "download its files again (jobs never fetch weights)"
    )


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
_JSON_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "added_tokens.json",
)


def check_model_dir(model_dir: str | Path, rebuild: str | None = None) -> None:
    """A model folder holds a readable config, tokenizer and whole weights (headers only
    are read: seconds for gigabytes), or a `damaged` error names the file at fault."""
    folder = Path(model_dir)
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "model folder not found"
        raise damaged(folder, problem, rebuild)
    config = read_json_artifact(folder / "config.json", dict, rebuild)
    if not isinstance(config.get("model_type"), str):
        raise damaged(folder / "config.json", "no model_type: not a model's config", rebuild)
    for name in _JSON_FILES:
        if (folder / name).exists():
            read_json_artifact(folder / name, dict, rebuild)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise damaged(folder / "tokenizer.json", "missing: the model's tokenizer", rebuild)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = read_json_artifact(index, dict, rebuild).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise damaged(index, "no weight_map: not a safetensors index", rebuild)
        for shard in sorted({str(s) for s in weight_map.values()}):
            check_safetensors(folder / shard, rebuild)
    elif (folder / "model.safetensors").exists() or not any(folder.glob("pytorch_model*.bin")):
        check_safetensors(folder / "model.safetensors", rebuild)


# What scoring reads from an adapter's provenance.json, and what each must be
_PROVENANCE_CHECKS = {
    "dtype": (lambda v: v in DTYPES, f"one of {', '.join(DTYPES)}"),
    "template": (lambda v: isinstance(v, str) and v != "", "a template name"),
    "answer_token_ids": (
        lambda v: isinstance(v, list) and len(v) == 2 and all(type(i) is int for i in v),
        "two token ids",
    ),
}


def check_adapter_dir(adapter_dir: str | Path) -> dict[str, Any]:
    """An adapter folder holds a PEFT config, whole weights and a provenance that says
    what scoring needs; returns the provenance. A folder the workflow trained: every
    error says `snakemake --force` on it."""
    folder = Path(adapter_dir)
    if not folder.is_dir():
        raise damaged(folder, "adapter folder not found")
    config = read_json_artifact(folder / "adapter_config.json")
    if not isinstance(config.get("peft_type"), str):
        raise damaged(folder / "adapter_config.json", "no peft_type: not a PEFT adapter config")
    if (folder / "adapter_model.safetensors").exists() or not (
        folder / "adapter_model.bin"
    ).exists():
        check_safetensors(folder / "adapter_model.safetensors")
    provenance: dict[str, Any] = read_json_artifact(folder / "provenance.json")
    for key, (ok, expected) in _PROVENANCE_CHECKS.items():
        if key not in provenance:
            raise damaged(folder / "provenance.json", f"no {key!r}")
        if not ok(provenance[key]):
            raise damaged(folder / "provenance.json", f"{key!r} is not {expected}")
    quant = provenance.get("quantization")
    if quant is not None and not (
        isinstance(quant, dict) and quant.get("bits") == 4 and quant.get("quant_type") == QUANT_TYPE
    ):
        raise damaged(
            folder / "provenance.json", f"'quantization' is not null or 4-bit {QUANT_TYPE}"
        )
    return provenance


def trained_in_4bit(provenance: dict[str, Any]) -> bool:
    """Whether an adapter was trained on a 4-bit base (QLoRA): its provenance says so."""
    return provenance.get("quantization") is not None


@contextlib.contextmanager
def loading(folder: str | Path, rebuild: str | None = None) -> Iterator[None]:
    """Run a library's reading of `folder` (transformers, peft, tokenizers): whatever the
    checks above did not foresee ends as one line naming the folder and its rebuild
    target (the library's first line kept, as the clue), not as a traceback. An
    InputError, a real I/O error (a full or unreadable disk: the CLI names its path), a
    missing package and running out of memory pass through: they are not the folder's
    fault."""
    import torch

    try:
        yield
    except (InputError, ImportError, torch.OutOfMemoryError, MemoryError):
        raise
    except OSError as exc:
        if exc.errno is not None:  # the operating system's: the CLI reports the path
            raise
        raise _unloadable(folder, exc, rebuild) from None
    except Exception as exc:  # noqa: BLE001 - any library error on these files is theirs
        raise _unloadable(folder, exc, rebuild) from None


def _unloadable(folder: str | Path, exc: Exception, rebuild: str | None) -> InputError:
    log.debug("loading %s failed", folder, exc_info=exc)  # --verbose: the whole story
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return damaged(folder, f"cannot be loaded ({detail})", rebuild)


def _load_checked(
    backbone: Backbone, model_dir: str | Path, dtype: str, device: str, quantize: bool = False
) -> tuple[Any, Any]:
    rebuild = model_rebuild(backbone)
    check_model_dir(model_dir, rebuild)
    with loading(model_dir, rebuild):
        return load_model(model_dir, dtype, device, backbone.revision, quantize_4bit=quantize)


def load_base_model(
    backbone: Backbone, model_dir: str | Path, device: str = "auto", qlora: bool = False
) -> tuple[Any, Any, str, str]:
    """The backbone for LoRA training: CUDA in the backbone's dtype, CPU in fp32. With
    `qlora` its linear layers are 4-bit NF4 on either device, computing in that same dtype
    (fp32 on CPU: bf16 is emulated on most CPUs). Returns model, tokenizer, device and dtype."""
    device = choose_device(device)
    dtype = backbone.dtype if device == "cuda" else "float32"  # CPU: fp32 LoRA
    model, tokenizer = _load_checked(backbone, model_dir, dtype, device, qlora)
    return model, tokenizer, device, dtype


def load_scoring_model(
    backbone: Backbone,
    model_dir: str | Path,
    adapter_dir: str | Path | None,
    device: str = "auto",
) -> tuple[Any, Any, dict[str, Any] | None]:
    """The backbone with its adapter, for scoring.

    An adapter trained in full precision is merged in (no LoRA detour per layer); CUDA
    scores in the backbone's dtype, CPU in `cpu_dtype` (the demo's bfloat16 runs 1.7x
    faster than float32 on avx512_bf16 CPUs). An adapter trained on a 4-bit base (QLoRA,
    `quantization` in its provenance) is scored on the same 4-bit base with the adapter
    attached, not merged: merging into 4-bit weights would round the update into the NF4
    grid (a lossy re-quantization), and merging into a dequantized copy would score a model
    other than the one trained. That base computes as in training: in the adapter's dtype
    on CUDA, fp32 on CPU. Without an adapter: the base model. Both folders are checked
    before either is read.
    """
    device = choose_device(device)
    dtype = backbone.dtype if device == "cuda" else cpu_dtype_here(backbone.cpu_dtype)
    if adapter_dir is None:
        model, tokenizer = _load_checked(backbone, model_dir, dtype, device)
        return model.eval(), tokenizer, None
    from peft import PeftModel

    provenance = check_adapter_dir(adapter_dir)
    if trained_in_4bit(provenance):
        base_dtype = provenance["dtype"] if device == "cuda" else "float32"
        log.info(
            "scoring on a 4-bit %s base computing in %s, the QLoRA adapter attached (not merged)",
            QUANT_TYPE,
            base_dtype,
        )
        model, tokenizer = _load_checked(backbone, model_dir, base_dtype, device, quantize=True)
        with loading(adapter_dir):
            model = PeftModel.from_pretrained(model, str(adapter_dir))
        return model.eval(), tokenizer, provenance
    model, tokenizer = _load_checked(backbone, model_dir, provenance["dtype"], device)
    with loading(adapter_dir):
        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model = model.to(torch_dtype(dtype)).eval()
    return model, tokenizer, provenance
