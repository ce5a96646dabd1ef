"""Full code sets: re-ranking each note's retrieved candidates (cec.stage2.candidates,
the candidate paths of stages 1 and 2, and the evaluation of files that list only the
retrieved codes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cec.evaluation.metrics import read_predictions
from cec.llm.backbones import load_model
from cec.llm.tiny import build_tiny_model
from cec.plumbing.artifacts import read_candidates
from cec.plumbing.errors import InputError
from cec.stage1.run import ScoringFiles, note_concepts
from cec.stage1.trainset import TrainsetSettings, build_concept_trainset
from cec.stage2.candidates import split_ranked, with_rest
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate
from cec.stage2.sampling import ConceptView, predicted_lines, training_rows
from cec.stage2.score import LabelScorer
from tests.test_stage2 import CODE_CONCEPTS, CODES, FIG4, TEXT, _p_yes, _words


def test_non_candidates_stay_below_every_candidate_in_retriever_order() -> None:
    probs = {"A": 0.9, "B": 0.2, "C": 0.4}
    out = with_rest(probs, ["A", "B", "C"], ["D", "E", "F"])
    assert [out[c] for c in "ABC"] == [0.9, 0.2, 0.4]  # the model's, unchanged
    # floor 0.2 x (R + 1 - j) / (R + 1), R = 3
    assert out["D"] == pytest.approx(0.15) and out["E"] == pytest.approx(0.1)
    assert out["F"] == pytest.approx(0.05)
    assert max(out[c] for c in "DEF") < min(out[c] for c in "ABC")
    assert with_rest({"A": 0.0}, ["A"], ["B"]) == {"A": 0.0, "B": 0.0}  # never above


def test_split_keeps_rank_order_and_drops_unknown_codes() -> None:
    label_set = {"A": "", "B": "", "C": "", "D": ""}
    assert split_ranked(["C", "X", "A", "D", "B"], label_set, 2) == (["C", "A"], ["D", "B"])
    with pytest.raises(ValueError, match="at least 1"):
        split_ranked(["A"], label_set, 0)


def _candidates_file(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    lines = ["hadm_id\tcode\tscore\trank"] + [f"{h}\t{c}\t0.5\t{r}" for h, c, r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_candidates_are_read_in_rank_order_and_checked(tmp_path: Path) -> None:
    path = _candidates_file(
        tmp_path / "c.tsv", [("1", "B", 1), ("1", "A", 2), ("1", "C", 3), ("2", "A", 1)]
    )
    assert read_candidates(path) == {"1": ["B", "A", "C"], "2": ["A"]}
    assert read_candidates(path, keep=2) == {"1": ["B", "A"], "2": ["A"]}
    bad = _candidates_file(tmp_path / "bad.tsv", [("1", "B", 1), ("1", "A", 3)])
    with pytest.raises(InputError, match="rank '3' where 2 comes next") as err:
        read_candidates(bad)
    assert "row 3" in str(err.value)


def test_stage1_asks_only_about_the_candidates_concepts() -> None:
    files = ScoringFiles(
        "m", "a", "split.jsonl", "c.tsv", CODE_CONCEPTS, "o", "s", {"1": ["585.9"]}
    )
    ids = list(TEXT)
    assert note_concepts("1", ids, files) == ["L3", "P4", "P5", "P6", "P7"]
    every = ScoringFiles("m", "a", "split.jsonl", "c.tsv", CODE_CONCEPTS, "o", "s")
    assert note_concepts("1", ids, every) == ids
    with pytest.raises(InputError, match="admission 2 has no candidates"):
        note_concepts("2", ids, files)


def test_negatives_come_from_the_candidates_and_the_50_code_draw_is_unchanged() -> None:
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    p_yes = _p_yes(5)
    # every concept answered (50-code sets): the old rule, C in order, filtered
    for code in CODES:
        old = [c for c in view.space if c not in view.own[code] and p_yes[c] <= 0.5]
        assert view.scored(p_yes) == view.space
        others, _ = predicted_lines(view, code, "3", 13, p_yes, m=len(old))
        assert sorted(c for c, _ in others) == sorted(old)
    # only the candidates' concepts answered: the others come from them
    own = view.own["96.71"]
    mine = {c: p_yes[c] for c in [*own, "L3", "P4", "P5", "P6", "P7"]}
    drawn = set()
    for hadm in "123456789":
        others, _ = predicted_lines(view, "96.71", hadm, 13, mine)
        drawn |= {c for c, _ in others}
    assert drawn and drawn <= {"L3", "P4", "P5", "P6", "P7"}


def test_false_codes_are_drawn_from_the_candidates() -> None:
    record = {"hadm_id": "7", "labels": ["584.9"]}
    for seed in range(20):
        rows = training_rows(record, CODES, None, seed, false_per_true=2, candidates=["428.0"])
        assert {(r["code"], r["label"]) for r in rows} == {("584.9", 1), ("428.0", 0)}
    settings = TrainsetSettings(neg_per_pos=10, max_pos_per_note=None)
    rows = build_concept_trainset([record], CODE_CONCEPTS, settings, {"7": ["428.0"]})
    negatives = {r["concept_id"] for r in rows if not r["label"]}
    assert negatives == {"L6", "P13", "P14"}  # the candidate's concepts, nothing else


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):  # noqa: ANN001, ANN201
    texts = [_words(FIG4), "concept finding disease Yes No Does the patient have"] * 20
    folder = build_tiny_model("llama", tmp_path_factory.mktemp("llama") / "m", texts, seed=5)
    model, tokenizer = load_model(folder)
    return model.eval(), tokenizer


def test_scoring_the_candidates_equals_scoring_every_code(tiny) -> None:  # noqa: ANN001
    """A candidate's probability is the one it gets when every code is scored: same
    prompt lines (the other concepts are drawn from what stage 1 answered, and here it
    answered all), same tree. A layout that depended on the code set would differ."""
    model, tokenizer = tiny
    encoder = LabelPromptEncoder(
        tokenizer, LabelTemplate.load("label_question_v1.jinja2"), note_budget=60
    )
    view = ConceptView.build(CODE_CONCEPTS, CODES, "cec")
    scorer = LabelScorer(model, encoder, {c: f"disease {c}" for c in CODES}, TEXT, view, seed=13)
    prefix = encoder.note("admission date " * 10).ids
    every = scorer.score(prefix, "4", [3, 6], _p_yes(6))
    some = scorer.score(prefix, "4", [3, 6], _p_yes(6), codes=["96.71", "428.0"])
    assert set(some.probs[3]) == {"96.71", "428.0"}
    for k in (3, 6):
        for code in ("96.71", "428.0"):
            assert some.probs[k][code] == pytest.approx(every.probs[k][code], abs=1e-5)
    assert some.tokens < every.tokens
    spread = max(every.probs[6].values()) - min(every.probs[6].values())
    assert spread > 1e-3  # codes differ, so equal values are not a coincidence


def test_a_file_of_retrieved_codes_reads_unlisted_codes_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("hadm_id\tcode\tprob\n1\tA\t0.7\n2\tB\t0.3\n", encoding="utf-8")
    p = read_predictions(path, ["1", "2"], ["A", "B"], unlisted=0.0)
    np.testing.assert_array_equal(p, [[0.7, 0.0], [0.0, 0.3]])
    with pytest.raises(InputError, match="2 .admission, code. pairs have no prediction"):
        read_predictions(path, ["1", "2"], ["A", "B"])  # a 50-code set must list all
