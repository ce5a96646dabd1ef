"""The paper's QLoRA path on CPU: a 4-bit NF4 base, LoRA, paged AdamW 8-bit (Appendix A).

bitsandbytes 0.50 runs all of it on CPU, so these tests run everywhere (never skipped): a
stage-1 and a stage-2 adapter are trained through the stages' own functions with
`qlora: true` and `paged_adamw_8bit` on tiny models, saved, reloaded on a 4-bit base by
the scoring loader, and checked to

- learn: a task whose answer is in the note (one word of it), with balanced labels, so
  that answering always Yes, or anything else blind to the note, scores a 2-way loss of
  ln 2 at best and half the held-out notes; the loss must fall well below ln 2 and the
  held-out notes be answered right;
- score by the shared prefix what each full prompt scores on its own, on the 4-bit model,
  within a tolerance far below the spread of the scores and far above float32 noise,
  and a question one position off breaks it;
- score after reloading what the trained model scored before saving.

A first test settles the `gemv_4bit` autograd warning (see
`cec.llm.backbones.keep_4bit_differentiable`): the LoRA gradients on the 4-bit model
equal those of the same computation on the dequantized float32 model, after a scoring
pass in eval mode (the pass that, on an avx512_bf16 CPU, used to switch bitsandbytes to
its kernel without a gradient).
"""

from __future__ import annotations

import json
import math
import random
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import bitsandbytes as bnb  # the llm extra installs it: a missing install fails, never skips
import pytest
import torch

from cec.llm.backbones import Backbone, load_model
from cec.llm.loading import load_scoring_model
from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions, attach_lora
from cec.llm.prompting import PromptEncoder, QuestionTemplate
from cec.llm.tiny import build_tiny_model, workflow_texts
from cec.llm.yesno import (
    Segment,
    _answer_head,
    path_ids,
    score_shared_prefix,
    score_tree,
    shared_prefix_loss,
)
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate

FILLER = "patient admitted with fever cough pain stable discharged home follow up clinic daily"
KEYS = ("kidney", "lung")  # the word of the note that carries the answer
CONCEPT = "kidney injury"  # yes iff the note says kidney
OTHER_CONCEPTS = ["lung disease", "fever", "pain on admission", "follow up in clinic"]
STAGE1_TEMPLATE = "concept_question_v1.jinja2"
STAGE2_TEMPLATE = "direct_question_compact_v1.jinja2"
NOTE_BUDGET = 16
CHANCE = math.log(2)  # the 2-way loss of any answer blind to the note (balanced labels)


def _note(rng: random.Random, key: str) -> str:
    words = rng.sample(FILLER.split(), 8)
    words.insert(rng.randrange(len(words) + 1), key)
    return " ".join(words)


def _log_odds(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _settings(steps: int) -> LoraSettings:
    """The paper's optimizer and a 4-bit base. r = 64 makes each LoRA matrix of the tiny
    model (64 x 64) reach bitsandbytes' 4,096-element floor for 8-bit optimizer states,
    so that the 8-bit update itself is exercised."""
    return LoraSettings(
        r=64,
        alpha=256,
        dropout=0.0,
        targets=("k_proj", "v_proj"),
        steps=steps,
        grad_accum=1,
        lr=0.003,
        seed=13,
        optimizer="paged_adamw_8bit",
        qlora=True,
        loss="yes_no",
    )


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny Llama and the files both stages train from: 64 train notes, half saying
    kidney; one concept (stage 1) and one code (stage 2) whose answer is yes iff so."""
    root = tmp_path_factory.mktemp("qlora")
    rng = random.Random(0)
    records, concept_rows, code_rows = [], [], []
    for h in range(1, 65):
        key = KEYS[h % 2]
        records.append(
            {"hadm_id": str(h), "subject_id": str(h), "text": _note(rng, key), "labels": []}
        )
        concept_rows.append({"hadm_id": str(h), "concept_id": "C0001", "label": int(h % 2 == 0)})
        code_rows.append({"hadm_id": str(h), "code": "584.9", "concepts": [], "label": h % 2 == 0})
    files = {
        "train": root / "train.jsonl",
        "concept_trainset": root / "concepts_trainset.jsonl",
        "label_trainset": root / "label_direct.jsonl",
        "concepts": root / "concepts.tsv",
        "codes": root / "codes.tsv",
    }
    files["train"].write_text("".join(json.dumps(r) + "\n" for r in records))
    files["concept_trainset"].write_text("".join(json.dumps(r) + "\n" for r in concept_rows))
    files["label_trainset"].write_text(
        "".join(json.dumps({**r, "label": int(r["label"])}) + "\n" for r in code_rows)
    )
    files["concepts"].write_text(
        "concept_id\tlevel\towner\ttext\n"
        + "".join(f"C{i + 1:04d}\tleaf\tx\t{t}\n" for i, t in enumerate([CONCEPT, *OTHER_CONCEPTS]))
    )
    files["codes"].write_text(
        "code\tkind\tdescription\tparent\tparent_description\n"
        f"584.9\tdiagnosis\t{CONCEPT}\t584\tkidney failure\n"
    )
    texts = [f"{FILLER} {' '.join(KEYS)} {' '.join(OTHER_CONCEPTS)} {CONCEPT}"] * 20
    model = build_tiny_model("llama", root / "model", workflow_texts() + texts, seed=1,
                             vocab_size=2048)  # fmt: skip
    backbone = Backbone.from_config("tiny", {"source": "tiny", "arch": "llama",
                                             "lora_targets": ["k_proj", "v_proj"],
                                             "note_budget": NOTE_BUDGET,
                                             "cpu_dtype": "float32"})  # fmt: skip
    return {"root": root, "model": model, "backbone": backbone, **files}


def test_4bit_lora_gradients_equal_the_dequantized_model(task: dict[str, Any]) -> None:
    """The gemv_4bit question, settled: after a scoring pass in eval mode, a training
    step's LoRA gradients on the 4-bit model equal those of the dequantized float32 model
    (same weights, same LoRA), at float32 rounding. Catches: bitsandbytes' CPU repacking
    left on (on an avx512_bf16 CPU every LoRA gradient was None and the forward ran in
    bf16), a bf16 compute dtype on CPU (differences of 1e-3 relative), and gradient
    checkpointing that loses a gradient."""
    from bitsandbytes.functional import dequantize_4bit

    q_model, tokenizer = load_model(task["model"], "float32", "cpu", quantize_4bit=True)
    f_model, _ = load_model(task["model"], "float32", "cpu")
    f_weights = f_model.state_dict()
    n4 = 0
    for name, module in q_model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            w = dequantize_4bit(module.weight.data, module.weight.quant_state)
            f_weights[f"{name}.weight"].copy_(w)
            n4 += 1
    assert n4 == 14  # every linear layer of the two decoder layers is 4-bit
    s = replace(_settings(1), r=4, alpha=8)
    q_lora = attach_lora(q_model, s)
    f_lora = attach_lora(f_model, replace(s, qlora=False))
    gen = torch.Generator().manual_seed(5)
    for (qn, qp), (fn, fp) in zip(
        q_lora.named_parameters(), f_lora.named_parameters(), strict=True
    ):
        assert qn == fn
        if "lora_" in qn:  # B is zero at init: set both alike, so that A gets a gradient
            with torch.no_grad():
                value = torch.randn(qp.shape, generator=gen) * 0.1
                qp.copy_(value)
                fp.copy_(value)
    enc = PromptEncoder(tokenizer, QuestionTemplate.load(STAGE1_TEMPLATE), NOTE_BUDGET)
    prefix = enc.note(_note(random.Random(1), "kidney")).ids
    questions = [enc.question(c) for c in [CONCEPT, *OTHER_CONCEPTS]]
    q_lora.eval()
    score_shared_prefix(q_lora, prefix, questions, enc.answer_ids)  # as an after_step would
    grads = []
    for model in (q_lora, f_lora):
        model.train()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = shared_prefix_loss(model, prefix, questions, [1, 0, 0, 0, 1], enc.answer_ids)
            loss.backward()
        assert not [w for w in caught if "autograd kernel was not registered" in str(w.message)]
        grads.append({n: p.grad for n, p in model.named_parameters() if "lora_" in n})
    q_grads, f_grads = grads
    assert len(q_grads) == 8 and all(g is not None for g in q_grads.values())
    for name, want in f_grads.items():
        scale = float(want.abs().max())
        assert scale > 1e-4, name  # a real gradient, not a zero compared with a zero
        assert float((q_grads[name] - want).abs().max()) <= 1e-5 * scale, name


def _scores_after_training(
    steps: int, score: Any, store: dict[str, Any]
) -> Any:  # the after_step hook: the trained model's scores, before it is saved
    def after_step(step: int, model: Any) -> None:
        if step == steps:
            model.eval()
            store["before_save"] = score(model)
            model.train()

    return after_step


def _heldout(rng_seed: int, n: int = 40) -> list[tuple[str, bool]]:
    rng = random.Random(rng_seed)
    return [(_note(rng, KEYS[i % 2]), i % 2 == 0) for i in range(n)]


def _check_learned(provenance: dict[str, Any], p_yes: list[float], truth: list[bool]) -> None:
    """The loss falls below what a note-blind answer can reach, and new notes are
    answered right. Catches: an optimizer that does not step (8-bit states on CPU), LoRA
    gradients that never arrive, a base that is not the one scored."""
    curve = provenance["loss_curve"]
    first, last = sum(curve[:10]) / 10, sum(curve[-10:]) / 10
    print(f"\nloss {first:.3f} -> {last:.3f} (chance ln 2 = {CHANCE:.3f})")
    assert first > CHANCE - 0.02  # it starts at chance, not below
    assert last < CHANCE - 0.25  # it reads the note: no shortcut gets below ln 2
    right = sum((p > 0.5) == y for p, y in zip(p_yes, truth, strict=True))
    print(f"held-out: {right}/{len(truth)} right (always-yes: {sum(truth)}/{len(truth)})")
    assert right >= 0.9 * len(truth)


def _check_provenance(adapter: Path) -> dict[str, Any]:
    provenance = json.loads((adapter / "provenance.json").read_text())
    assert provenance["qlora"] is True and provenance["lora"]["optimizer"] == "paged_adamw_8bit"
    quant = provenance["quantization"]
    assert quant["bits"] == 4 and quant["quant_type"] == "nf4"
    assert quant["compute_dtype"] == "float32" and quant["bitsandbytes"] == bnb.__version__
    return provenance


def _assert_reload_scores_as_before(before: list[float], after: list[float]) -> None:
    """The reloaded adapter on its 4-bit base scores what the trained model did, to
    float32 rounding: 1e-5 in log-odds, where merging the adapter into the 4-bit weights
    (a re-quantization) or scoring on a full-precision base moves them by 1e-2 or more."""
    a, b = [_log_odds(p) for p in before], [_log_odds(p) for p in after]
    spread = max(a) - min(a)
    diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
    print(f"reload: max |d log-odds| {diff:.2e} (spread {spread:.2f})")
    assert spread > 1.0 and diff < 1e-5


@torch.no_grad()
def _naive_log_odds(model: Any, prefix: list[int], tail: list[int], answers, gap: int = 0):  # noqa: ANN001, ANN202
    """The full prompt run on its own (`gap` shifts the tail's positions: the mutant)."""
    ids = torch.tensor([prefix + tail])
    pos = torch.tensor(
        [list(range(len(prefix))) + [len(prefix) + gap + i for i in range(len(tail))]]
    )
    hidden = model.get_decoder()(input_ids=ids, position_ids=pos).last_hidden_state[0, -1:]
    logits = _answer_head(model, hidden, answers)[0].double()
    return float(logits[0] - logits[1])


def _assert_shared_equals_naive(got: list[float], want: list[float], shifted: list[float]) -> None:
    """Tolerance from the values: 1e-4 of the spread of the scores compared (float32
    rounding of a 100-token prompt is ~1e-6 in log-odds), while the mutant whose questions
    sit one position late must differ by far more than the tolerance."""
    spread = max(want) - min(want)
    tol = 1e-4 * spread
    diff = max(abs(a - b) for a, b in zip(got, want, strict=True))
    off = max(abs(a - b) for a, b in zip(shifted, want, strict=True))
    print(f"shared vs naive: {diff:.2e} (tol {tol:.2e}, spread {spread:.2f}, one off {off:.2e})")
    assert spread > 0.5
    assert diff < tol
    assert off > 10 * tol  # a position off by one breaks it


def test_stage1_qlora_learns_saves_reloads_and_scores(task: dict[str, Any]) -> None:
    from cec.stage1.run import train_concept_model

    steps = 200
    tokenizer = load_model(task["model"])[1]
    enc = PromptEncoder(tokenizer, QuestionTemplate.load(STAGE1_TEMPLATE), NOTE_BUDGET)
    heldout = _heldout(99)
    question = enc.question(CONCEPT)

    def score(model: Any) -> list[float]:
        return [
            score_shared_prefix(model, enc.note(n).ids, [question], enc.answer_ids)[0]
            for n, _ in heldout
        ]

    store: dict[str, Any] = {}
    adapter = task["root"] / "concept_adapter"
    files = TrainingFiles(task["model"], task["concept_trainset"], task["train"],
                          task["concepts"], adapter)  # fmt: skip
    options = TrainingOptions(device="cpu", progress=False,
                              after_step=_scores_after_training(steps, score, store))  # fmt: skip
    train_concept_model(task["backbone"], files, _settings(steps), options)
    provenance = _check_provenance(adapter)
    model, _, _ = load_scoring_model(task["backbone"], task["model"], adapter, "cpu")
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())  # reloaded in 4-bit
    after = score(model)
    _check_learned(provenance, after, [y for _, y in heldout])
    _assert_reload_scores_as_before(store["before_save"], after)
    # shared prefix against each full prompt, over several questions and notes
    questions = [enc.question(c) for c in [CONCEPT, *OTHER_CONCEPTS]]
    got, want, shifted = [], [], []
    for text, _ in heldout[:4]:
        prefix = list(enc.note(text).ids)
        probs = score_shared_prefix(model, prefix, questions, enc.answer_ids, 3, 40)
        got += [_log_odds(p) for p in probs]
        want += [_naive_log_odds(model, prefix, list(q), enc.answer_ids) for q in questions]
        shifted += [_naive_log_odds(model, prefix, list(q), enc.answer_ids, 1) for q in questions]
    _assert_shared_equals_naive(got, want, shifted)


def test_stage2_qlora_learns_saves_reloads_and_scores(task: dict[str, Any]) -> None:
    from cec.stage2.run import train_label_model

    steps = 200
    tokenizer = load_model(task["model"])[1]
    enc = LabelPromptEncoder(tokenizer, LabelTemplate.load(STAGE2_TEMPLATE), NOTE_BUDGET)
    heldout = _heldout(77)
    question = tuple(enc.question(CONCEPT))

    def score(model: Any) -> list[float]:
        return [
            score_tree(model, enc.note(n).ids, [Segment(question)], enc.answer_ids)[0]
            for n, _ in heldout
        ]

    store: dict[str, Any] = {}
    adapter = task["root"] / "label_adapter"
    files = TrainingFiles(task["model"], task["label_trainset"], task["train"],
                          task["concepts"], adapter, code_table=task["codes"])  # fmt: skip
    options = TrainingOptions(device="cpu", template=STAGE2_TEMPLATE, progress=False,
                              after_step=_scores_after_training(steps, score, store))  # fmt: skip
    train_label_model(task["backbone"], files, _settings(steps), "direct", options)
    provenance = _check_provenance(adapter)
    assert provenance["variant"] == "direct"
    model, _, _ = load_scoring_model(task["backbone"], task["model"], adapter, "cpu")
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    after = score(model)
    _check_learned(provenance, after, [y for _, y in heldout])
    _assert_reload_scores_as_before(store["before_save"], after)
    # label trees (shared concept lines, then a question each) against each full prompt
    lines = [
        tuple(tokenizer(f" {c}.", add_special_tokens=False)["input_ids"]) for c in OTHER_CONCEPTS
    ]
    got, want, shifted = [], [], []
    for text, _ in heldout[:4]:
        prefix = list(enc.note(text).ids)
        segments = [Segment(lines[0] + lines[1], -1, scored=False)]
        for j, title in enumerate([CONCEPT, *OTHER_CONCEPTS]):
            segments.append(Segment(tuple(enc.question(title)), 0))
            segments.append(Segment(lines[(j + 2) % 4], 0, scored=False))
            segments.append(Segment(tuple(enc.question(title)), len(segments) - 1))
        probs = score_tree(model, prefix, segments, enc.answer_ids, max_tokens=200, row_tokens=60)
        got += [_log_odds(p) for p in probs]
        tails = [path_ids(segments, i) for i, seg in enumerate(segments) if seg.scored]
        want += [_naive_log_odds(model, prefix, t, enc.answer_ids) for t in tails]
        shifted += [_naive_log_odds(model, prefix, t, enc.answer_ids, 1) for t in tails]
    _assert_shared_equals_naive(got, want, shifted)


def test_lora_overrides_reach_only_the_adapters_they_name() -> None:
    """`lora_overrides` (stage1/stage2) puts QLoRA on one backbone (or dataset/backbone)
    only; the others' params stay as they were (no re-run), and a key that would never
    apply is an error, not a silent no-op."""
    from cec import job_params

    stage1 = {"backbones": ["a", "b"], "device": "cpu", "steps": {"default": 4},
              "trainset": {"seed": 13}, "lora": {"qlora": False, "optimizer": "adamw"},
              "lora_overrides": {"a": {"qlora": True, "optimizer": "paged_adamw_8bit"},
                                 "d1/b": {"optimizer": "adamw_8bit"}}}  # fmt: skip
    assert job_params.stage1_training(stage1, "a", "d1")["lora"]["qlora"] is True
    assert job_params.stage1_training(stage1, "b", "d1")["lora"]["optimizer"] == "adamw_8bit"
    assert job_params.stage1_training(stage1, "b", "d2")["lora"] == {
        **stage1["lora"],
        "steps": 4,
        "seed": 13,
    }
    with pytest.raises(ValueError, match="needs the job's dataset"):
        job_params.stage1_training(stage1, "b")
    with pytest.raises(ValueError, match="not among this stage's backbones"):
        job_params.stage1_training({**stage1, "lora_overrides": {"c": {"r": 8}}}, "a", "d1")
