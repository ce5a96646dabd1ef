"""Derived concepts (cec.concepts.derived): phrases from ICD titles and CMS inclusion terms,
hand-checked on real titles, and their way through write_raw and the de-duplication rule."""

from __future__ import annotations

import gzip
import importlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cec.concepts.dedup import read_raw, write_concept_set
from cec.concepts.derived import (
    MAX_LEAF,
    MAX_PARENT,
    SOURCE_BOTH,
    SOURCE_CODE,
    SOURCE_INCLUSION,
    SOURCE_TITLE,
    derive_concepts,
    icd10cm_codes,
    pcs_table_phrases,
    title_phrases,
)
from cec.concepts.generate import write_raw
from cec.concepts.prompts import CodeRow
from cec.icd import icd10
from cec.icd.icd9 import Icd9Hierarchy

TOOLS = Path(__file__).resolve().parents[1] / "tools"

# Real titles of the shipped ICD-9-CM (v32) and ICD-10 tables; test_titles_are_the_shipped_ones
# checks each against them.
ICD9_DIAGNOSES = [
    CodeRow(
        "250.00",
        "Diabetes mellitus without mention of complication, type II or unspecified type, not "
        "stated as uncontrolled",
        "250",
        "Diabetes mellitus",
    ),
    CodeRow("486", "Pneumonia, organism unspecified", "480-488", "Pneumonia and influenza"),
    CodeRow("584.9", "Acute kidney failure, unspecified", "584", "Acute kidney failure"),
    CodeRow("428.0", "Congestive heart failure, unspecified", "428", "Heart failure"),
    CodeRow("V45.81", "Aortocoronary bypass status", "V45", "Other postprocedural states"),
]
ICD9_PROCEDURES = [
    CodeRow(
        "96.71",
        "Continuous invasive mechanical ventilation for less than 96 consecutive hours",
        "96",
        "Nonoperative intubation and irrigation",
    ),
]
CM = [
    CodeRow("I50.1", "Left ventricular failure, unspecified", "I50", "Heart failure"),
    CodeRow("I50.21", "Acute systolic (congestive) heart failure", "I50", "Heart failure"),
    CodeRow(
        "I50.23", "Acute on chronic systolic (congestive) heart failure", "I50", "Heart failure"
    ),
    CodeRow("I50.9", "Heart failure, unspecified", "I50", "Heart failure"),
    CodeRow(
        "E11.22",
        "Type 2 diabetes mellitus with diabetic chronic kidney disease",
        "E11",
        "Type 2 diabetes mellitus",
    ),
    CodeRow(
        "I11.9",
        "Hypertensive heart disease without heart failure",
        "I11",
        "Hypertensive heart disease",
    ),
    CodeRow(
        "I21.4",
        "Non-ST elevation (NSTEMI) myocardial infarction",
        "I21",
        "Acute myocardial infarction",
    ),
]
PCS = [
    CodeRow(
        "0FT44ZZ",
        "Resection of Gallbladder, Percutaneous Endoscopic Approach",
        "0FT",
        "Medical and Surgical, Hepatobiliary System and Pancreas, Resection",
    ),
    CodeRow(
        "B040ZZZ",
        "Ultrasonography of Brain",
        "B04",
        "Imaging, Central Nervous System, Ultrasonography",
    ),
]


def test_titles_are_the_shipped_ones() -> None:
    h9 = Icd9Hierarchy.load()
    h10 = icd10.Icd10Hierarchy.load()
    for rows, hierarchy, kind in (
        (ICD9_DIAGNOSES, h9, "diagnosis"),
        (ICD9_PROCEDURES, h9, "procedure"),
        (CM, h10, "diagnosis"),
        (PCS, h10, "procedure"),
    ):
        for row in rows:
            info = hierarchy.info(row.code, kind)
            assert info is not None, row.code
            assert (info.title, info.parent, info.parent_title) == (
                row.description,
                row.parent,
                row.parent_description,
            )


@pytest.mark.parametrize(
    ("title", "phrases"),
    [
        # ICD-9 diagnoses: noise parts ("not stated as uncontrolled", "organism unspecified")
        # go, the head is a phrase, " without " keeps only its left side
        (
            ICD9_DIAGNOSES[0].description,
            [
                "diabetes mellitus without mention of complication, type II or unspecified type",
                "diabetes mellitus without mention of complication",
                "diabetes mellitus",
            ],
        ),
        ("Pneumonia, organism unspecified", ["pneumonia"]),
        ("Other postprocedural states", ["postprocedural states"]),
        ("Other and unspecified hyperlipidemia", ["hyperlipidemia"]),
        # ICD-9 procedure: " for " keeps its left side
        (
            ICD9_PROCEDURES[0].description,
            [
                "continuous invasive mechanical ventilation for less than 96 consecutive hours",
                "continuous invasive mechanical ventilation",
            ],
        ),
        # ... but not a one-word one
        (
            "Encounter for screening for malignant neoplasm of colon",
            ["encounter for screening for malignant neoplasm of colon"],
        ),
        # ICD-10-CM: parentheses folded, " with " keeps both sides, acronyms keep their case
        (
            "Acute on chronic systolic (congestive) heart failure",
            ["acute on chronic systolic heart failure"],
        ),
        (
            "Type 2 diabetes mellitus with diabetic chronic kidney disease",
            [
                "type 2 diabetes mellitus with diabetic chronic kidney disease",
                "type 2 diabetes mellitus",
                "diabetic chronic kidney disease",
            ],
        ),
        (
            "Hypertensive heart disease without heart failure",
            ["hypertensive heart disease without heart failure", "hypertensive heart disease"],
        ),
        (
            "Non-ST elevation (NSTEMI) myocardial infarction",
            ["non-ST elevation myocardial infarction"],
        ),
        ("Escherichia coli [E. coli] NOS", ["escherichia coli"]),
        # ICD-10-PCS: the qualifying parts after the head are no phrases of their own
        (
            PCS[0].description,
            [
                "resection of gallbladder, percutaneous endoscopic approach",
                "resection of gallbladder",
            ],
        ),
        ("Unspecified", []),
        ("", []),
    ],
)
def test_title_phrases(title: str, phrases: list[str]) -> None:
    assert title_phrases(title) == phrases


def test_a_without_clause_never_becomes_a_phrase() -> None:
    """The absent condition of "X without Y" would be evidence for the wrong code."""
    phrases = title_phrases("Hypertensive heart disease without heart failure")
    assert "heart failure" not in phrases
    with_or_without = title_phrases(
        "Acquired absence of knee joint following explantation of knee joint prosthesis, "
        "with or without presence of antibiotic-impregnated cement spacer"
    )
    assert not any("cement spacer" in p and "absence" not in p for p in with_or_without)


def test_pcs_table_phrases_name_the_operation_and_body_system() -> None:
    assert pcs_table_phrases(PCS[0].parent_description) == [
        "resection of hepatobiliary system and pancreas",
        "medical and surgical, hepatobiliary system and pancreas, resection",
    ]
    assert pcs_table_phrases("Mental Health, Medication Management") == [
        "medication management",
        "mental health, medication management",
    ]


def test_shipped_inclusion_terms() -> None:
    """The CMS April 2026 tabular XML lists six inclusion terms under I50.1 (grep
    '<name>I50.1</name>' -A10): the table keeps them in order, keyed by the dotted label."""
    terms = icd10.inclusion_terms()
    assert terms["I50.1"] == (
        "Cardiac asthma",
        "Edema of lung with heart disease NOS",
        "Edema of lung with heart failure",
        "Left heart failure",
        "Pulmonary edema with heart disease NOS",
        "Pulmonary edema with heart failure",
    )
    assert terms["I50.2"][0] == "Heart failure with reduced ejection fraction [HFrEF]"
    assert "I50" not in terms and "I50.21" not in terms  # none listed under them
    rows = icd10.read_table("icd10cm_inclusion_terms.tsv.gz", icd10.INCLUSION_HEADER)
    assert len(rows) == 12556
    codes = [code for code, _ in rows]
    assert codes == sorted(codes) and all("." not in c for c in codes)  # as icd10cm_codes
    assert not any(t.startswith(("This ", "These ")) for _, t in rows)  # instructions dropped


def _derive_cm() -> Any:
    return derive_concepts(CM, icd10cm_codes([_table_row(r, "diagnosis") for r in CM], 10))


def _table_row(row: CodeRow, kind: str) -> dict[str, str]:
    return {
        "code": row.code,
        "kind": kind,
        "description": row.description,
        "parent": row.parent,
        "parent_description": row.parent_description,
    }


def test_icd10cm_codes_take_inclusion_terms() -> None:
    result = _derive_cm()
    # own terms, after the title phrase, capped at MAX_LEAF
    assert result.leaf["I50.1"] == [
        "left ventricular failure",
        "cardiac asthma",
        "edema of lung with heart disease",
        "edema of lung with heart failure",
        "left heart failure",
        "pulmonary edema with heart disease",
    ]
    assert result.sources[("leaf", "I50.1")] == SOURCE_BOTH
    # no terms of its own: those of its nearest ancestor below the parent (I50.2)
    assert result.leaf["I50.21"] == [
        "acute systolic heart failure",
        "heart failure with reduced ejection fraction",
        "systolic left ventricular heart failure",
    ]
    # "heart failure" is the parent's phrase: the leaf keeps only its inclusion terms
    assert result.parent["I50"] == ["heart failure"]
    assert result.leaf["I50.9"] == [
        "cardiac, heart or myocardial failure",
        "congestive heart disease",
        "congestive heart failure",
    ]
    assert result.sources[("leaf", "I50.9")] == SOURCE_INCLUSION
    assert result.sources[("parent", "I50")] == SOURCE_TITLE
    assert result.exchanges == [] and result.api_requests == 0 and result.api_tokens == 0
    assert all(key.startswith("derived:") for key in result.sources.values())


def test_inclusion_terms_only_for_icd10cm_diagnoses() -> None:
    """A code string does not say its system: the PCS table B04 reads like the CM category
    B04 (Mpox), the ICD-9 V49.3 like the CM code V49.3 (car accident NOS)."""
    terms = icd10.inclusion_terms()
    assert terms["B04"] == ("Mpox",) and terms["V49.3"][0] == "Car accident NOS, nontraffic"
    icd9 = CodeRow(
        "V49.3", "Sensory problems with limbs", "V49", "Other conditions influencing health status"
    )
    mixed = [_table_row(CM[0], "diagnosis"), _table_row(PCS[1], "procedure")]
    cm_codes = icd10cm_codes(mixed, 10)
    assert cm_codes == {"I50.1"}
    assert icd10cm_codes([_table_row(icd9, "diagnosis")], 9) == frozenset()
    result = derive_concepts([CM[0], PCS[1], icd9], cm_codes)
    assert result.parent["B04"] == [
        "ultrasonography of central nervous system",
        "imaging, central nervous system, ultrasonography",
    ]
    assert result.leaf["V49.3"] == ["sensory problems with limbs", "sensory problems", "limbs"]
    assert "cardiac asthma" in result.leaf["I50.1"]


def _all_rows() -> list[CodeRow]:
    odd = [
        CodeRow("799.9", "", "799", ""),  # no titles at all
        CodeRow("799.8", "Unspecified", "799", ""),  # nothing but noise
    ]
    return ICD9_DIAGNOSES + ICD9_PROCEDURES + CM + PCS + odd


def test_every_code_and_parent_gets_capped_phrases() -> None:
    rows = _all_rows()
    result = derive_concepts(rows, {r.code for r in CM})
    assert list(result.leaf) == [r.code for r in sorted(rows, key=lambda r: (r.parent, r.code))]
    assert set(result.parent) == {r.parent for r in rows}
    for row in rows:
        leaf, parent = result.leaf[row.code], result.parent[row.parent]
        assert 1 <= len(leaf) <= MAX_LEAF and 1 <= len(parent) <= MAX_PARENT, row.code
        assert all(p.strip() for p in leaf + parent), row.code
        # no leaf phrase repeats a phrase of its parent (see the dedup test below)
        assert not {p.casefold() for p in leaf} & {p.casefold() for p in parent}, row.code
    # fallbacks: the title with its noise; the code itself when there is no title
    assert result.leaf["584.9"] == ["acute kidney failure, unspecified"]
    assert result.leaf["799.8"] == ["unspecified"]
    assert result.leaf["799.9"] == ["799.9"] and result.parent["799"] == ["799"]
    assert result.sources[("leaf", "799.9")] == SOURCE_CODE
    assert result.parent["480-488"] == ["pneumonia and influenza"]


def test_derivation_is_deterministic(tmp_path: Path) -> None:
    rows = _all_rows()
    shuffled = list(rows)
    random.Random(7).shuffle(shuffled)
    cm = {r.code for r in CM}
    first, second = derive_concepts(rows, cm), derive_concepts(shuffled, cm)
    assert first == second
    write_raw(first, rows, tmp_path / "a.jsonl", tmp_path / "ax.jsonl")
    write_raw(second, shuffled, tmp_path / "b.jsonl", tmp_path / "bx.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


class _ExactEncoder:
    """Embeds equal texts (ignoring case) to the same unit vector, different ones to
    orthogonal vectors: de-duplication then merges exact repeats only, like MiniLM does
    (cosine 1.0) without the model."""

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        index: dict[str, int] = {}
        ids = [index.setdefault(t.casefold(), len(index)) for t in texts]
        return np.eye(len(index), dtype=np.float32)[ids]


def test_round_trip_through_write_raw_and_dedup(tmp_path: Path) -> None:
    rows = _all_rows()
    result = derive_concepts(rows, {r.code for r in CM})
    raw, exchanges = tmp_path / "concepts_raw.jsonl", tmp_path / "exchanges.jsonl"
    write_raw(result, rows, raw, exchanges)
    assert exchanges.read_text() == ""  # derived: nothing was asked
    keys = [json.loads(line)["request_key"] for line in raw.read_text().splitlines()]
    assert all(k.startswith("derived:") for k in keys)
    concepts, parent_of = read_raw(raw)
    assert parent_of == {r.code: r.parent for r in rows}
    for level, found in (("parent", result.parent), ("leaf", result.leaf)):
        for owner, phrases in found.items():
            assert [c.text for c in concepts if c.level == level and c.owner == owner] == phrases
    # the de-duplication rule accepts the set: no code loses all its parent concepts to
    # an exact repeat among its leaf concepts (584.9 under 584, I50.9 under I50)
    summary = write_concept_set(raw, tmp_path / "set", "derived_test", encoder=_ExactEncoder())
    mapping = json.loads((tmp_path / "set" / "code_concepts.json").read_text())
    assert set(mapping) == {r.code for r in rows}
    assert all(m["leaf"] and m["parent"] for m in mapping.values())
    assert summary["generated"]["total"] == len(concepts)


def _export_module() -> Any:
    sys.path.insert(0, str(TOOLS))
    try:
        return importlib.import_module("export_icd10cm_inclusion_terms")
    finally:
        sys.path.remove(str(TOOLS))


def test_export_reads_inclusion_terms_of_codes_only(tmp_path: Path) -> None:
    export = _export_module()
    xml = b"""<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular><chapter><name>9</name><desc>Circulatory</desc>
<section id="I30-I5A"><inclusionTerm><note>A section term</note></inclusionTerm>
<diag><name>I50</name><desc>Heart failure</desc>
  <diag><name>I50.1</name><desc>Left ventricular failure</desc>
    <inclusionTerm><note>Cardiac  asthma</note><note>Left\theart failure</note></inclusionTerm>
    <excludes1><note>an excluded condition</note></excludes1></diag></diag>
</section>
<diag><name>A09</name><desc>Diarrhea</desc>
  <inclusionTerm><note>Infectious colitis NOS</note>
  <note>This category is for use with other codes.</note></inclusionTerm></diag>
</chapter></ICD10CM.tabular>"""
    source = export.Source(tmp_path / "x.whl", export.XML_MEMBER, xml)
    rows, dropped = export.inclusion_terms(source)
    assert rows == [
        ("A09", "Infectious colitis NOS"),
        ("I501", "Cardiac asthma"),
        ("I501", "Left heart failure"),
    ]
    assert dropped == 1
    text = export.render(rows)
    assert text.splitlines()[0] == "code\tterm"
    # the shipped file was written the same way (mtime 0, undotted, sorted)
    shipped = (TOOLS.parent / "src/cec/resources/icd10/icd10cm_inclusion_terms.tsv.gz").read_bytes()
    assert shipped[4:8] == b"\0\0\0\0"
    assert gzip.decompress(shipped).decode().startswith("code\tterm\nA000\t")
