"""cec.concepts.coverage: sentence windows, BM25 scale and coverage counts on hand-made notes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cec.concepts.coverage import (
    chance_coverage,
    concept_scores,
    coverage,
    sentence_windows,
    split_sentences,
    window_starts,
    write_coverage,
)
from cec.plumbing.errors import InputError


def test_split_sentences() -> None:
    text = "Pt with HTN. BP 150/90!  Why?\n\n  Lasix 40 mg.Daily\nDr. Smith saw him"
    assert split_sentences(text) == [
        "Pt with HTN.",
        "BP 150/90!",
        "Why?",
        "Lasix 40 mg.Daily",  # no whitespace after the period: one sentence
        "Dr.",  # abbreviations split too: a known, harmless over-split
        "Smith saw him",
    ]
    assert split_sentences("") == []
    assert split_sentences(" \n\t\n") == []


@pytest.mark.parametrize(
    ("n", "window", "stride", "starts"),
    [
        (0, 3, 1, []),  # no sentences, no window
        (2, 3, 1, [0]),  # shorter than the window: one window
        (3, 3, 1, [0]),
        (5, 3, 1, [0, 1, 2]),  # n - window + 1 windows at stride 1
        (7, 3, 2, [0, 2, 4]),  # the stride lands on the last full window
        (6, 3, 2, [0, 2, 3]),  # it does not: one more window ends at the last sentence
        (10, 4, 3, [0, 3, 6]),
        (11, 4, 3, [0, 3, 6, 7]),
        (4, 1, 1, [0, 1, 2, 3]),
        (5, 2, 10, [0, 3]),  # a stride longer than the window skips sentence 2
    ],
)
def test_window_starts(n: int, window: int, stride: int, starts: list[int]) -> None:
    got = window_starts(n, window, stride)
    assert got == starts
    if stride <= window:  # then every sentence is in some window
        covered = {i for s in got for i in range(s, min(s + window, n))}
        assert covered == set(range(n))


def test_window_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        window_starts(5, 0, 1)
    with pytest.raises(ValueError):
        window_starts(5, 3, 0)
    with pytest.raises(ValueError):
        coverage([], {}, window=3, stride=0)


def test_sentence_windows() -> None:
    text = "A one. B two. C three.\nD four."
    assert sentence_windows(text, 2, 1) == ["A one. B two.", "B two. C three.", "C three. D four."]
    assert sentence_windows(text, 9, 1) == [text.replace("\n", " ")]


def test_bm25_scale_by_hand() -> None:
    # Two windows of two tokens each; "alpha" is in one of them. Lucene BM25 (k1=1.5, b=0.75):
    # idf = ln(1 + (N - n + 0.5) / (n + 0.5)) = ln(1 + 1.5 / 1.5) = ln 2, and with tf = 1 and
    # a window of average length the tf part is (1 * 2.5) / (1 + 1.5) = 1.
    text = "alpha beta.\ngamma delta."
    scores = concept_scores(text, {"X": ["alpha"], "Y": ["the of"], "Z": ["omega"]}, 1, 1)
    assert scores["X"] == pytest.approx(math.log(2) * 0.4, abs=1e-6)
    assert scores["Y"] == 0.0  # stopwords only
    assert scores["Z"] == 0.0  # no shared term
    # a repeated query term counts once; the best phrase of a code is its score
    again = concept_scores(text, {"X": ["alpha alpha", "omega"]}, 1, 1)
    assert again["X"] == pytest.approx(math.log(2) * 0.4, abs=1e-6)
    assert concept_scores("", {"X": ["alpha"]}) == {"X": 0.0}


FILLER = [f"Filler sentence number {w} about nothing." for w in ("one", "two", "three", "four")]
CONCEPTS = {"401.9": ["hypertension", "high blood pressure"], "428.0": ["heart failure"]}


def records() -> list[dict]:
    hpi = " ".join([*FILLER, "Long standing hypertension on lisinopril."])
    return [
        {"hadm_id": 1, "text": hpi, "labels": ["401.9"]},  # covered
        {"hadm_id": 2, "text": " ".join(FILLER), "labels": ["428.0"]},  # no evidence
        {"hadm_id": 3, "text": hpi, "labels": []},  # no labels
        {"hadm_id": 4, "text": hpi, "labels": ["999.9"]},  # no concepts for the code
        {"hadm_id": 5, "text": hpi, "labels": ["428.0", "401.9"]},  # covered by one code
    ]


def test_coverage_counts() -> None:
    res = coverage(records(), CONCEPTS, window=2, stride=1, min_score=0.5)
    assert (res.n_notes, res.n_covered, res.n_without_concepts) == (5, 2, 2)
    assert res.share == pytest.approx(2 / 5)  # notes we cannot assess stay in the denominator
    assert res.n_assessed == 3
    assert res.share_assessed == pytest.approx(2 / 3)
    assert len(res.max_scores) == 3 and all(isinstance(s, float) for s in res.max_scores)
    assert res.max_scores[1] == 0.0
    assert res.max_scores[0] == res.max_scores[2] > 0.5
    assert res.parameters["min_score"] == 0.5
    # a higher threshold than the best score covers nothing
    strict = coverage(records(), CONCEPTS, window=2, stride=1, min_score=res.max_scores[0] + 0.01)
    assert strict.n_covered == 0
    summary = res.summary()
    assert summary["share"] == 0.4
    assert summary["max_score_quantiles"]["q00"] == 0.0


def test_coverage_of_nothing() -> None:
    res = coverage([], CONCEPTS)
    assert (res.n_notes, res.n_covered, res.share) == (0, 0, 0.0)
    assert res.summary()["max_score_quantiles"] is None


def test_coverage_names_bad_records() -> None:
    with pytest.raises(InputError) as err:
        coverage([{"text": "x", "labels": []}, {"text": "x", "labels": "401.9"}], CONCEPTS)
    assert (err.value.row, err.value.field) == (2, "labels")
    with pytest.raises(InputError) as err:
        coverage([{"labels": []}], CONCEPTS, source="train.jsonl")
    assert (err.value.file, err.value.row, err.value.field) == ("train.jsonl", 1, "text")


def test_chance_coverage_pairs_with_an_unrelated_note() -> None:
    recs = [
        {"text": "Known hypertension. " + " ".join(FILLER), "labels": ["401.9"]},
        {"text": " ".join(FILLER), "labels": ["428.0"]},
        {"text": "Treated hypertension. " + " ".join(FILLER), "labels": ["401.9"]},
    ]
    res = chance_coverage(recs, CONCEPTS, window=2, stride=1, min_score=0.5, seed=3)
    # notes 0 and 2 can only be paired with note 1, which never mentions hypertension;
    # note 1 is paired with a note that never mentions heart failure
    assert res.n_covered == 0 and res.max_scores == [0.0, 0.0, 0.0]
    again = chance_coverage(recs, CONCEPTS, window=2, stride=1, min_score=0.5, seed=3)
    assert again.max_scores == res.max_scores
    alone = chance_coverage(recs[:1] + recs[2:], CONCEPTS)
    assert alone.n_without_concepts == 2  # nobody without code 401.9 to pair with


def test_write_coverage(tmp_path: Path) -> None:
    secret = "zyxwvutsrq"
    recs = records()
    recs[2]["text"] += f" {secret}."  # a note without labels: read, never written
    for split, rows in (("train", recs[:3]), ("dev", recs[3:]), ("test", [])):
        with open(tmp_path / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    out_json, out_png = tmp_path / "out" / "coverage.json", tmp_path / "out" / "coverage.png"
    report = write_coverage(tmp_path, CONCEPTS, out_json, out_png, window=2, min_score=0.5)
    assert json.loads(out_json.read_text()) == report
    assert report["splits"]["train"]["n_covered"] == 1
    assert report["splits"]["dev"]["n_covered"] == 1
    assert report["splits"]["test"]["n_notes"] == 0
    overall = report["overall"]
    assert (overall["n_notes"], overall["n_covered"], overall["n_without_concepts"]) == (5, 2, 2)
    assert overall["share"] == 0.4
    assert "chance" in overall and report["parameters"]["min_score"] == 0.5
    assert out_png.read_bytes().startswith(b"\x89PNG")
    assert out_png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert secret not in out_json.read_text()
    with pytest.raises(InputError, match="not found"):
        write_coverage(tmp_path, CONCEPTS, out_json, out_png, splits=("nope",))
