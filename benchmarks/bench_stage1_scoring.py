"""Benchmark: naive per-question scoring against shared-prefix scoring (stage 1).

Same notes, same concepts, same model: prints the tokens each method processes and the
wall-time ratio, then projects the token ratio to an 8B setting (2,500-token notes, a
typical MIMIC-III discharge summary: the paper gives no note length; 325 concepts). Run on
demand (`make bench-stage1`); not a test. It also prints, for shared-prefix scoring, the
token positions the model computed (padding included) over the minimum (each note once plus
each question once), and the wall time over plain causal forwards of that minimum
(`--skip-naive`: only these).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from cec.llm.backbones import load_model
from cec.llm.prompting import PromptEncoder, QuestionTemplate
from cec.llm.token_meter import TokenMeter  # noqa: E402
from cec.llm.yesno import score_naive, score_shared_prefix
from cec.plumbing.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_label_scoring import plain_forward_seconds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=REPO / "results/models/smollm2")
    parser.add_argument("--data", type=Path, default=REPO / "results/data/mimic3_50/dev.jsonl")
    parser.add_argument(
        "--concepts", type=Path, default=REPO / "results/concepts/mimic3_50/concepts.tsv"
    )
    parser.add_argument("--note-tokens", type=int, default=512)
    parser.add_argument("--n-concepts", type=int, default=100)
    parser.add_argument("--notes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true", help="only the efficiency ratios")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    model.eval()
    clock = TokenMeter(model)
    enc = PromptEncoder(
        tokenizer, QuestionTemplate.load("concept_question_v1.jinja2"), args.note_tokens
    )
    with open(args.concepts, encoding="utf-8") as fh:
        next(fh)
        texts = [line.rstrip("\n").split("\t")[3] for line in fh][: args.n_concepts]
    questions = [enc.question(t) for t in texts]
    notes = []
    for rec in read_jsonl(args.data):
        note = enc.note(rec["text"])
        if note.note_tokens >= args.note_tokens:  # a full-budget note
            notes.append(note.ids)
        if len(notes) == args.notes:
            break
    q_tokens = sum(map(len, questions))
    shared_s = naive_s = 0.0
    shared_tok = naive_tok = computed = 0
    for ids in notes:
        score_shared_prefix(model, ids, questions[:4], enc.answer_ids)  # warm-up
        clock.positions = 0
        t0 = time.perf_counter()
        a = score_shared_prefix(model, ids, questions, enc.answer_ids, args.batch_size)
        t1 = time.perf_counter()
        computed += clock.positions
        shared_s += t1 - t0
        shared_tok += len(ids) + q_tokens
        naive_tok += len(ids) * len(questions) + q_tokens
        if not args.skip_naive:
            b = score_naive(model, ids, questions, enc.answer_ids)
            naive_s += time.perf_counter() - t1
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4
    plain = plain_forward_seconds(model, shared_tok)
    print(
        f"shared prefix against its minimum ({shared_tok} tokens): positions computed / "
        f"minimum {computed / shared_tok:.2f}, wall / plain forward {shared_s / plain:.2f}"
    )
    if args.skip_naive:
        return
    prefix = len(notes[0])
    print(
        f"model {args.model.name}, {len(notes)} notes of {args.note_tokens} note tokens "
        f"(prefix {prefix} tokens with the instruction), {len(questions)} concepts "
        f"({q_tokens / len(questions):.1f} tokens per question), {args.threads} threads"
    )
    print(f"naive:         {naive_tok:>9} tokens  {naive_s:8.1f} s")
    print(f"shared prefix: {shared_tok:>9} tokens  {shared_s:8.1f} s")
    print(
        f"ratio: {naive_tok / shared_tok:.1f}x fewer tokens, {naive_s / shared_s:.1f}x faster "
        "(max |p diff| < 1e-4 checked)"
    )
    head = prefix - args.note_tokens
    q = q_tokens / len(questions)
    for note_tokens, n_concepts in ((2500, 325),):
        naive = n_concepts * (head + note_tokens + q)
        shared = head + note_tokens + n_concepts * q
        flops = 2 * 8e9
        print(
            f"projection, 8B model, {note_tokens}-token notes, {n_concepts} concepts: "
            f"{naive:,.0f} vs {shared:,.0f} tokens per note ({naive / shared:.0f}x); at "
            f"2*8e9 FLOP/token that is {naive * flops / 1e12:,.0f} vs "
            f"{shared * flops / 1e12:,.0f} TFLOP per note, i.e. about "
            f"{naive * flops / 400e12:.2f} s vs {shared * flops / 400e12:.3f} s on a GPU "
            "sustaining 400 TFLOP/s (attention over the note not counted)"
        )


if __name__ == "__main__":
    main()
