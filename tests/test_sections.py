"""cec.sections: DF-IAPF title learning, splitting and the sections view, on hand-made notes.

Every expected number below is worked out by hand from DF-IAPF = DF * log2(1 + 1/APF).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cec.plumbing.errors import InputError
from cec.sections import (
    SectionSettings,
    SectionTitle,
    boundary_titles,
    learn_section_titles,
    note_candidates,
    note_view,
    split_sections,
    view_fell_back,
    write_section_report,
)


def make_note(i: int) -> str:
    """Note i of five: HPI once, "Question:" 4 times, "Answer:" 10 times in every note;
    "Rare Title:" in note 0 only; "Mixed:" once in note 1 and 3 times in note 2."""
    lines = ["Admission Date:  [**2151-7-16**]", "History of Present Illness:", f"story {i}"]
    lines += ["Question: q?"] * 4 + ["Answer: yes"] * 10
    if i == 0:
        lines.append("Rare Title:")
    if i == 1:
        lines.append("Mixed: a")
    if i == 2:
        lines += ["Mixed: a", "mixed : b", "MIXED:   c"]
    return "\n".join(lines) + "\n"


NOTES = [make_note(i) for i in range(5)]


def by_title(titles: list[SectionTitle]) -> dict[str, SectionTitle]:
    return {t.title: t for t in titles}


def test_dfiapf_values_by_hand() -> None:
    got = by_title(learn_section_titles(NOTES, min_df=0.3, min_score=0.15))
    hpi = got["history of present illness"]
    assert (hpi.df, hpi.apf, hpi.score, hpi.selected) == (1.0, 1.0, 1.0, True)
    question = got["question"]  # in every note, 4 times: log2(1 + 1/4) = 0.32193
    assert (question.df, question.apf) == (1.0, 4.0)
    assert question.score == pytest.approx(math.log2(1.25)) == pytest.approx(0.321928, abs=1e-6)
    assert question.selected  # 0.32 >= 0.15: four repeats lower the score but do not exclude
    answer = got["answer"]  # 10 times per note: log2(1.1) = 0.13750 < 0.15
    assert answer.apf == 10.0
    assert answer.score == pytest.approx(0.137504, abs=1e-6)
    assert not answer.selected
    rare = got["rare title"]  # 1 of 5 notes: DF 0.2 < min_df 0.3
    assert (rare.df, rare.apf, rare.selected) == (0.2, 1.0, False)
    assert rare.score == pytest.approx(0.2)
    mixed = got["mixed"]  # 2 of 5 notes, 4 occurrences: 0.4 * log2(1.5) = 0.23399
    assert (mixed.df, mixed.apf) == (0.4, 2.0)
    assert mixed.score == pytest.approx(0.4 * math.log2(1.5)) == pytest.approx(0.233985, abs=1e-6)
    assert mixed.selected
    assert "admission date" in got  # the de-id bracket is after the colon: still a candidate


def test_min_df_is_inclusive_and_ranking_is_by_score() -> None:
    titles = learn_section_titles(NOTES)  # defaults: min_df 0.2, min_score 0.15
    assert by_title(titles)["rare title"].selected  # DF 0.2 >= 0.2
    scores = [t.score for t in titles]
    assert scores == sorted(scores, reverse=True)
    # ties on score are broken by DF, then alphabetically
    assert [t.title for t in titles[:2]] == ["admission date", "history of present illness"]


def test_candidate_rules() -> None:
    note = "\n".join(
        [
            "  History   of Present  Illness :  text",  # normalised, trailing spaces ok
            "[**2151-7-16**] 07:40PM BLOOD Lipase-46",  # de-id bracket and digits
            "Labs 2: none",  # digit
            "# Hyperlipidemia: statin",  # '#' is not allowed
            "one two three four five six seven: x",  # 7 words > max_words
            "Crohn's & Colitis/IBD - Notes: x",  # ' & / - are allowed
            "No colon on this line",
            ": starts with a colon",
        ]
    )
    assert note_candidates(note) == ["history of present illness", "crohn's & colitis/ibd - notes"]
    assert note_candidates(note, max_words=7)[1] == "one two three four five six seven"


def test_rare_candidates_are_not_listed() -> None:
    notes = ["Common:\n"] * 100 + ["Common:\nOne Off:\n"]
    titles = by_title(learn_section_titles(notes))
    assert "common" in titles
    assert "one off" not in titles  # DF 1/101 < 0.01
    assert learn_section_titles([]) == []


NOTE = (
    "Admission Date:  [**2151-7-16**]\n"
    "\n"
    "Chief Complaint:\nchest pain\n"
    "\n"
    "History of Present Illness:\nHPI text. See chief complaint: above.\n"
    "  Physical Exam:\nHEENT: NC/AT\nNeuro: A&Ox3\n"
    "\n"
    "Brief Hospital Course:\nNeuro: stable.\nCV: fine.\n"
    "\n"
    "DISCHARGE DIAGNOSIS:\nPrimary:\nCHF\n\nSecondary:\nHTN\n"
    "\n"
    "Discharge Condition:\nstable\n"
)
TITLES = [
    "chief complaint",
    "history of present illness",
    "physical exam",
    "brief hospital course",
    "discharge diagnosis",
    "discharge condition",
]


def test_split_sections_keeps_the_text_exactly() -> None:
    parts = split_sections(NOTE, TITLES)
    assert "".join(p for _, p in parts) == NOTE
    assert [t for t, _ in parts] == [None, *TITLES]
    assert parts[0][1].startswith("Admission Date")
    # case-insensitive, title returned normalised, text as written
    assert parts[5] == (
        "discharge diagnosis",
        "DISCHARGE DIAGNOSIS:\nPrimary:\nCHF\n\nSecondary:\nHTN\n\n",
    )
    # a title in the middle of a line does not split; leading whitespace is allowed
    assert "See chief complaint: above." in parts[2][1]
    assert parts[3][1].startswith("  Physical Exam:")


def test_split_sections_edge_cases() -> None:
    assert split_sections("", TITLES) == []
    assert split_sections("no titles here\n", TITLES) == [(None, "no titles here\n")]
    assert split_sections("text\n", []) == [(None, "text\n")]
    starts = "Chief Complaint:\nx\n"
    assert split_sections(starts, TITLES) == [("chief complaint", starts)]
    # "primary" must not match a line that starts with "Primary care:"
    assert split_sections("Primary care: Dr X\n", ["primary"]) == [(None, "Primary care: Dr X\n")]
    # title words may be separated by several spaces or a tab
    assert split_sections("Chief \t Complaint :x", TITLES)[0][0] == "chief complaint"


def test_note_view_full_and_sections() -> None:
    assert note_view(NOTE, TITLES, "full", ["chief complaint"]) == NOTE
    view = note_view(
        NOTE,
        TITLES,
        "sections",
        ["discharge diagnosis", "chief complaint", "brief hospital course"],
    )
    assert view == (
        "DISCHARGE DIAGNOSIS:\nPrimary:\nCHF\n\nSecondary:\nHTN\n"
        "\n"
        "Chief Complaint:\nchest pain\n"
        "\n"
        "Brief Hospital Course:\nNeuro: stable.\nCV: fine.\n"
    )
    assert not view_fell_back(NOTE, TITLES, ["chief complaint"])


def test_note_view_repeated_title_and_fallback() -> None:
    twice = "Chief Complaint:\na\nSocial History:\nb\nChief Complaint:\nc\n"
    titles = ["chief complaint", "social history"]
    assert note_view(twice, titles, "sections", ["chief complaint"]) == (
        "Chief Complaint:\na\n\nChief Complaint:\nc\n"
    )
    # none of the kept sections: the full note comes back, unchanged
    assert note_view(NOTE, TITLES, "sections", ["past medical history"]) == NOTE
    assert view_fell_back(NOTE, TITLES, ["past medical history"])
    # a kept title that is not a split point is never found
    assert view_fell_back(twice, ["social history"], ["chief complaint"])
    with pytest.raises(ValueError, match="mode"):
        note_view(NOTE, TITLES, "summary", ["chief complaint"])  # type: ignore[arg-type]


def test_boundary_titles_drop_subheadings_and_inline_fields() -> None:
    learned = [
        SectionTitle("discharge diagnosis", 1.0, 1.0, 1.0, True, own_line=1.0),
        SectionTitle("primary", 1.0, 1.0, 1.0, True, own_line=1.0),
        SectionTitle("neuro", 0.4, 1.1, 0.37, True, own_line=0.1),  # inline field label
        SectionTitle("chief complaint", 0.9, 1.0, 0.9, True, own_line=0.2),  # inline but kept
        SectionTitle("question", 0.9, 4.0, 0.29, False, own_line=1.0),  # not selected
    ]
    keep = ["discharge diagnosis", "chief complaint"]
    assert boundary_titles(learned, keep) == ["discharge diagnosis", "chief complaint"]
    assert boundary_titles(["Primary", "Social  History"], keep) == ["social history"]
    # with "Neuro:" not a split point, the hospital course keeps its systems-based lines
    note = "Brief Hospital Course:\n# a\nNeuro: ok\nDischarge Condition:\nstable\n"
    titles = boundary_titles(
        [
            SectionTitle("brief hospital course", 1, 1, 1, True, 1.0),
            SectionTitle("neuro", 0.5, 1, 0.5, True, 0.0),
            SectionTitle("discharge condition", 1, 1, 1, True, 1.0),
        ],
        ["brief hospital course"],
    )
    view = note_view(note, titles, "sections", ["brief hospital course"])
    assert view == "Brief Hospital Course:\n# a\nNeuro: ok\n"


def test_own_line_share_is_learned() -> None:
    notes = ["Neuro: ok\nPlan:\nx\n", "Neuro:\nok\nPlan:\ny\n"]
    got = by_title(learn_section_titles(notes))
    assert got["neuro"].own_line == 0.5
    assert got["plan"].own_line == 1.0


def write_train(path: Path, texts: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            rec = {"hadm_id": i, "subject_id": i, "text": text, "labels": []}
            fh.write(json.dumps(rec) + "\n")


def test_write_section_report(tmp_path: Path) -> None:
    secret = "zyxwvutsrq"  # a word of note text that must not leak into any output
    texts = [
        f"Chief Complaint:\n{secret} pain\nHistory of Present Illness:\nyarn\n"
        f"Discharge Diagnosis:\nPrimary:\nCHF\n\nSecondary:\nHTN\n"
        for _ in range(11)
    ]
    texts.append("no headers at all\n")
    train = tmp_path / "train.jsonl"
    write_train(train, texts)
    tsv, out = tmp_path / "section_titles.tsv", tmp_path / "sections_report.json"
    keep = ("discharge diagnosis", "chief complaint", "past medical history")
    write_section_report(train, tsv, out, SectionSettings(keep=keep))
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["title", "df", "apf", "score", "selected", "own_line"]
    assert rows[1][1:] == ["0.9167", "1.0000", "0.9167", "true", "1.0000"]  # 11 of 12 notes
    report = json.loads(out.read_text())
    assert report["n_train_notes"] == 12
    assert "primary" in report["selected_titles"]
    assert "primary" not in report["split_titles"]  # a sub-heading, not a split point
    assert report["kept_section_found_share"] == {
        "discharge diagnosis": 0.9167,
        "chief complaint": 0.9167,
        "past medical history": 0.0,
    }
    assert report["kept_titles_not_split"] == ["past medical history"]
    assert report["fallback_share"] == 0.0833
    assert report["mean_words_sections"] < report["mean_words_full"]
    for path in (tsv, out):
        assert secret not in path.read_text()
        assert "yarn" not in path.read_text()


def test_report_lists_only_phrases_seen_in_enough_notes(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    write_train(train, ["Chief Complaint:\nx\n"] * 9 + ["Chief Complaint:\nPatient Words:\n"])
    tsv = tmp_path / "t.tsv"
    write_section_report(train, tsv, tmp_path / "r.json", SectionSettings(min_notes_listed=2))
    assert [r.split("\t")[0] for r in tsv.read_text().splitlines()[1:]] == ["chief complaint"]


def test_report_names_a_bad_record(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "Chief Complaint:\\n"}\n{"labels": []}\n')
    with pytest.raises(InputError) as err:
        write_section_report(train, tmp_path / "t.tsv", tmp_path / "r.json")
    assert (err.value.row, err.value.field) == (2, "text")
    assert not (tmp_path / "t.tsv").exists()
