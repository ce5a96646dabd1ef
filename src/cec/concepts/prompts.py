"""The concept-generation prompts of Figs. 6 and 7, as versioned jinja2 templates.

Templates are files, not f-strings, so that a prompt change is a visible diff with a new
version number, and so Snakemake can re-run exactly the rules that use a changed template.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jinja2

from cec.llm.prompting import template_environment, template_path
from cec.plumbing.errors import InputError

Level = Literal["parent", "leaf"]
DEFAULT_TEMPLATES: dict[str, str] = {
    "parent": "concepts_parent_v1.jinja2",
    "leaf": "concepts_leaf_v1.jinja2",
}


@dataclass(frozen=True)
class CodeRow:
    """One label code with the public ICD text the prompts may show."""

    code: str
    description: str
    parent: str
    parent_description: str


def code_rows(table: Sequence[Mapping[str, str]]) -> list[CodeRow]:
    """CodeRows from codes.tsv rows (see cec.plumbing.artifacts.read_code_table)."""
    return [
        CodeRow(r["code"], r["description"], r["parent"], r["parent_description"]) for r in table
    ]


@dataclass
class ConceptRequest:
    """One prompt to send: which codes it asks about, at which level."""

    level: Level
    codes: list[str]  # leaf codes of the batch
    answer_codes: list[str]  # codes the answer must be keyed by (parents or leaves)
    prompt: str
    template: str
    attempt: int = 0


def render(template: str, **variables: Any) -> str:
    """Render a template; a variable it needs but is not given is a clear error."""
    path = template_path(template)
    env = template_environment(path.parent)
    try:
        return env.get_template(path.name).render(**variables)
    except jinja2.UndefinedError as exc:
        raise InputError(
            f"the template uses a variable that is not provided ({exc.message})", file=path
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(
            f"template syntax error: {exc.message}", file=path, row=exc.lineno
        ) from None


def make_batches(items: Sequence[Any], min_size: int = 5, max_size: int = 7) -> list[list[Any]]:
    """Split items into consecutive batches of min_size..max_size (Appendix B: 5 to 7 codes).

    The number of batches is the smallest that respects max_size; sizes then differ by at
    most one. Fewer items than min_size make one smaller batch.
    """
    if min_size < 1 or max_size < min_size:
        raise ValueError(f"invalid batch sizes {min_size}..{max_size}")
    n = len(items)
    if n == 0:
        return []
    k = math.ceil(n / max_size)
    base, extra = divmod(n, k)
    out: list[list[Any]] = []
    start = 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


def _item(row: CodeRow) -> dict[str, Any]:
    return {
        "leaf_code": row.code,
        "leaf_description": row.description or row.code,
        "parent_code": row.parent,
        "parent_description": row.parent_description or row.parent,
    }


def parent_request(rows: Sequence[CodeRow], template: str, attempt: int = 0) -> ConceptRequest:
    """Fig. 6 prompt for a batch of leaf codes; the answer is keyed by their parents."""
    prompt = render(template, items=[_item(r) for r in rows])
    parents = list(dict.fromkeys(r.parent for r in rows))
    return ConceptRequest("parent", [r.code for r in rows], parents, prompt, template, attempt)


def leaf_request(
    rows: Sequence[CodeRow],
    parent_concepts: Mapping[str, Sequence[str]],
    template: str,
    attempt: int = 0,
) -> ConceptRequest:
    """Fig. 7 prompt, carrying the parent concepts already found."""
    items = []
    for r in rows:
        item = _item(r)
        item["parent_concepts"] = list(parent_concepts.get(r.parent, []))
        items.append(item)
    prompt = render(template, items=items)
    codes = [r.code for r in rows]
    return ConceptRequest("leaf", codes, codes, prompt, template, attempt)
