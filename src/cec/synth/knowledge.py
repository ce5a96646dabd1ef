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

from cec.codes import Kind

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


def _load_codes(name: str) -> dict[str, CodeKnowledge]:
    source = files("cec") / "resources" / "synth" / name
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    out: dict[str, CodeKnowledge] = {}
    for code, entry in (data.get("codes") or {}).items():
        where = f"{name}: code {code}"
        kind = entry.get("kind")
        if kind not in ("diagnosis", "procedure"):
            raise ValueError(f"{where}: kind must be diagnosis or procedure, not {kind!r}")
        out[str(code)] = CodeKnowledge(
            code=str(code),
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
        if not out[str(code)].findings or not out[str(code)].mentions:
            raise ValueError(f"{where}: needs at least one finding and one mention")
    return out


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
