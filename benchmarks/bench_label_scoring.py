"""Benchmark: stage-2 label scoring per note, and how much of it runs outside the model.

For each method family (direct coding, leaf concepts, CEC with k = 3..6 in one tree per
code) it scores the dev notes of a built dataset with the base model and seeded random
stage-1 answers (the timing does not depend on the answers), and prints seconds per note,
prompt tokens per note, and the share of the time spent outside the model's forward
passes (tree and mask building, packing, Python loops): the overhead this code owns.
It also prints two ratios per family: the token positions the model computed (padding
included) over the minimum (each note prefix once plus each prompt segment once), and the
wall time over plain causal forwards of that minimum in 512-token chunks.

Run on demand, not a test; the figures depend on the CPU, which it names. Inputs come
from a workflow run (`make bench-stage2` builds them):
  results/models/{backbone}, results/data/{dataset}/{dev.jsonl,codes.tsv},
  results/concepts/{dataset}/{concepts.tsv,code_concepts.json}
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path
from typing import Any

import torch

from cec.llm.backbones import Backbone, load_model, torch_dtype
from cec.llm.cpu_dtype import cpu_dtype_here
from cec.llm.token_meter import TokenMeter
from cec.plumbing.artifacts import read_concept_texts
from cec.plumbing.config import load_config
from cec.plumbing.io import read_jsonl
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate
from cec.stage2.sampling import ConceptView
from cec.stage2.score import LabelScorer
from cec.stage2.trainset import code_titles

REPO = Path(__file__).resolve().parents[1]
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description() -> str:
    """CPU model and the vector features that decide CPU speed (bf16 in particular)."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = [f for f in FLAGS if f in flags] or ["none of " + ", ".join(FLAGS)]
    return f"{model}; {', '.join(have)}; torch {torch.__version__}"


def plain_forward_seconds(model: Any, tokens: int, chunk: int = 512) -> float:
    """Wall time of plain causal forwards over `tokens` positions, in unpadded chunks of
    `chunk` (about a note prefix): the cost the minimum token count would have with no
    tree, mask or packing overhead."""
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, tokens, chunk):
            length = min(chunk, tokens - first)
            model(input_ids=torch.randint(0, vocab, (1, length), generator=generator))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--backbone", default=None, help="default: the config's first")
    parser.add_argument("--dataset", default="mimic3_50")
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--notes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    name = args.backbone or cfg["stage2"]["backbones"][0]
    backbone = Backbone.from_config(name, cfg["backbones"][name])
    s2 = cfg["stage2"]
    model, tokenizer = load_model(args.results / "models" / name)
    dtype = cpu_dtype_here(backbone.cpu_dtype)
    model = model.to(torch_dtype(dtype)).eval()
    clock = TokenMeter(model)
    data = args.results / "data" / args.dataset
    titles = code_titles(data / "codes.tsv")
    concepts_dir = args.results / "concepts" / args.dataset
    texts = read_concept_texts(concepts_dir / "concepts.tsv")
    code_concepts = json.loads((concepts_dir / "code_concepts.json").read_text())
    records = list(read_jsonl(data / "dev.jsonl"))[: args.notes]
    print(f"CPU: {cpu_description()}; {args.threads} thread(s)")
    print(
        f"{name} ({dtype}), {args.dataset}: {len(records)} dev notes, "
        f"{len(titles)} codes, note budget {backbone.note_budget} tokens, "
        f"row_tokens {s2['row_tokens']}, max_tokens {s2['max_tokens']}"
    )
    families = [("direct", None), ("leaf", None), ("cec", [3, 4, 5, 6])]
    for variant, ks in families:
        kind = "direct" if variant == "direct" else "label"
        encoder = LabelPromptEncoder(
            tokenizer, LabelTemplate.load(s2["templates"][kind]), backbone.note_budget
        )
        view = None if variant == "direct" else ConceptView.build(code_concepts, titles, variant)
        scorer = LabelScorer(
            model, encoder, titles, texts, view, 13, int(s2["trainset"]["m"]),
            int(s2["max_tokens"]), int(s2["row_tokens"]),
        )  # fmt: skip
        rng = random.Random(13)
        space = view.space if view is not None else []
        wanted = ks if ks is not None else (None if view is None else [s2["trainset"]["k"]])
        inputs = []
        tokens = 0
        for rec in records:
            prefix = encoder.note(rec["text"]).ids
            p_yes = {c: rng.random() for c in space}
            segments, _, _ = scorer.build(str(rec["hadm_id"]), wanted, p_yes)
            tokens += len(prefix) + sum(len(s.ids) for s in segments)
            inputs.append((prefix, str(rec["hadm_id"]), p_yes))
        clock.forward_seconds, clock.positions = 0.0, 0
        start = time.perf_counter()
        with torch.no_grad():
            for prefix, hadm_id, p_yes in inputs:
                scorer.score(prefix, hadm_id, wanted, p_yes)
        total = time.perf_counter() - start
        per_note = total / max(1, len(records))
        outside = 100 * (total - clock.forward_seconds) / total if total else 0.0
        computed = clock.positions
        plain = plain_forward_seconds(model, tokens)
        print(
            f"{variant:>6}{'' if ks is None else ' k=3..6':8}: {per_note:7.2f} s/note, "
            f"{tokens / max(1, len(records)):8.0f} prompt tokens/note, "
            f"{outside:5.1f}% outside the model; positions computed / minimum "
            f"{computed / tokens:5.2f}, wall / plain forward of the minimum {total / plain:5.2f}"
        )


if __name__ == "__main__":
    main()
