"""Tiny random Llama and Gemma-3 models with a BPE tokenizer trained on the spot.

Tests need real transformers/peft code paths (KV caches, sliding windows, LoRA, save and
reload) without any weights from a hub: a model of ~100k parameters built from a config
runs a train step in well under a second and is deterministic for a seed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

TINY_SIZES = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)
SPECIALS = ["<pad>", "<s>", "</s>"]
# Tokenizer training text for a tiny backbone built by the workflow (config source: tiny):
# the prompt's own words and some clinical vocabulary, so prompts are not all bytes.
DEFAULT_TEXTS = [
    "Admission Date: Discharge Date: History of Present Illness: Brief Hospital Course:",
    "Is the note above relevant with the concept? ### Answer: yes ### Answer: no",
    "Question: Does the patient contain the disease? Answer: Yes Answer: No ### Response:",
    "creatinine kidney failure ventilation intubated extubated heart failure atrial "
    "fibrillation hypertension diabetes pneumonia sepsis transfusion catheter",
] * 20
# A workflow's tiny backbone learns the words of the shipped prompts and concept lists, as
# a real tokenizer knows English words: with only DEFAULT_TEXTS and 512 entries, Fig. 4's
# question took 260 tokens instead of ~120, and the tiny workflow spent its time on the
# attention of needlessly long rows.
WORKFLOW_VOCAB = 2048


def workflow_texts() -> list[str]:
    """Tokenizer corpus of a workflow's tiny backbone: DEFAULT_TEXTS, every shipped prompt
    template and the concept lists of the shipped recordings (public text, no notes)."""
    resources = files("cec") / "resources"
    texts = list(DEFAULT_TEXTS)
    for item in sorted((resources / "prompts").iterdir(), key=lambda t: t.name):
        if item.name.endswith(".jinja2"):
            texts.append(item.read_text(encoding="utf-8"))
    for item in sorted((resources / "concepts" / "recordings").iterdir(), key=lambda t: t.name):
        if item.name.endswith(".jsonl"):
            for line in item.read_text(encoding="utf-8").splitlines():
                texts.append(json.dumps(json.loads(line).get("response", "")))
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):  # noqa: ANN201
    """Byte-level BPE; the answers (' yes', ' no' after Fig. 3's cue; 'Yes', 'No' on
    their own line after Fig. 4's) are added whole so that they are single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = list(texts) + [" yes", " no", " Yes", " No", "Yes", "No"] * 50
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def build_tiny_model(
    arch: str,
    out_dir: str | Path,
    texts: Iterable[str],
    seed: int = 0,
    sliding_window: int | None = None,
    vocab_size: int = 512,
    init_range: float | None = None,
) -> Path:
    """Save a random `llama` or `gemma3_text` model and its tokenizer to `out_dir`.

    A Gemma with a sliding window gets one sliding and one full attention layer, as the
    real Gemma-3 mixes them, so that both mask kinds are exercised. `init_range` (the
    weights' std; the default 0.02 keeps p(yes) within about 1e-3 of 0.5) spreads the
    outputs, so that an equivalence test at a tight tolerance can tell a real error."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size)
    sizes = dict(TINY_SIZES, vocab_size=len(tokenizer))
    extra = {}
    if arch == "gemma3_text" and sliding_window is not None:
        extra["sliding_window"] = sliding_window
        extra["layer_types"] = ["sliding_attention", "full_attention"]
    if init_range is not None:
        extra["initializer_range"] = init_range
    config = AutoConfig.for_model(
        arch,
        **sizes,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
