"""MIMIC-style de-identification placeholders and the filling of template slots.

Real discharge summaries are full of `[**2151-7-16**]` and `[**Known lastname 1234**]`;
models and section detectors trained on the demo must meet them too.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

from cec.synth.knowledge import NUMBER, PLACEHOLDER

_NAMES = (
    "[**Known lastname {k}**]",
    "[**First Name8 (NamePattern2) {k}**]",
    "[**Name (NI) {k}**]",
    "[**Known firstname {k}**] [**Known lastname {j}**]",
)
_DOCTORS = (
    "Dr. [**Last Name (STitle) {k}**]",
    "[**First Name4 (NamePattern1) {k}**] [**Last Name (NamePattern1) {j}**], MD",
    "Dr. [**First Name (STitle) {k}**]",
    "[**Doctor Last Name {k}**]",
    "[**Doctor First Name {k}**] [**Doctor Last Name {j}**]",
)
_HOSPITALS = (
    "[**Hospital1 18**]",
    "[**Hospital3 {k}**]",
    "[**Hospital 1{k}**]",
    "[**Location (un) {k}**]",
    "[**Hospital Ward Name {k}**]",
)


def deid_date(d: date) -> str:
    """`[**2151-7-16**]`: MIMIC writes shifted dates without zero padding."""
    return f"[**{d.year}-{d.month}-{d.day}**]"


def _pick(rng: random.Random, forms: tuple[str, ...]) -> str:
    return rng.choice(forms).format(k=rng.randint(10, 9999), j=rng.randint(10, 9999))


class Filler:
    """Fills `{n:LO-HI}`, `{date}`, `{name}`, ... in one admission's templates."""

    def __init__(self, rng: random.Random, admit: date, context: dict[str, str]) -> None:
        self.rng = rng
        self.admit = admit
        self.context = context

    def _number(self, lo_s: str, hi_s: str) -> str:
        decimals = len(lo_s.split(".")[1]) if "." in lo_s else 0
        lo, hi = float(lo_s), float(hi_s)
        if hi < lo:
            lo, hi = hi, lo
        if decimals == 0:
            return str(self.rng.randint(int(lo), int(hi)))
        return f"{self.rng.uniform(lo, hi):.{decimals}f}"

    def _replace(self, match: re.Match[str]) -> str:  # noqa: F821 - string annotation
        name = match.group(1)
        number = NUMBER.match(name)
        if number:
            return self._number(number.group(1), number.group(2))
        if name == "date":
            return deid_date(self.admit + timedelta(days=self.rng.randint(-3, 14)))
        if name == "name":
            return _pick(self.rng, _NAMES)
        if name == "doctor":
            return _pick(self.rng, _DOCTORS)
        if name == "hospital":
            return _pick(self.rng, _HOSPITALS)
        return self.context.get(name, "")

    def __call__(self, template: str) -> str:
        if "{" not in template:
            return template
        return PLACEHOLDER.sub(self._replace, template)
