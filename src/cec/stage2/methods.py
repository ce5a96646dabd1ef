"""The stage-2 methods of Tables 2-4, each a value of the `{method}` wildcard.

| method            | prompt        | concepts shown            | label model          |
|-------------------|---------------|---------------------------|----------------------|
| direct_zeroshot   | direct (no C) | none                      | the base model       |
| direct_ft         | direct (no C) | none                      | LoRA variant direct  |
| leaf_concepts     | Fig. 4        | k of the code's leaf ones | LoRA variant leaf    |
| cec_k3 .. cec_k6  | Fig. 4        | k of C_y (parent + leaf)  | LoRA variant cec     |

The CEC label model is trained once with k = 5 (Section 3.4, step 1); cec_k3..k6 change
only how many concepts are shown at prediction (Table 3). The paper's CEC row in Table 2
equals its k = 6 row in Table 3, so Table 2's CEC is cec_k6.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cec.stage2.prompts import DIRECT_TEMPLATE, LABEL_TEMPLATE

VARIANTS = ("direct", "leaf", "cec")  # one trained label adapter per variant (and seed)
FIXED = ("direct_zeroshot", "direct_ft", "leaf_concepts")


@dataclass(frozen=True)
class Method:
    name: str
    variant: str  # direct | leaf | cec: which concept view and which adapter
    finetuned: bool
    k: int | None  # concepts of the code shown; None: the variant's training k

    @property
    def template(self) -> str:
        return variant_template(self.variant)

    @property
    def uses_concepts(self) -> bool:
        return self.variant != "direct"


def template_kind(variant: str) -> str:
    """Which prompt a variant asks with: "direct" (no concepts) or "label" (Fig. 4); the
    key of `stage2.templates` in the config."""
    return "direct" if variant == "direct" else "label"


def variant_template(variant: str) -> str:
    """The default prompt template of a variant (the config can name another)."""
    return DIRECT_TEMPLATE if template_kind(variant) == "direct" else LABEL_TEMPLATE


def cec_methods(names: Iterable[str]) -> list[str]:
    """The cec_kN methods among `names`, in order: one job makes them all (they share
    their prompts, see `cec.stage2.score`)."""
    return [n for n in names if method(n).variant == "cec"]


def by_k_descending(names: Iterable[str]) -> list[str]:
    """CEC methods from the most concepts shown to the fewest (Table 3's order)."""
    return sorted(names, key=lambda n: -(method(n).k or 0))


def method(name: str) -> Method:
    """The method a `{method}` value names; a clear error for anything else."""
    if name == "direct_zeroshot":
        return Method(name, "direct", False, None)
    if name == "direct_ft":
        return Method(name, "direct", True, None)
    if name == "leaf_concepts":
        return Method(name, "leaf", True, None)
    match = re.fullmatch(r"cec_k([1-9][0-9]?)", name)
    if match:
        return Method(name, "cec", True, int(match.group(1)))
    raise ValueError(
        f"unknown stage-2 method {name!r} (direct_zeroshot, direct_ft, leaf_concepts, cec_kN)"
    )


def label_backbone(stage2: Mapping[str, Any], row: str, variant: str) -> str:
    """The backbone that answers a row's prompts of one variant (`stage2.label_backbone`):
    a name for every variant of the row, or a {direct, leaf, cec} table; default the row
    backbone itself. The paper's Llama row: Bio-Medical-Llama-3-8B for the label model
    (leaf, cec; Appendix A), Llama-3-8B itself for direct coding (config/mimic3.yaml)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} ({', '.join(VARIANTS)})")
    entry = stage2.get("label_backbone", {}).get(row, row)
    if isinstance(entry, str):
        return entry
    return str(entry.get(variant, row))
