"""Schema and content checks for the rare-50 code knowledge and the neutral note boilerplate.

The synthetic generator (cec.synth) reads both YAML files; these tests pin their schema so
that a content edit cannot silently break the engine or leak a code's evidence into the
boilerplate.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SYNTH = ROOT / "src" / "cec" / "resources" / "synth"
CODES_FILE = SYNTH / "codes_rare50.yaml"
BOILERPLATE_FILE = SYNTH / "note_boilerplate.yaml"
REFERENCE_LIST = ROOT / "config" / "codes" / "rare50_codes.txt"

# Official ICD-9-CM long titles of the MIMIC-III-rare-50 codes (KEPT), some with the
# alternative wording of another ICD-9-CM release. The procedure codes keep caml-mimic's
# formatting, which drops leading zeros: "40.7" is 04.07, "52.0" and "77.7" are the 52.0
# and 77.7 categories.
TITLES: dict[str, tuple[str, ...]] = {
    "148.1": ("Malignant neoplasm of pyriform sinus",),
    "17.36": ("Laparoscopic sigmoidectomy",),
    "171.0": ("Malignant neoplasm of connective and other soft tissue of head, face, and neck",),
    "176.0": ("Kaposi's sarcoma, skin",),
    "202.82": (
        "Other malignant lymphomas, intrathoracic lymph nodes",
        "Other lymphomas, intrathoracic lymph nodes",
    ),
    "252.08": ("Other hyperparathyroidism",),
    "270.6": ("Disorders of urea cycle metabolism",),
    "282.2": ("Anemias due to disorders of glutathione metabolism",),
    "318.2": ("Profound intellectual disabilities", "Profound mental retardation"),
    "338.28": ("Other chronic postoperative pain",),
    "34.71": ("Suture of laceration of chest wall",),
    "351.9": ("Facial nerve disorder, unspecified",),
    "362.11": ("Hypertensive retinopathy",),
    "378.52": ("Third or oculomotor nerve palsy, total",),
    "38.47": ("Resection of vessel with replacement, abdominal veins",),
    "40.7": ("Other excision or avulsion of cranial and peripheral nerves",),
    "447.9": ("Unspecified disorders of arteries and arterioles",),
    "453.50": (
        "Chronic venous embolism and thrombosis of unspecified deep vessels of lower extremity",
    ),
    "477.8": ("Allergic rhinitis due to other allergen",),
    "506.0": ("Bronchitis and pneumonitis due to fumes and vapors",),
    "512.2": ("Postoperative air leak",),
    "52.0": ("Pancreatotomy",),
    "53.02": (
        "Other and open repair of indirect inguinal hernia",
        "Repair of indirect inguinal hernia",
    ),
    "550.11": (
        "Unilateral or unspecified inguinal hernia, with obstruction, without mention of "
        "gangrene, recurrent",
        "Inguinal hernia, with obstruction, without mention of gangrene, unilateral or "
        "unspecified, recurrent",
    ),
    "569.42": ("Anal or rectal pain",),
    "596.89": ("Other specified disorders of bladder",),
    "607.82": ("Vascular disorders of penis",),
    "701.0": ("Circumscribed scleroderma",),
    "710.8": ("Other specified diffuse diseases of connective tissue",),
    "719.49": ("Pain in joint, multiple sites", "Pain in joint, involving multiple sites"),
    "737.43": ("Scoliosis associated with other conditions",),
    "747.69": ("Anomalies of other specified sites of peripheral vascular system",),
    "77.7": ("Excision of bone for graft",),
    "780.94": ("Early satiety",),
    "785.9": ("Other symptoms involving cardiovascular system",),
    "790.8": ("Viremia, unspecified",),
    "813.32": ("Open fracture of shaft of ulna (alone)",),
    "816.02": ("Closed fracture of distal phalanx or phalanges of hand",),
    "873.52": ("Open wound of forehead, complicated",),
    "955.1": ("Injury to median nerve",),
    "955.3": ("Injury to radial nerve",),
    "958.91": ("Traumatic compartment syndrome of upper extremity",),
    "959.7": (
        "Injury, other and unspecified, knee, leg, ankle, and foot",
        "Knee, leg, ankle, and foot injury",
    ),
    "990": ("Effects of radiation, unspecified",),
    "998.01": ("Postoperative shock, cardiogenic",),
    "999.82": ("Extravasation of other vesicant agent",),
    "V10.61": ("Personal history of lymphoid leukemia",),
    "V18.3": ("Family history of other blood disorders",),
    "V26.52": ("Vasectomy sterilization status",),
    "V65.3": ("Dietary surveillance and counseling",),
}
RARE50 = frozenset(TITLES)
PROCEDURES = frozenset({"17.36", "34.71", "38.47", "40.7", "52.0", "53.02", "77.7"})

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
NUMBER = re.compile(r"^n:(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")
BASE_NAMES = frozenset({"date", "name", "doctor", "hospital"})
HPI_NAMES = BASE_NAMES | {"age", "sex_word", "complaint"}

MIN_CODE_LISTS = {"mentions": 4, "findings": 6, "negations": 3, "meds": 0}

BOILERPLATE_MIN = {
    "services": 8,
    "allergies": 8,
    "chief_complaints": 25,
    "hpi_openers": 12,
    "hpi_fillers": 25,
    "social_history": 15,
    "family_history": 10,
    "physical_exam": 25,
    "pertinent_results": 20,
    "course_fillers": 25,
    "medication_fillers": 25,
    "discharge_disposition": 5,
    "discharge_condition": 6,
    "discharge_instructions": 10,
    "followup": 8,
    "addendum": 8,
}
NOTE_CATEGORIES = (
    "Nursing/other",
    "Nursing",
    "Radiology",
    "ECG",
    "Physician",
    "Echo",
    "Respiratory",
)
# Copied verbatim by the engine, so no placeholders at all.
VERBATIM_KEYS = ("services", "chief_complaints", "discharge_disposition")

# Terms that would imply a MIMIC-III-50 or rare-50 code; the boilerplate must stay neutral.
FORBIDDEN_SUBSTRINGS = (
    "afib",
    "a-fib",
    "atrial fib",
    "flutter",
    "heart failure",
    "cardiomyopathy",
    "pneumonia",
    "sepsis",
    "septic",
    "bacteremia",
    "intubat",
    "extubat",
    "ventilat",
    "central line",
    "central venous",
    "picc",
    "arterial line",
    "a-line",
    "transfus",
    "prbc",
    "dialysis",
    "diabet",
    "insulin",
    "metformin",
    "hypertensi",
    "lisinopril",
    "metoprolol",
    "amlodipine",
    "coronary",
    "cabg",
    "stent",
    "myocardial",
    "troponin",
    "angina",
    "asthma",
    "emphysema",
    "anemia",
    "thrombocytopenia",
    "hyponatremia",
    "acidosis",
    "renal failure",
    "kidney injury",
    "kidney disease",
    "hypothyroid",
    "levothyroxine",
    "hyperlipid",
    "cholesterol",
    "statin",
    "reflux",
    "pantoprazole",
    "omeprazole",
    "depression",
    "sertraline",
    "citalopram",
    "pack-year",
    "former smoker",
    "quit smoking",
    "tobacco use",
    "warfarin",
    "coumadin",
    "enoxaparin",
    "anticoag",
    "thrombo",
    "embol",
    "pleural effusion",
    "urinary tract infection",
    "aspiration",
    "respiratory failure",
    "tube feed",
    "parenteral",
    "bronchoscop",
    "cardiac cath",
    "catheterization",
    "mitral regurg",
    "regurgitation",
    "pressor",
    "norepinephrine",
    "aspirin",
    "clopidogrel",
    # rare-50 vocabulary
    "vasectomy",
    "hernia",
    "scoliosis",
    "lymphoma",
    "leukemia",
    "sarcoma",
    "kaposi",
    "bruit",
    "viremia",
    "compartment syndrome",
    "g6pd",
    "retinopathy",
    "neuroma",
    "air leak",
    "extravasation",
    "infiltrat",
    "radiation",
    "xrt",
    "satiety",
    "morphea",
    "scleroderma",
    "arthralgia",
    "rectal pain",
    "anal pain",
    "counseling",
    "dietitian",
    "nutritionist",
    "hyperparathyroid",
    "ammonia",
    "rhinitis",
    "allergic",
    "fume",
    "ptosis",
    "palsy",
    "facial droop",
    "fracture of",
    "laceration",
    "pancreatic",
    "pseudocyst",
    "sigmoid",
    "iliac crest",
    "intellectual disab",
    "bleeding disorder",
    "hemophilia",
    "cardiogenic",
    "shock",
)
FORBIDDEN_WORDS = (
    "htn",
    "chf",
    "cad",
    "copd",
    "ckd",
    "esrd",
    "aki",
    "arf",
    "dm",
    "dvt",
    "pe",
    "uti",
    "gerd",
    "egd",
    "tpn",
    "ett",
    "ppd",
    "mi",
    "nstemi",
    "stemi",
    "af",
    "cvl",
    "tlc",
    "crrt",
    "ards",
    "aaa",
    "hld",
    "osa",
)


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{path.name} must be a mapping"
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (plain safe_load keeps the last one)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate keys {sorted(map(str, dupes))}", node.start_mark
        )
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


@pytest.fixture(scope="module")
def codes() -> dict:
    data = _load(CODES_FILE)
    assert data.get("version") == 1
    assert isinstance(data.get("codes"), dict)
    return data["codes"]


@pytest.fixture(scope="module")
def boilerplate() -> dict:
    data = _load(BOILERPLATE_FILE)
    assert data.get("version") == 1
    return data


def _placeholder_errors(text: str, allowed: frozenset[str]) -> list[str]:
    errors = []
    for match in PLACEHOLDER.finditer(text):
        name = match.group(1)
        number = NUMBER.match(name)
        if number:
            lo, hi = number.group(1), number.group(2)
            if float(lo) > float(hi):
                errors.append(f"{{{name}}}: LO > HI")
        elif name not in allowed:
            errors.append(f"unknown placeholder {{{name}}}")
    stripped = PLACEHOLDER.sub("", text)
    if "{" in stripped or "}" in stripped:
        errors.append("stray brace")
    return errors


def _all_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _all_strings(v)]
    return []


# ------------------------------------------------------------------------- code knowledge


def test_files_have_unique_keys() -> None:
    for path in (CODES_FILE, BOILERPLATE_FILE):
        with path.open(encoding="utf-8") as fh:
            yaml.load(fh, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def test_titles_table_is_the_rare50_list() -> None:
    assert len(RARE50) == 50
    assert PROCEDURES <= RARE50
    listed = {
        line.strip()
        for line in REFERENCE_LIST.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == RARE50


def test_all_rare50_codes_present(codes: dict) -> None:
    keys = set(codes)
    assert all(isinstance(k, str) for k in keys), "codes must be quoted strings"
    assert keys == RARE50, (sorted(RARE50 - keys), sorted(keys - RARE50))


@pytest.mark.parametrize("code", sorted(RARE50))
def test_code_entry_schema(codes: dict, code: str) -> None:
    entry = codes[code]
    expected_kind = "procedure" if code in PROCEDURES else "diagnosis"
    assert entry["kind"] == expected_kind
    # Procedure codes have two digits before the dot; diagnoses three (or a V/E prefix).
    assert (re.match(r"^\d{2}\.\d{1,2}$", code) is not None) == (code in PROCEDURES)
    assert entry["role"] == "label"
    assert isinstance(entry["prevalence"], float)
    assert 0.0 <= entry["prevalence"] <= 1.0
    assert isinstance(entry["chronic"], bool)
    if entry["kind"] == "procedure":
        assert entry["chronic"] is False
    for key, minimum in MIN_CODE_LISTS.items():
        items = entry.get(key)
        assert isinstance(items, list), f"{code}.{key} must be a list"
        assert all(isinstance(s, str) and s.strip() for s in items), f"{code}.{key}"
        assert len(items) >= minimum, f"{code}.{key}: {len(items)} < {minimum}"
        assert len(set(items)) == len(items), f"{code}.{key} has duplicates"
    co = entry.get("co_occurs", {}) or {}
    assert isinstance(co, dict)
    for other, p in co.items():
        assert other in RARE50 and other != code, f"{code}.co_occurs: {other}"
        assert isinstance(p, (int, float)) and 0.0 <= p <= 1.0, f"{code}.co_occurs[{other}]"
    excludes = entry.get("excludes", []) or []
    assert isinstance(excludes, list)
    assert all(x in RARE50 and x != code for x in excludes)
    assert not set(excludes) & set(co), f"{code}: a code both co-occurs and is excluded"
    allowed = {
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
    assert set(entry) <= allowed, set(entry) - allowed


@pytest.mark.parametrize("code", sorted(RARE50))
def test_code_placeholders(codes: dict, code: str) -> None:
    for text in _all_strings({k: codes[code].get(k) for k in MIN_CODE_LISTS}):
        errors = _placeholder_errors(text, BASE_NAMES)
        assert not errors, f"{code}: {errors} in {text!r}"


@pytest.mark.parametrize("code", sorted(RARE50))
def test_title_never_verbatim_in_evidence(codes: dict, code: str) -> None:
    entry = codes[code]
    for key in ("mentions", "findings", "meds"):
        for text in entry.get(key) or []:
            for title in TITLES[code]:
                assert title.lower() not in text.lower(), f"{code}.{key}: title in {text!r}"


def test_evidence_is_not_shared_between_codes(codes: dict) -> None:
    seen: dict[str, str] = {}
    for code, entry in codes.items():
        for text in (entry.get("findings") or []) + (entry.get("mentions") or []):
            key = text.lower()
            assert key not in seen or seen[key] == code, f"{text!r} in {seen.get(key)} and {code}"
            seen[key] = code


# ------------------------------------------------------------------------- boilerplate


def test_boilerplate_lists(boilerplate: dict) -> None:
    for key, minimum in BOILERPLATE_MIN.items():
        items = boilerplate.get(key)
        assert isinstance(items, list), f"{key} must be a list"
        assert all(isinstance(s, str) and s.strip() for s in items), key
        assert len(items) >= minimum, f"{key}: {len(items)} < {minimum}"
        assert len(set(items)) == len(items), f"{key} has duplicates"


def test_boilerplate_other_notes(boilerplate: dict) -> None:
    notes = boilerplate.get("other_notes")
    descriptions = boilerplate.get("other_note_descriptions")
    assert isinstance(notes, dict) and isinstance(descriptions, dict)
    assert set(notes) == set(NOTE_CATEGORIES)
    assert set(descriptions) == set(NOTE_CATEGORIES)
    for category in NOTE_CATEGORIES:
        templates = notes[category]
        assert isinstance(templates, list) and len(templates) >= 6, category
        for text in templates:
            assert isinstance(text, str)
            assert 1 <= text.count("\n") + 1 <= 8, f"{category}: {text!r}"
        descs = descriptions[category]
        assert isinstance(descs, list) and len(descs) >= 3, category
        assert all(isinstance(d, str) and d.strip() and "{" not in d for d in descs)


def test_boilerplate_placeholders(boilerplate: dict) -> None:
    for key, value in boilerplate.items():
        if key == "version":
            continue
        allowed = HPI_NAMES if key == "hpi_openers" else BASE_NAMES
        for text in _all_strings(value):
            errors = _placeholder_errors(text, allowed)
            assert not errors, f"{key}: {errors} in {text!r}"
    for key in VERBATIM_KEYS:
        for text in boilerplate[key]:
            assert "{" not in text and "}" not in text, f"{key} is not filled: {text!r}"
    assert any("{complaint}" in t for t in boilerplate["hpi_openers"])


def test_boilerplate_is_neutral(boilerplate: dict) -> None:
    words = re.compile(r"\b(" + "|".join(map(re.escape, FORBIDDEN_WORDS)) + r")\b", re.I)
    titles = [t.lower() for ts in TITLES.values() for t in ts]
    for text in _all_strings({k: v for k, v in boilerplate.items() if k != "version"}):
        low = text.lower()
        hits = [term for term in FORBIDDEN_SUBSTRINGS if term in low]
        assert not hits, f"{hits} in {text!r}"
        match = words.search(text)
        assert match is None, f"{match.group(0) if match else ''!r} in {text!r}"
        assert not [t for t in titles if t in low], text
