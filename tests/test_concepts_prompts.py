"""The prompts of Figs. 6 and 7, batching (Appendix B), answer parsing, shipped recordings."""

from __future__ import annotations

import re

import pytest

from cec.concepts.client import ApiSettings
from cec.concepts.generate import GenerationSettings, generate_concepts
from cec.concepts.parse import AnswerFormatError, parse_concept_answer
from cec.concepts.prompts import CodeRow, leaf_request, make_batches, parent_request, render
from cec.datasets.mimic3 import code_table_rows
from cec.datasets.mimic4 import shipped_code_rows
from tests.conftest import REPO

# The instruction texts of the paper's Fig. 6 and Fig. 7, as printed (line breaks are the
# figure's layout; compared with whitespace normalised).
FIG6 = """You are a medical coding expert. You have to determine some
significantly unique medical concepts that are relevant to the parents of
a list of ICD codes given as 'code : title_description'. The parent codes
are the larger area under which the leaf codes appear (i.e. 'x.y :
title_description' has a parent code like 'x : title_description').
Remember that, the concepts generated should be useful to determine
the parent codes of these ICD codes. So, you should try to make
concepts that fall into a broader category compared to the condition of
the ICD code. Try to make them in a way so that the medical concepts
can both be useful for identifying the parent code, and help us
discriminate among the parent codes."""
FIG7 = """You are a medical coding expert. You have to determine some
significantly unique medical concepts that are relevant to a list of ICD
codes given as 'code : title_description'. Remember that these ICD
codes fall under parent codes (i.e. 'x.y : title_description' has a parent
code like 'x : title_description'). We have already enlisted relevant
medical concepts that are significant to identify the parent codes. So,
generate medical concepts that are uniquely significant only for the leaf
code. Try to make them in a way so that the medical concepts can both
be useful for identifying the ICD code, and help us discriminate it from
its sibling codes."""
OUTPUT_FORMAT = """Output Format : (List of concepts for each code description, i.e. :
[{'code' : [list of concept phrases]}, ...])"""
ROWS = [
    CodeRow("584.9", "Acute kidney failure, unspecified", "584", "Acute kidney failure"),
    CodeRow("585.9", "Chronic kidney disease, unspecified", "585", "Chronic kidney disease (ckd)"),
    CodeRow("486", "Pneumonia, organism unspecified", "480-488", "Pneumonia and influenza"),
]


def _norm(text: str) -> str:
    return " ".join(text.split())


def _sections(prompt: str) -> dict[str, str]:
    parts = re.split(r"^#### (\w+) :\n?", prompt, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_parent_prompt_is_fig6() -> None:
    req = parent_request(ROWS, "concepts_parent_v1.jinja2")
    sections = _sections(req.prompt)
    assert list(sections) == ["Instruction", "Input", "Response"]
    assert _norm(sections["Instruction"]) == _norm(FIG6)
    assert _norm(OUTPUT_FORMAT) in _norm(sections["Input"])
    assert (
        "{'leaf_code' : ('584.9', 'Acute kidney failure, unspecified'), 'parent_code' : "
        "('584', 'Acute kidney failure')}" in req.prompt
    )
    assert "('480-488', 'Pneumonia and influenza')" in req.prompt
    assert req.prompt.rstrip().endswith("#### Response :")
    assert req.answer_codes == ["584", "585", "480-488"]


def test_leaf_prompt_is_fig7_and_carries_parent_concepts() -> None:
    parents = {"584": ["Rising serum creatinine", "Oliguria"]}
    req = leaf_request(ROWS, parents, "concepts_leaf_v1.jinja2")
    sections = _sections(req.prompt)
    assert _norm(sections["Instruction"]) == _norm(FIG7)
    assert "'parent_concepts' : ['Rising serum creatinine', 'Oliguria']" in req.prompt
    assert "'parent_concepts' : []" in req.prompt  # 585 has none yet
    assert req.answer_codes == ["584.9", "585.9", "486"]


def test_quotes_in_titles_stay_valid_literals() -> None:
    row = CodeRow("V45.81", "Patient's bypass status", "V45", "Other postprocedural states")
    prompt = parent_request([row], "concepts_parent_v1.jinja2").prompt
    assert '"Patient\'s bypass status"' in prompt


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (50, [7, 7, 6, 6, 6, 6, 6, 6]),
        (7, [7]),
        (5, [5]),
        (3, [3]),
        (10, [5, 5]),
        (15, [5, 5, 5]),
        (0, []),
    ],
)
def test_batches_of_five_to_seven(n: int, sizes: list[int]) -> None:
    batches = make_batches(list(range(n)))
    assert [len(b) for b in batches] == sizes
    assert [x for b in batches for x in b] == list(range(n))  # order kept


def test_batch_sizes_stay_within_bounds() -> None:
    for n in range(10, 400):
        assert all(5 <= len(b) <= 7 for b in make_batches(list(range(n)))), n


@pytest.mark.parametrize(
    "text",
    [
        "[{'584': ['Oliguria', 'Rising creatinine']}]",
        '[{"584": ["Oliguria", "Rising creatinine"]}]',
        '```json\n[{"584": ["Oliguria", "Rising creatinine"]}]\n```',
        "Sure! Here they are:\n```python\n[{'584': ['Oliguria', 'Rising creatinine']}]\n```",
        '{"584": ["Oliguria", "Rising creatinine"]}',
        "Concepts: [{'584': ['Oliguria', '  Rising   creatinine ', 'oliguria']}]",
    ],
)
def test_answer_variants_are_read(text: str) -> None:
    assert parse_concept_answer(text, ["584", "585"]) == {"584": ["Oliguria", "Rising creatinine"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no concepts today", "no list"),
        ("[{'584': ['Oliguria'", "not closed"),
        ("[{'584': 'Oliguria'}]", "not a list of strings"),
        ("[{'999': ['x']}]", "not asked: 999"),
        ("[['584', 'x']]", "something other than"),
    ],
)
def test_unreadable_answers_are_reported(text: str, message: str) -> None:
    with pytest.raises(AnswerFormatError, match=message):
        parse_concept_answer(text, ["584"])


def test_render_names_the_missing_variable(tmp_path) -> None:  # noqa: ANN001
    from cec.plumbing.errors import InputError

    path = tmp_path / "t.jinja2"
    path.write_text("{{ codes }}")
    with pytest.raises(InputError, match="codes"):
        render(str(path))


@pytest.mark.parametrize("dataset", ["mimic3_50", "rare50", "mimic4_icd10_50"])
def test_shipped_recordings_replay_for_every_code(dataset: str) -> None:
    """The demo's hand-written recordings match the current templates and code tables."""
    lists = {
        "mimic3_50": "top50_codes.txt",
        "rare50": "rare50_codes.txt",
        "mimic4_icd10_50": "mimic4_icd10_top50.txt",
    }
    codes = REPO / "config" / "codes" / lists[dataset]
    table = (
        shipped_code_rows(codes, 10)
        if dataset.startswith("mimic4")
        else code_table_rows(codes, "caml")  # as the shipped configs read the lists
    )
    rows = [
        CodeRow(r["code"], r["description"], r["parent"], r["parent_description"]) for r in table
    ]
    settings = GenerationSettings(
        mode="replay",
        recordings=REPO / "src/cec/resources/concepts/recordings" / f"{dataset}.jsonl",
    )
    result = generate_concepts(rows, settings, ApiSettings(model="gpt-4-0613"))
    assert {r.code for r in rows} == set(result.leaf)
    assert {r.parent for r in rows} == set(result.parent)
    assert all(result.leaf.values()) and all(result.parent.values())
    assert result.api_requests == 0
