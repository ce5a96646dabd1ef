"""Schema and content checks for the synthetic-note knowledge base (codes_top50.yaml).

The synthetic MIMIC-III generator reads this YAML to write discharge summaries whose
evidence implies (or, through negations, denies) ICD-9 codes. These tests pin the schema
the engine relies on and a few content rules that keep the synthetic task honest: evidence
never spells out a code's official title, confounder siblings exist for the hard labels,
and correlations/exclusions only refer to codes defined in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

KB_PATH = (
    Path(__file__).resolve().parents[1] / "src" / "cec" / "resources" / "synth" / "codes_top50.yaml"
)

# MIMIC-III-50 (Mullenbach et al. 2018) in frequency order, with the official ICD-9-CM
# (CMS v32) long titles.
TOP50_TITLES: dict[str, str] = {
    "401.9": "Unspecified essential hypertension",
    "38.93": "Venous catheterization, not elsewhere classified",
    "428.0": "Congestive heart failure, unspecified",
    "427.31": "Atrial fibrillation",
    "414.01": "Coronary atherosclerosis of native coronary artery",
    "96.04": "Insertion of endotracheal tube",
    "96.6": "Enteral infusion of concentrated nutritional substances",
    "584.9": "Acute kidney failure, unspecified",
    "250.00": (
        "Diabetes mellitus without mention of complication, type II or unspecified type, "
        "not stated as uncontrolled"
    ),
    "96.71": "Continuous invasive mechanical ventilation for less than 96 consecutive hours",
    "272.4": "Other and unspecified hyperlipidemia",
    "518.81": "Acute respiratory failure",
    "99.04": "Transfusion of packed cells",
    "39.61": "Extracorporeal circulation auxiliary to open heart surgery",
    "599.0": "Urinary tract infection, site not specified",
    "530.81": "Esophageal reflux",
    "96.72": "Continuous invasive mechanical ventilation for 96 consecutive hours or more",
    "272.0": "Pure hypercholesterolemia",
    "285.9": "Anemia, unspecified",
    "88.56": "Coronary arteriography using two catheters",
    "244.9": "Unspecified acquired hypothyroidism",
    "486": "Pneumonia, organism unspecified",
    "38.91": "Arterial catheterization",
    "285.1": "Acute posthemorrhagic anemia",
    "36.15": "Single internal mammary-coronary artery bypass",
    "276.2": "Acidosis",
    "496": "Chronic airway obstruction, not elsewhere classified",
    "99.15": "Parenteral infusion of concentrated nutritional substances",
    "995.92": "Severe sepsis",
    "V58.61": "Long-term (current) use of anticoagulants",
    "507.0": "Pneumonitis due to inhalation of food or vomitus",
    "038.9": "Unspecified septicemia",
    "88.72": "Diagnostic ultrasound of heart",
    "585.9": "Chronic kidney disease, unspecified",
    "403.90": (
        "Hypertensive chronic kidney disease, unspecified, with chronic kidney disease "
        "stage I through stage IV, or unspecified"
    ),
    "311": "Depressive disorder, not elsewhere classified",
    "305.1": "Tobacco use disorder",
    "37.22": "Left heart cardiac catheterization",
    "412": "Old myocardial infarction",
    "33.24": "Closed [endoscopic] biopsy of bronchus",
    "39.95": "Hemodialysis",
    "287.5": "Thrombocytopenia, unspecified",
    "410.71": "Subendocardial infarction, initial episode of care",
    "276.1": "Hyposmolality and/or hyponatremia",
    "V45.81": "Aortocoronary bypass status",
    "424.0": "Mitral valve disorders",
    "45.13": "Other endoscopy of small intestine",
    "V15.82": "Personal history of tobacco use",
    "511.9": "Unspecified pleural effusion",
    "37.23": "Combined right and left heart cardiac catheterization",
}
TOP50 = list(TOP50_TITLES)

# Official titles of the confounder siblings; checked when the code is in the file.
CONFOUNDER_TITLES: dict[str, str] = {
    "585.3": "Chronic kidney disease, Stage III (moderate)",
    "585.4": "Chronic kidney disease, Stage IV (severe)",
    "585.6": "End stage renal disease",
    "584.5": "Acute kidney failure with lesion of tubular necrosis",
    "428.21": "Acute systolic heart failure",
    "428.22": "Chronic systolic heart failure",
    "428.23": "Acute on chronic systolic heart failure",
    "428.31": "Acute diastolic heart failure",
    "428.32": "Chronic diastolic heart failure",
    "428.33": "Acute on chronic diastolic heart failure",
    "96.70": "Continuous invasive mechanical ventilation of unspecified duration",
    "427.32": "Atrial flutter",
    "410.41": "Acute myocardial infarction of other inferior wall, initial episode of care",
    "518.84": "Acute and chronic respiratory failure",
    "250.01": (
        "Diabetes mellitus without mention of complication, type I [juvenile type], "
        "not stated as uncontrolled"
    ),
    "250.02": (
        "Diabetes mellitus without mention of complication, type II or unspecified type, "
        "uncontrolled"
    ),
    "403.91": (
        "Hypertensive chronic kidney disease, unspecified, with chronic kidney disease "
        "stage V or end stage renal disease"
    ),
    "038.11": "Methicillin susceptible Staphylococcus aureus septicemia",
    "995.91": "Sepsis",
    "285.21": "Anemia in chronic kidney disease",
    "276.0": "Hyperosmolality and/or hypernatremia",
    "37.21": "Right heart cardiac catheterization",
}
ALL_TITLES = {**TOP50_TITLES, **CONFOUNDER_TITLES}

ENTRY_KEYS = {
    "kind",
    "role",
    "prevalence",
    "chronic",
    "mentions",
    "findings",
    "meds",
    "negations",
    "co_occurs",
    "excludes",
}
REQUIRED_KEYS = ENTRY_KEYS - {"co_occurs", "excludes"}
TEXT_FIELDS = ("mentions", "findings", "meds", "negations")

DIAG_RE = re.compile(r"^(?:\d{3}(?:\.\d{1,2})?|V\d{2}(?:\.\d{1,2})?|E\d{3}(?:\.\d)?)$")
PROC_RE = re.compile(r"^\d{2}\.\d{1,2}$")
NUM_PLACEHOLDER_RE = re.compile(r"\{n:(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\}")
NAMED_PLACEHOLDER_RE = re.compile(r"\{(?:date|name|doctor|hospital)\}")


@pytest.fixture(scope="module")
def kb() -> dict[str, Any]:
    with KB_PATH.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def codes(kb: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return kb["codes"]


def _strings(entry: dict[str, Any]):
    for field in TEXT_FIELDS:
        for text in entry[field]:
            yield field, text


def test_top_level(kb: dict[str, Any]) -> None:
    assert set(kb) == {"version", "codes"}
    assert kb["version"] == 1
    assert isinstance(kb["codes"], dict) and kb["codes"]


def test_every_top50_code_is_a_label_in_frequency_order(codes: dict[str, dict[str, Any]]) -> None:
    assert all(isinstance(code, str) for code in codes)
    labels = [code for code, entry in codes.items() if entry["role"] == "label"]
    assert labels == TOP50, "labels must be exactly the MIMIC-III-50 codes, in frequency order"
    assert len(TOP50) == len(set(TOP50)) == 50


def test_confounders(codes: dict[str, dict[str, Any]]) -> None:
    confounders = [code for code, entry in codes.items() if entry["role"] == "confounder"]
    assert 15 <= len(confounders) <= 30
    assert not set(confounders) & set(TOP50)
    # Every confounder is a known ICD-9-CM sibling listed (with its title) in this test.
    assert set(confounders) <= set(CONFOUNDER_TITLES)

    # ... and shares a category (first 3 chars for diagnoses, 2 for procedures) with a label.
    def category(code: str) -> str:
        return code.split(".")[0]

    label_categories = {category(code) for code in TOP50}
    for code in confounders:
        assert category(code) in label_categories, code


@pytest.mark.parametrize(
    "required",
    [
        "585.3",
        "585.6",
        "584.5",
        "428.23",
        "428.33",
        "96.70",
        "427.32",
        "410.41",
        "518.84",
        "250.01",
        "250.02",
        "403.91",
        "038.11",
        "995.91",
        "285.21",
    ],
)
def test_key_siblings_present(codes: dict[str, dict[str, Any]], required: str) -> None:
    assert required in codes
    assert codes[required]["role"] == "confounder"


def test_entry_schema(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        assert isinstance(entry, dict), code
        assert REQUIRED_KEYS <= set(entry) <= ENTRY_KEYS, (code, set(entry) ^ ENTRY_KEYS)
        assert entry["kind"] in {"diagnosis", "procedure"}, code
        assert entry["role"] in {"label", "confounder"}, code
        assert isinstance(entry["chronic"], bool), code
        prev = entry["prevalence"]
        assert isinstance(prev, (int, float)) and not isinstance(prev, bool), code
        assert 0.0 <= prev <= 1.0, code
        for field in TEXT_FIELDS:
            values = entry[field]
            assert isinstance(values, list), (code, field)
            assert all(isinstance(v, str) and v.strip() for v in values), (code, field)
            lowered = [v.strip().lower() for v in values]
            assert len(lowered) == len(set(lowered)), (code, field, "duplicate strings")


def test_kind_matches_code_shape(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        if entry["kind"] == "procedure":
            assert PROC_RE.match(code), code
            assert not entry["chronic"], code
        else:
            assert DIAG_RE.match(code), code


def test_minimum_list_lengths(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        label = entry["role"] == "label"
        assert len(entry["mentions"]) >= 5, code
        assert len(entry["findings"]) >= (10 if label else 5), code
        assert len(entry["negations"]) >= 3, code


def test_prevalence_ranges(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        prev = entry["prevalence"]
        if entry["role"] == "label":
            assert 0.02 <= prev <= 0.5, code
        else:
            assert 0.005 <= prev <= 0.05, code
    # The most frequent label stays the most prevalent; the list roughly decreases.
    prevs = [codes[c]["prevalence"] for c in TOP50]
    assert prevs[0] == max(prevs)
    assert sum(prevs[:10]) / 10 > sum(prevs[-10:]) / 10


def test_placeholders(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        for field, text in _strings(entry):
            for lo, hi in NUM_PLACEHOLDER_RE.findall(text):
                assert float(lo) < float(hi), (code, text)
                lo_dec = len(lo.split(".")[1]) if "." in lo else 0
                hi_dec = len(hi.split(".")[1]) if "." in hi else 0
                assert lo_dec == hi_dec, (code, text)
            rest = NUM_PLACEHOLDER_RE.sub("", NAMED_PLACEHOLDER_RE.sub("", text))
            assert "{" not in rest and "}" not in rest, (code, field, text)


def test_no_official_title_verbatim(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        title = ALL_TITLES[code].lower()
        for field in ("mentions", "findings"):
            for text in entry[field]:
                assert title not in text.lower(), (code, field, text)


def test_relations_refer_to_known_codes(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        co = entry.get("co_occurs", {}) or {}
        ex = entry.get("excludes", []) or []
        assert isinstance(co, dict), code
        assert isinstance(ex, list), code
        for other, p in co.items():
            assert isinstance(other, str) and other in codes, (code, other)
            assert other != code, code
            assert isinstance(p, (int, float)) and not isinstance(p, bool), (code, other)
            assert 0.0 <= p <= 1.0, (code, other)
            assert other not in ex, (code, other, "co-occurs with an excluded code")
        for other in ex:
            assert isinstance(other, str) and other in codes, (code, other)
            assert other != code, code
        assert len(ex) == len(set(ex)), code


def test_excludes_are_symmetric(codes: dict[str, dict[str, Any]]) -> None:
    for code, entry in codes.items():
        for other in entry.get("excludes", []) or []:
            assert code in (codes[other].get("excludes") or []), (code, other)


@pytest.mark.parametrize(
    ("code", "other"),
    [
        ("96.71", "96.72"),
        ("96.71", "96.70"),
        ("250.00", "250.01"),
        ("250.00", "250.02"),
        ("584.9", "584.5"),
        ("585.9", "585.6"),
        ("518.81", "518.84"),
        ("995.92", "995.91"),
        ("038.9", "038.11"),
        ("305.1", "V15.82"),
        ("37.22", "37.23"),
        ("403.90", "403.91"),
    ],
)
def test_clinical_exclusions(codes: dict[str, dict[str, Any]], code: str, other: str) -> None:
    assert other in codes[code]["excludes"]


@pytest.mark.parametrize(
    ("code", "other", "minimum"),
    [
        ("403.90", "585.9", 0.6),
        ("038.9", "995.92", 0.4),
        ("96.04", "96.71", 0.3),
        ("96.04", "96.72", 0.3),
        ("39.61", "414.01", 0.6),
        ("36.15", "39.61", 0.6),
        ("88.56", "37.22", 0.4),
        ("V58.61", "427.31", 0.4),
        ("403.91", "585.6", 0.6),
    ],
)
def test_clinical_correlations(
    codes: dict[str, dict[str, Any]], code: str, other: str, minimum: float
) -> None:
    assert codes[code]["co_occurs"][other] >= minimum
