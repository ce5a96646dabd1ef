"""Loading the hand-written clinical knowledge behind synthetic notes.

The knowledge lives in YAML (resources/synth/) so that clinicians can review and extend
it without touching the generator; this module only loads and checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from cec.icd.codes import CodeFormatError, Kind, format_icd10

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
NAMED_PLACEHOLDERS = frozenset(
    {"date", "name", "doctor", "hospital", "age", "sex_word", "complaint"}
)
NUMBER = re.compile(r"^n:(-?\d+(?:\.\d+)?)-(-?\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class CodeKnowledge:
    """How one code shows up in a discharge summary."""

    code: str
    kind: Kind
    role: str  # "label" | "confounder"
    prevalence: float
    chronic: bool
    mentions: tuple[str, ...]
    findings: tuple[str, ...]
    meds: tuple[str, ...]
    negations: tuple[str, ...]
    co_occurs: tuple[tuple[str, float], ...] = ()
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Knowledge:
    """All code knowledge by group (`top50`, `rare50`) plus the neutral boilerplate."""

    groups: dict[str, dict[str, CodeKnowledge]]
    boilerplate: dict[str, Any] = field(default_factory=dict)

    def code(self, code: str) -> CodeKnowledge:
        for group in self.groups.values():
            if code in group:
                return group[code]
        raise KeyError(code)


def check_placeholders(text: str, where: str) -> None:
    """Refuse any brace the filler would not understand, so a typo fails loudly."""
    for match in PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name in NAMED_PLACEHOLDERS or NUMBER.match(name):
            continue
        raise ValueError(f"{where}: unknown placeholder {{{name}}} in {text[:60]!r}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of strings")
    for v in value:
        check_placeholders(v, where)
    return tuple(value)


def _code_knowledge(code: str, entry: dict[str, Any], name: str) -> CodeKnowledge:
    """One entry of a knowledge file (schema in codes_top50.yaml's header), checked."""
    where = f"{name}: code {code}"
    kind = entry.get("kind")
    if kind not in ("diagnosis", "procedure"):
        raise ValueError(f"{where}: kind must be diagnosis or procedure, not {kind!r}")
    out = CodeKnowledge(
        code=code,
        kind=kind,
        role=str(entry.get("role", "label")),
        prevalence=float(entry.get("prevalence", 0.0)),
        chronic=bool(entry.get("chronic", False)),
        mentions=_strings(entry.get("mentions"), f"{where} mentions"),
        findings=_strings(entry.get("findings"), f"{where} findings"),
        meds=_strings(entry.get("meds"), f"{where} meds"),
        negations=_strings(entry.get("negations"), f"{where} negations"),
        co_occurs=tuple((str(k), float(v)) for k, v in (entry.get("co_occurs") or {}).items()),
        excludes=tuple(str(x) for x in entry.get("excludes") or ()),
    )
    if not out.findings or not out.mentions:
        raise ValueError(f"{where}: needs at least one finding and one mention")
    return out


def _read_yaml(name: str) -> dict[str, Any]:
    source = files("cec") / "resources" / "synth" / name
    return yaml.safe_load(source.read_text(encoding="utf-8"))


def _load_codes(name: str) -> dict[str, CodeKnowledge]:
    data = _read_yaml(name)
    return {
        str(code): _code_knowledge(str(code), entry, name)
        for code, entry in (data.get("codes") or {}).items()
    }


@cache
def load_knowledge() -> Knowledge:
    """Load the shipped knowledge once per process."""
    groups = {"top50": _load_codes("codes_top50.yaml"), "rare50": _load_codes("codes_rare50.yaml")}
    source = files("cec") / "resources" / "synth" / "note_boilerplate.yaml"
    boilerplate = yaml.safe_load(source.read_text(encoding="utf-8"))
    for key, value in boilerplate.items():
        if isinstance(value, list):
            _strings(value, f"note_boilerplate.yaml {key}")
        elif isinstance(value, dict):
            for sub, items in value.items():
                _strings(items, f"note_boilerplate.yaml {key}.{sub}")
    return Knowledge(groups=groups, boilerplate=boilerplate)


# ------------------------------------------------------------ the ICD-10 overlay (MIMIC-IV)

ICD10_OVERLAY = "codes_icd10_top50.yaml"
TEXT_FIELDS = ("mentions", "findings", "meds", "negations")
_OVERLAY_KEYS = frozenset(
    {"kind", "role", "prevalence", "chronic", *TEXT_FIELDS, "co_occurs", "excludes"}
    | {"from", "drop", "add", "gem"}
)


@dataclass(frozen=True)
class GemMapping:
    """What the CMS GEMs say about one ICD-10 code of the overlay, as its YAML records it
    (tools/check_icd10_gems.py recomputes every field from the GEM files)."""

    icd9: str  # the ICD-9-CM code it stands for
    targets: tuple[str, ...]  # every ICD-10 target of `icd9` in the forward GEM
    one_to_one: bool  # `targets` is this code alone
    approximate: bool | None  # the forward row's approximate flag (None: no row)
    backward: tuple[str, ...] | None  # ICD-9 codes of the backward GEM (CM only)
    reused: str | None  # the ICD-9 knowledge entry reused (`from`); None: hand-written


def _gem(value: Any, code: str, reused: str | None, where: str) -> GemMapping:
    if not isinstance(value, dict) or "icd9" not in value or "targets" not in value:
        raise ValueError(f"{where}: gem must be a mapping with icd9 and targets")
    targets = tuple(str(t) for t in value["targets"])
    one_to_one = bool(value.get("one_to_one"))
    if one_to_one != (targets == (code,)):
        raise ValueError(f"{where}: one_to_one must say whether the targets are {code} alone")
    backward = value.get("backward")
    approximate = value.get("approximate")
    return GemMapping(
        icd9=str(value["icd9"]),
        targets=targets,
        one_to_one=one_to_one,
        approximate=None if approximate is None else bool(approximate),
        backward=None if backward is None else tuple(str(b) for b in backward),
        reused=reused,
    )


def _inherit(
    code: str, entry: dict[str, Any], source: CodeKnowledge, translate: dict[str, str], where: str
) -> dict[str, Any]:
    """The entry of an ICD-10 code that reuses an ICD-9 entry: the source's fields, less
    `drop`, plus `add`, overridden by what the entry gives; relations translated to ICD-10
    through the overlay's own `from`s (a relation to an ICD-9 code no entry reuses is
    dropped)."""
    if "kind" in entry and entry["kind"] != source.kind:
        raise ValueError(f"{where}: kind {entry['kind']!r} differs from {source.code}'s")
    merged: dict[str, Any] = {
        "kind": source.kind,
        "role": entry.get("role"),
        "prevalence": entry.get("prevalence", source.prevalence),
        "chronic": entry.get("chronic", source.chronic),
    }
    drop = entry.get("drop") or {}
    add = entry.get("add") or {}
    for name in (*drop, *add):
        if name not in TEXT_FIELDS:
            raise ValueError(f"{where}: drop/add name text fields only, not {name!r}")
    for name in TEXT_FIELDS:
        if name in entry:
            if name in drop or name in add:
                raise ValueError(f"{where}: {name} is given whole; drop/add make no sense")
            merged[name] = entry[name]
            continue
        values = list(getattr(source, name))
        for text in drop.get(name) or ():
            if text not in values:
                raise ValueError(f"{where}: drop {name} {text!r}: not in {source.code}'s {name}")
            values.remove(text)
        merged[name] = values + list(add.get(name) or ())
    merged["co_occurs"] = entry.get("co_occurs")
    if merged["co_occurs"] is None:
        merged["co_occurs"] = {translate[k]: p for k, p in source.co_occurs if k in translate}
    merged["excludes"] = entry.get("excludes")
    if merged["excludes"] is None:
        merged["excludes"] = [translate[k] for k in source.excludes if k in translate]
    return merged


def load_overlay(
    base: dict[str, CodeKnowledge], entries: dict[str, Any], name: str = ICD10_OVERLAY
) -> tuple[dict[str, CodeKnowledge], dict[str, GemMapping]]:
    """The `codes` of an ICD-10 overlay resolved against the ICD-9 knowledge `base`, and
    each code's GEM facts; ValueError naming the file and code for anything malformed."""
    translate: dict[str, str] = {}
    for code, entry in entries.items():
        source = entry.get("from")
        if source is not None:
            if str(source) in translate:
                raise ValueError(
                    f"{name}: {source} is reused by both {translate[str(source)]} and {code}"
                )
            translate[str(source)] = str(code)
    codes: dict[str, CodeKnowledge] = {}
    gems: dict[str, GemMapping] = {}
    for key, entry in entries.items():
        code = str(key)
        where = f"{name}: code {code}"
        unknown = set(entry) - _OVERLAY_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        if entry.get("role") not in ("label", "confounder"):
            raise ValueError(f"{where}: role must be label or confounder")
        source = entry.get("from")
        if source is None:
            if entry.get("drop") or entry.get("add"):
                raise ValueError(f"{where}: drop/add need a `from`")
            ck = _code_knowledge(code, entry, name)
        else:
            if str(source) not in base:
                raise ValueError(f"{where}: from {source!r} is no ICD-9 code of the knowledge")
            merged = _inherit(code, entry, base[str(source)], translate, where)
            ck = _code_knowledge(code, merged, name)
        try:
            canonical = format_icd10(code, ck.kind)
        except CodeFormatError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if canonical != code:
            raise ValueError(f"{where}: write it as MIMIC-IV's label string {canonical!r}")
        codes[code] = ck
        reused = None if source is None else str(source)
        gems[code] = _gem(entry.get("gem"), code, reused, where)
    for ck in codes.values():
        for other in (*(k for k, _ in ck.co_occurs), *ck.excludes):
            if other not in codes:
                raise ValueError(f"{name}: code {ck.code} relates to {other}, not in the file")
    return codes, gems


@cache
def _icd10_overlay() -> tuple[dict[str, CodeKnowledge], dict[str, GemMapping]]:
    base = load_knowledge()
    entries = _read_yaml(ICD10_OVERLAY).get("codes") or {}
    return load_overlay({**base.groups["rare50"], **base.groups["top50"]}, entries)


def load_icd10_knowledge() -> Knowledge:
    """The ICD-10 knowledge of the synthetic MIMIC-IV: the MIMIC-IV-ICD10-50 labels and
    their confounders, as the group `top50` (the frequent-label group the note writer and
    the planner know), with the ICD-9 knowledge's boilerplate."""
    codes, _ = _icd10_overlay()
    return Knowledge(groups={"top50": codes}, boilerplate=load_knowledge().boilerplate)


def icd10_gem_mappings() -> dict[str, GemMapping]:
    """ICD-10 code -> its GEM facts, as codes_icd10_top50.yaml records them."""
    return dict(_icd10_overlay()[1])


def load_mimic4_knowledge(version: int) -> Knowledge:
    """The knowledge behind the synthetic MIMIC-IV's admissions of one ICD version: ICD-9
    stays are coded as MIMIC-III's (the MIMIC-III-50 labels and their confounders), ICD-10
    stays through the overlay."""
    if version == 10:
        return load_icd10_knowledge()
    if version == 9:
        base = load_knowledge()
        return Knowledge(groups={"top50": base.groups["top50"]}, boilerplate=base.boilerplate)
    raise ValueError(f"version must be 9 or 10, got {version!r}")
