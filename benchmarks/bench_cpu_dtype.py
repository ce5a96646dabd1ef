"""Benchmark: fp32 against bf16 on this CPU, for the demo model, and what `auto` chooses.

Prints, on the machine it runs on (named with its vector features): one matrix product of
the demo model's MLP shape, a forward pass over a note-sized prompt, and a LoRA training
step (forward, backward, optimizer) in float32 and under bf16 autocast, each the median of
a few repeats after a warm-up; then the dtype `cpu_dtype: auto` takes here and why. Where
bf16 is emulated (no avx512_bf16 or amx_bf16) it is tens of times slower; where it is
native, 1.6-1.7x faster. About a minute; run on demand (`make bench-dtype`), not a test.
Input: results/models/smollm2 (built by the workflow; the Makefile target builds it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_label_scoring import cpu_description  # noqa: E402

from cec.llm.backbones import load_model  # noqa: E402
from cec.llm.cpu_dtype import cpu_dtype_here  # noqa: E402


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "results/models/smollm2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=512, help="prompt length")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"CPU: {cpu_description()}; {args.threads} thread(s)")
    rows: list[tuple[str, float, float]] = []

    a, b = torch.randn(512, 576), torch.randn(576, 1536)
    ab16, bb16 = a.bfloat16(), b.bfloat16()
    rows.append((
        "matmul 512x576 @ 576x1536",
        median_seconds(lambda: a @ b, args.repeats * 5),
        median_seconds(lambda: ab16 @ bb16, args.repeats * 5),
    ))  # fmt: skip

    ids = torch.randint(0, 1000, (1, args.tokens))
    timings = {}
    for dtype in ("float32", "bfloat16"):
        model, _ = load_model(args.model, dtype, "cpu", None)
        model.eval()
        with torch.no_grad():
            timings[dtype] = median_seconds(lambda m=model: m(input_ids=ids), args.repeats)
        del model
    rows.append((f"forward, {args.tokens} tokens", timings["float32"], timings["bfloat16"]))

    from peft import LoraConfig, get_peft_model

    steps = {}
    for autocast in (None, torch.bfloat16):
        model, _ = load_model(args.model, "float32", "cpu", None)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
        model = get_peft_model(model, LoraConfig(r=32, lora_alpha=32, target_modules=targets))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])

        def step(model=model, optimizer=optimizer, autocast=autocast) -> None:  # noqa: ANN001
            ctx = torch.autocast("cpu", dtype=autocast) if autocast else contextlib.nullcontext()
            with ctx:
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        steps[autocast] = median_seconds(step, args.repeats)
        del model
    rows.append((f"LoRA step, {args.tokens} tokens", steps[None], steps[torch.bfloat16]))

    print(f"{'':32} {'float32':>10} {'bfloat16':>10} {'bf16 / fp32':>12}")
    for name, fp32, bf16 in rows:
        print(f"{name:32} {fp32:9.3f}s {bf16:9.3f}s {bf16 / fp32:11.2f}x")
    print(f"forward tokens/s: float32 {args.tokens / timings['float32']:.0f}, "
          f"bfloat16 {args.tokens / timings['bfloat16']:.0f}")  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    print(f"cpu_dtype: auto chooses {cpu_dtype_here('auto')} here")


if __name__ == "__main__":
    main()
