"""The pieces of benchmarks/bench_paper_scale.py that can be wrong: the FLOPs and time
arithmetic, the synthetic note-length option, and the token counting against the meter."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from cec.synth.mimic3_writer import write_synthetic_mimic
from cec.synth.notes import DEFAULT_MEAN_WORDS
from tests.conftest import REPO

SPEC = importlib.util.spec_from_file_location(
    "bench_paper_scale", REPO / "benchmarks" / "bench_paper_scale.py"
)
assert SPEC is not None and SPEC.loader is not None
bench = importlib.util.module_from_spec(SPEC)
sys.modules["bench_paper_scale"] = bench
SPEC.loader.exec_module(bench)


def test_model_shapes_give_the_published_parameter_counts() -> None:
    # Llama-3-8B: 8.03 B; Gemma-7B: 8.54 B (their model cards)
    assert bench.LLAMA3_8B.params == pytest.approx(8.03e9, rel=0.005)
    assert bench.GEMMA_7B.params == pytest.approx(8.54e9, rel=0.005)
    # one Llama-3 layer by hand: q, o 4096x4096; k, v 4096x1024; MLP 3 x 4096x14336
    assert bench.LLAMA3_8B.layer_params == 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
    # KV cache per token: 32 layers x (k, v) x 8 heads x 128 x 2 bytes = 131,072
    assert bench.LLAMA3_8B.kv_bytes_per_token() == 131072


def test_flops_and_projected_time_by_hand() -> None:
    shape = bench.Shape("toy", layers=2, hidden=4, intermediate=8, heads=2, kv_heads=1,
                        head_dim=2, vocab=10, tied=True)  # fmt: skip
    # layer: q, o 4x4 (16 each), k, v 4x2 (8 each), MLP 3 x 4x8 (96): 144; 2 layers: 288
    assert shape.matmul_params == 288
    assert shape.params == 288 + 40
    # 10 tokens, 55 query-key pairs: 2 x 288 x 10 + 4 x 2 layers x 2 heads x 2 dim x 55
    assert bench.forward_flops(shape, 10, 55) == 5760 + 1760
    assert bench.train_flops(shape, 10, 55) == 3 * 7520
    # 1e15 FLOPs at 989 TFLOP/s x 40% = 2.528 s
    assert bench.gpu_seconds(1e15, "score") == pytest.approx(1e15 / (989e12 * 0.4))
    assert bench.slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)


def _discharge_words(folder: Path) -> list[int]:
    words: dict[str, int] = defaultdict(int)
    with gzip.open(folder / "NOTEEVENTS.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["CATEGORY"] == "Discharge summary" and row["HADM_ID"]:
                words[row["HADM_ID"]] += len(row["TEXT"].split())
    return list(words.values())


@pytest.mark.parametrize("target", [None, 1530])
def test_note_length_option_hits_its_mean(tmp_path: Path, target: int | None) -> None:
    out = tmp_path / "mimic"
    write_synthetic_mimic(
        out, 600, 13, other_notes_per_admission=0, note_words=target, progress=False
    )
    words = _discharge_words(out)
    mean = sum(words) / len(words)
    sd = math.sqrt(sum((w - mean) ** 2 for w in words) / len(words))
    # four standard errors of the mean, plus half a padding line (it stops past the target)
    tolerance = 4 * sd / math.sqrt(len(words)) + (10 if target else 0)
    assert abs(mean - (target or DEFAULT_MEAN_WORDS)) < tolerance, (mean, sd, len(words))
    if target:  # the padding spreads: longer notes vary more than the default's sd ~195
        assert sd > 300


def test_token_counts_agree_with_the_token_meter(tmp_path: Path) -> None:
    """The positions packed_work predicts for scoring, and train_work for a LoRA step,
    are those the token meter counts when the project's scorer and trainer run."""
    import torch

    from cec.llm.backbones import load_model
    from cec.llm.lora import LoraSettings, attach_lora, make_groups, train
    from cec.llm.tiny import build_tiny_model
    from cec.llm.token_meter import TokenMeter
    from cec.llm.yesno import Segment, _flat, score_shared_prefix, score_tree

    folder = build_tiny_model("llama", tmp_path / "tiny", ["a b c yes no"] * 20)
    model, _ = load_model(folder)
    gen = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return torch.randint(3, 100, (n,), generator=gen).tolist()

    prefix = ids(57)
    questions = [ids(3 + i % 7) for i in range(40)]
    meter = TokenMeter(model)
    score_shared_prefix(model, prefix, questions, (5, 6), batch_size=16, row_tokens=32)
    predicted, _, _ = bench.packed_work(len(prefix), _flat(questions), 32, "questions", 16)
    assert meter.positions == predicted

    trees = []
    for i in range(9):
        trees.append(Segment(tuple(ids(6 + i)), -1, scored=False))
        trees.append(Segment(tuple(ids(4)), len(trees) - 1))
        trees.append(Segment(tuple(ids(3)), len(trees) - 2))
    meter.positions = 0
    score_tree(model, prefix, trees, (5, 6), max_tokens=64, row_tokens=24)
    predicted, _, _ = bench.packed_work(len(prefix), trees, 24, "tokens", 64)
    assert meter.positions == predicted
    meter.close()

    items = [(ids(30 + 5 * n), [ids(4) for _ in range(5)], [1, 0, 1, 0, 1]) for n in range(3)]
    s = LoraSettings(r=2, alpha=4, dropout=0.0, targets=("q_proj",), steps=4, grad_accum=2)
    peft = attach_lora(model, s)
    meter = TokenMeter(peft)
    report = train(peft, make_groups(items, s.grad_accum, s.steps, s.seed), (5, 6), s, False)
    counted = bench.train_work(items, s)
    assert meter.positions == counted.computed == report.tokens
    meter.close()
