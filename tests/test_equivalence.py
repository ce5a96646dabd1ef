"""Shared-prefix scoring against each full prompt, at a tolerance that can tell an error.

The reference is computed here from `model(input_ids).logits` on each question's full
prompt, independently of the code under test. The tiny models are initialised with a wide
weight range so that their answers spread (with the default init p(yes) stays within about
1e-3 of 0.5, and a tolerance of 1e-4 on p let a position-id shift pass). Answers are
compared as yes-no log-odds, in float32 at 1e-5 and in bfloat16 at a stated tolerance.
The tiny Gemma mixes sliding and full attention layers, and the note crosses its window.
"""

from __future__ import annotations

import math

import pytest
import torch

from cec.llm.backbones import load_model
from cec.llm.prompting import PromptEncoder, QuestionTemplate
from cec.llm.tiny import build_tiny_model
from cec.llm.yesno import Segment, pack_rows, path_ids, score_shared_prefix, score_tree

WORDS = (
    "patient admitted with shortness of breath and chest pain history of heart failure "
    "atrial fibrillation kidney injury creatinine improved diuretics ventilation extubated "
    "Is the note above relevant with the concept Answer yes no Question"
)
CONCEPTS = [
    "heart failure",
    "atrial fibrillation with rapid ventricular response",
    "kidney injury",
    "ventilation",
    "chest pain on admission",
    "diuretics",
    "creatinine improved after fluids were given",
]
NOTE = " ".join(WORDS.split()[:24] * 4)
FP32_TOL = 1e-5  # log-odds, float32
BF16_TOL = 0.15  # log-odds, bfloat16: 8 mantissa bits, summed in other orders when batched


@pytest.fixture(
    scope="module",
    params=[("llama", None), ("gemma3_text", 16)],
    ids=["llama", "gemma3-sliding16-and-full"],
)
def spread(request, tmp_path_factory):  # noqa: ANN001, ANN201
    arch, window = request.param
    folder = build_tiny_model(
        arch,
        tmp_path_factory.mktemp(arch) / "model",
        [WORDS] * 20,
        seed=7,
        sliding_window=window,
        init_range=0.2,
    )
    model, tokenizer = load_model(folder)
    return model.eval(), tokenizer


def _log_odds(p: float) -> float:
    return math.log(p) - math.log1p(-p)


@torch.no_grad()
def _reference(model, prefix: list[int], tails: list[list[int]], answers) -> list[float]:  # noqa: ANN001
    """Yes-no log-odds of each full prompt, from the model's own forward."""
    out = []
    for tail in tails:
        logits = model(input_ids=torch.tensor([prefix + tail])).logits[0, -1].double()
        out.append(float(logits[answers[0]] - logits[answers[1]]))
    return out


def _encoder(tokenizer) -> PromptEncoder:  # noqa: ANN001
    return PromptEncoder(tokenizer, QuestionTemplate.load("concept_question_v1.jinja2"), 90)


def test_stage1_scoring_equals_each_full_prompt(spread) -> None:  # noqa: ANN001
    model, tokenizer = spread
    enc = _encoder(tokenizer)
    prefix = enc.note(NOTE).ids
    questions = [list(enc.question(c)) for c in CONCEPTS]
    lengths = sorted({len(q) for q in questions})
    assert len(lengths) > 2  # rows of unequal width: padding is exercised
    # rows of one or two questions, passes of up to four: several rows per pass, padded
    row_tokens = lengths[-1] + lengths[0]
    rows, _ = pack_rows([Segment(tuple(q)) for q in questions], row_tokens)
    assert len(rows) >= 3 and len({sum(len(s.ids) for s in r) for r in rows}) > 1
    probs = score_shared_prefix(
        model, prefix, questions, enc.answer_ids, batch_size=4, row_tokens=row_tokens
    )
    got = [_log_odds(p) for p in probs]
    want = _reference(model, list(prefix), questions, enc.answer_ids)
    assert max(want) - min(want) > 0.5  # answers spread far beyond the tolerance
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < FP32_TOL
    if model.config.model_type == "gemma3_text":
        assert set(model.config.layer_types) == {"sliding_attention", "full_attention"}
        assert len(prefix) > 2 * model.config.sliding_window  # the window is crossed


def test_stage2_trees_equal_each_full_prompt(spread) -> None:  # noqa: ANN001
    """Trees of shared lines (as the label stage builds them: a trunk, then question /
    one-more-line pairs), packed several per row and several rows per pass."""
    model, tokenizer = spread
    enc = _encoder(tokenizer)
    prefix = list(enc.note(NOTE).ids)
    line = [list(tokenizer(f" {c}.", add_special_tokens=False)["input_ids"]) for c in CONCEPTS]
    segments: list[Segment] = []
    for t in range(4):
        segments.append(Segment(tuple(line[t] + line[t + 1]), -1, scored=False))
        parent = len(segments) - 1
        for j in range(t % 3 + 1):
            segments.append(Segment(tuple(enc.question(CONCEPTS[(t + j) % 7])), parent))
            segments.append(Segment(tuple(line[(t + j + 2) % 7]), parent, scored=False))
            parent = len(segments) - 1
    probs = score_tree(model, prefix, segments, enc.answer_ids, max_tokens=200, row_tokens=60)
    scored = [i for i, s in enumerate(segments) if s.scored]
    want = _reference(model, prefix, [path_ids(segments, i) for i in scored], enc.answer_ids)
    got = [_log_odds(p) for p in probs]
    assert max(want) - min(want) > 0.5
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < FP32_TOL


def test_bf16_scoring_within_its_stated_tolerance(spread) -> None:  # noqa: ANN001
    """The CPU bf16 path (the demo's dtype where native): the same comparison, both sides
    in bfloat16, within BF16_TOL in log-odds."""
    model, tokenizer = spread
    model = model.to(torch.bfloat16)
    try:
        enc = _encoder(tokenizer)
        prefix = enc.note(NOTE).ids
        questions = [list(enc.question(c)) for c in CONCEPTS]
        probs = score_shared_prefix(model, prefix, questions, enc.answer_ids, 4, 40)
        got = [_log_odds(p) for p in probs]
        want = _reference(model, list(prefix), questions, enc.answer_ids)
        assert max(want) - min(want) > 4 * BF16_TOL  # the tolerance is far below the spread
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < BF16_TOL
    finally:
        model.to(torch.float32)
