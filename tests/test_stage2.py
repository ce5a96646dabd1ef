"""Stage 2 on tiny random models: Fig. 4, the sampling rules, tree scoring, training."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cec.llm.backbones import load_model
from cec.llm.tiny import build_tiny_model
from cec.llm.yesno import Segment, path_ids, score_naive, score_tree, tree_chunks
from cec.stage2.methods import method
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate
from cec.stage2.sampling import (
    ConceptView,
    own_order,
    predicted_lines,
    prediction_layout,
    training_rows,
)
from cec.stage2.score import LabelScorer
from cec.stage2.trainset import build_label_trainset

# Fig. 4 of the paper, with its "..." filled by one more concept line.
FIG4 = """You are a medical expert tasked with evaluating the presence of a disease in a patient's
medical note. Provide your answer in a clear Yes/No format, on a new line.
---
### Medical Note:
(M) admission date NOTE
Previously you were asked about the presence of some medical concepts in the note (M). The
questions, and your answers to each of them are provided below:
Question: Does the patient contain 'Aspiration events'?
Answer: No
Question: Does the patient contain 'Ventilator management'?
Answer: Yes
Question: Does the patient contain 'Sedation and analgesia administration'?
Answer: Yes
Based on your own answers to the above questions, answer the following question regarding the
presence of a disease in the note (M).
---
### Question:
(Q) Based on the medical note (M), and your answers to the previous questions, does the patient
contain the disease 'Continuous mechanical ventilation for less than 96 consecutive hours'?
Answer the question above in a clear Yes/No format, on a new line.
---
### Output Format:
- Answer the question on a new line in the format:
'Yes' or 'No'
### Response:
"""
LINES = [
    ("Aspiration events", False),
    ("Ventilator management", True),
    ("Sedation and analgesia administration", True),
]
TITLE = "Continuous mechanical ventilation for less than 96 consecutive hours"

CODE_CONCEPTS = {
    "584.9": {"leaf": ["L1", "L2"], "parent": ["P1", "P2", "P3"]},
    "585.9": {"leaf": ["L3"], "parent": ["P4", "P5", "P6", "P7"]},
    "96.71": {"leaf": ["L4", "L5"], "parent": ["P8", "P9", "P10", "P11", "P12"]},
    "428.0": {"leaf": ["L6"], "parent": ["P13", "P14"]},
}
CODES = sorted(CODE_CONCEPTS)
TEXT = {c: f"concept {c} finding" for e in CODE_CONCEPTS.values() for v in e.values() for c in v}


def _words(text: str) -> str:
    return " ".join(text.split())


def test_label_prompt_is_fig4() -> None:
    template = LabelTemplate.load("label_question_v1.jinja2")
    text = template.render("admission date NOTE", LINES, TITLE)
    assert _words(text) == _words(FIG4)
    assert text.endswith("### Response:\n")  # the answer is the next token, on a new line


def test_direct_prompt_is_fig4_without_concepts() -> None:
    direct = LabelTemplate.load("direct_question_v1.jinja2").render("NOTE", [], TITLE)
    fig4_parts = _words(FIG4).split("(M) admission date NOTE ")
    assert _words(direct).startswith(fig4_parts[0])  # instruction kept word for word
    assert "does the patient contain the disease '" + TITLE + "'?" in direct
    assert _words(direct).endswith(_words(FIG4).split(TITLE + "'?")[1])  # output format
    assert "Previously you were asked" not in direct


def test_methods_parse() -> None:
    assert method("cec_k6").k == 6 and method("cec_k6").variant == "cec"
    assert method("direct_zeroshot").finetuned is False
    assert method("leaf_concepts").variant == "leaf"
    with pytest.raises(ValueError, match="unknown stage-2 method 'cec'"):
        method("cec")


def _p_yes(seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    return {c: rng.random() for c in TEXT}


def test_prediction_lines_follow_the_rules() -> None:
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    p_yes = _p_yes(1)
    for code in CODES:
        for hadm in ("1", "2", "3"):
            others, own = predicted_lines(view, code, hadm, 13, p_yes)
            assert {c for c, _ in own} == set(view.own[code])  # all of C_y, seeded order
            assert all(y == (p_yes[c] > 0.5) for c, y in own)  # the stage-1 answers
            assert len(others) == 2
            for c, y in others:  # answered no, from other codes
                assert not y and p_yes[c] <= 0.5 and c not in view.own[code]
    # nested: the k shown for k=3 are the first 3 of those for k=6
    _, own = predicted_lines(view, "96.71", "7", 13, p_yes)
    assert [c for c, _ in own][:3] == own_order(view, "96.71", "7", 13)[:3]


def test_prediction_draws_do_not_depend_on_order_or_gold() -> None:
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    p_yes = _p_yes(2)
    forward = {(h, c): predicted_lines(view, c, h, 13, p_yes) for h in "123" for c in CODES}
    backward = {
        (h, c): predicted_lines(view, c, h, 13, p_yes) for h in "321" for c in reversed(CODES)
    }
    assert forward == backward
    # another seed draws differently (the check can fail)
    other = {(h, c): predicted_lines(view, c, h, 14, p_yes) for h in "123" for c in CODES}
    assert other != forward
    # the only per-note input is p_yes: the signature has no labels to leak
    import inspect

    assert "labels" not in inspect.signature(predicted_lines).parameters


def test_leaf_view_keeps_leaf_concepts_only() -> None:
    view = ConceptView.build(CODE_CONCEPTS, CODES, "leaf")
    assert view.own["96.71"] == ["L4", "L5"]
    assert all(c.startswith("L") for c in view.space)


def test_training_rows_are_section_3_4() -> None:
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    record = {"hadm_id": "5", "labels": ["584.9", "96.71"]}
    rows = training_rows(record, CODES, view, seed=13, k=5, m=2, false_per_true=1.0)
    assert sorted(r["code"] for r in rows if r["label"]) == ["584.9", "96.71"]
    assert sum(1 - r["label"] for r in rows) == 2  # one false code per true code
    plus = set(view.own["584.9"]) | set(view.own["96.71"])
    for row in rows:
        shown = [c for c, _ in row["concepts"]]
        own = [c for c in shown if c in view.own[row["code"]]]
        others = [c for c in shown if c not in view.own[row["code"]]]
        assert len(others) == 2
        assert len(own) == min(5, len(view.own[row["code"]]))  # step 1: k of C_l
        assert set(own) <= set(view.own[row["code"]])
        if row["label"]:  # step 2: m from C_- for a true code
            assert not set(others) & plus
        else:  # ... from C_+ for a false one
            assert set(others) <= plus
        for c, y in row["concepts"]:  # step 3: Yes iff the concept is pseudo-true
            assert y == (c in plus)
    direct = training_rows(record, CODES, None, seed=13)
    assert all(r["concepts"] == [] for r in direct)


def test_trainset_is_order_free_and_train_only_labels() -> None:
    records = [
        {"hadm_id": str(h), "labels": labels}
        for h, labels in [(3, ["584.9"]), (1, ["428.0", "96.71"]), (2, [])]
    ]
    a = build_label_trainset(records, CODES, CODE_CONCEPTS, "cec", 13, 5, 2, 1.0)
    b = build_label_trainset(list(reversed(records)), CODES, CODE_CONCEPTS, "cec", 13, 5, 2, 1.0)
    assert a == b
    assert {r["hadm_id"] for r in a} == {"1", "3"}  # no labels, no rows


@pytest.fixture(
    scope="module", params=[("llama", None), ("gemma3_text", 16)], ids=["llama", "gemma3-sliding16"]
)
def tiny(request, tmp_path_factory):  # noqa: ANN001, ANN201
    arch, window = request.param
    texts = [_words(FIG4), "concept finding disease Yes No Does the patient have"] * 20
    folder = build_tiny_model(
        arch, tmp_path_factory.mktemp(arch) / "model", texts, seed=5, sliding_window=window
    )
    model, tokenizer = load_model(folder)
    return model.eval(), tokenizer


def test_tree_scoring_equals_each_full_prompt(tiny) -> None:  # noqa: ANN001
    model, tokenizer = tiny
    # Gemma's window (16) is shorter than Fig. 4's question block: with it every answer
    # would see the same last 16 tokens, so Gemma runs the compact template, whose
    # differing lines are within reach of the answer
    sliding = model.config.model_type == "gemma3_text"
    name = "label_question_compact_v1.jinja2" if sliding else "label_question_v1.jinja2"
    encoder = LabelPromptEncoder(tokenizer, LabelTemplate.load(name), note_budget=200)
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    titles = {c: f"disease {c}" for c in CODES}
    scorer = LabelScorer(
        model, encoder, titles, TEXT, view, seed=13, max_tokens=900, row_tokens=300
    )
    prefix = encoder.note("admission date " * 30).ids
    segments, keys, _ = scorer.build("9", [3, 4, 5, 6], _p_yes(3))
    assert len(tree_chunks(segments, 300)) > 1  # several rows and passes are exercised
    tree = score_tree(model, prefix, segments, encoder.answer_ids, 900, 300)
    scored = [i for i, s in enumerate(segments) if s.scored]
    full = score_naive(model, prefix, [path_ids(segments, i) for i in scored], encoder.answer_ids)
    assert len(tree) == len(full) == len(keys)
    assert max(abs(a - b) for a, b in zip(tree, full, strict=True)) < 1e-4
    assert max(tree) - min(tree) > 1e-4  # the check can fail: answers differ
    # the full prompt of (code, k) is the rendered Fig. 4 prompt, token for token
    code, k = keys[-1]
    layout, n_others = prediction_layout(view, code, "9", 13, _p_yes(3), 2, 3)
    lines = [(TEXT[c], y) for c, y in layout[: n_others + k]]
    expected = [t for c, y in lines for t in encoder.line(c, y)] + list(
        encoder.question(titles[code])
    )
    assert path_ids(segments, scored[-1]) == expected
    if sliding:
        assert len(prefix) > 2 * model.config.sliding_window  # the window is crossed


def test_tree_scoring_rejects_bad_parents(tiny) -> None:  # noqa: ANN001
    model, _ = tiny
    with pytest.raises(ValueError, match="must follow its parent"):
        score_tree(model, [1, 2, 3], [Segment((4, 5), parent=1), Segment((6,))], (1, 2))


def test_label_scores_per_k_share_lines(tiny) -> None:  # noqa: ANN001
    model, tokenizer = tiny
    encoder = LabelPromptEncoder(
        tokenizer, LabelTemplate.load("label_question_v1.jinja2"), note_budget=50
    )
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    scorer = LabelScorer(model, encoder, {c: c for c in CODES}, TEXT, view, seed=13)
    result = scorer.score(encoder.note("note text").ids, "4", [3, 4, 5, 6], _p_yes(4))
    assert set(result.probs) == {3, 4, 5, 6}
    # 428.0 has 3 concepts: k = 3..6 all show the same lines, so the same probability
    assert len({result.probs[k]["428.0"] for k in (3, 4, 5, 6)}) == 1
    # 96.71 has 7: k = 3 and k = 6 differ
    assert result.probs[3]["96.71"] != result.probs[6]["96.71"]
    assert len(result.lines["96.71"]) == 2 + 6


def test_answer_tokens_are_checked_for_fig4(tiny) -> None:  # noqa: ANN001
    _, tokenizer = tiny
    encoder = LabelPromptEncoder(
        tokenizer, LabelTemplate.load("label_question_v1.jinja2"), note_budget=50
    )
    assert tokenizer.convert_ids_to_tokens(list(encoder.answer_ids)) == ["Yes", "No"]


def test_template_without_macros_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jinja2"
    bad.write_text("{% macro head() %}x{% endmacro %}")
    from cec.plumbing.errors import InputError

    with pytest.raises(InputError, match="after_note"):
        LabelTemplate.load(str(bad))


def test_which_model_answers_each_method_of_the_llama_row() -> None:
    """config/mimic3.yaml: Bio-Medical-Llama-3-8B is the label model (leaf, cec; Appendix
    A), direct coding runs on the row's Llama-3-8B; Gemma answers all of its row."""
    import yaml

    from cec.stage2.methods import label_backbone
    from tests.conftest import REPO

    s2 = yaml.safe_load((REPO / "config/mimic3.yaml").read_text())["stage2"]
    assert [label_backbone(s2, "llama3_8b", v) for v in ("direct", "leaf", "cec")] == [
        "llama3_8b", "biomed_llama3_8b", "biomed_llama3_8b"
    ]  # fmt: skip
    assert {label_backbone(s2, "gemma_7b", v) for v in ("direct", "leaf", "cec")} == {"gemma_7b"}
    assert label_backbone({}, "smollm2", "cec") == "smollm2"  # default: the row itself
    with pytest.raises(ValueError, match="unknown variant"):
        label_backbone(s2, "llama3_8b", "direct_ft")
