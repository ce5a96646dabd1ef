"""Tiny random Llama and Gemma-3 models with a BPE tokenizer trained on the spot.

Tests need real transformers/peft code paths (KV caches, sliding windows, LoRA, save and
reload) without any weights from a hub: a model of ~100k parameters built from a config
runs a train step in well under a second and is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Iterable
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
) -> Path:
    """Save a random `llama` or `gemma3_text` model and its tokenizer to `out_dir`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer(texts)
    sizes = dict(TINY_SIZES, vocab_size=len(tokenizer))
    extra = {}
    if arch == "gemma3_text" and sliding_window is not None:
        extra["sliding_window"] = sliding_window
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
