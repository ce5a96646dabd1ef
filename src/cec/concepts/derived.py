"""Concepts derived offline from public ICD text, for code sets too large to ask GPT-4 about.

The paper's concepts are GPT-4 answers (Figs. 6, 7); for a full ICD code set (thousands of
codes) there are no recordings, and asking would cost thousands of requests. This module
derives parent and leaf concept phrases from the code titles (and, for ICD-10-CM, the
tabular list's inclusion terms) by a fixed rule, and returns them as a `GenerationResult`,
so that `write_raw` writes the raw file the LLM path writes and the de-duplication rule
turns the phrases into concept ids. The result is marked as derived, never as GPT-4: every
`sources` key starts with "derived:", there are no exchanges and no API requests.

Phrase rule (`title_phrases`), applied to a title:

1. Fold: drop parenthesised and bracketed text (ICD's non-essential modifiers and
   abbreviations: "Systolic (congestive) heart failure" -> "systolic heart failure",
   "[HFrEF]"), the words NOS and NEC, a final full stop and repeated spaces; lower-case each
   capitalised word ("Resection of Gallbladder" -> "resection of gallbladder"), keeping
   acronyms and single letters ("HIV", "ST", "hepatitis B").
2. Split at ", " into parts. A part made only of noise words ("unspecified", "organism
   unspecified", "not elsewhere classified", "not stated as uncontrolled", "other") is
   dropped; a leading "other", "other specified", "unspecified", "and" or "or" is stripped
   from a part ("Other postprocedural states" -> "postprocedural states").
3. Phrases, in this order, each at most once:
   a. the kept parts joined by ", " (the whole title without its noise);
   b. the first part alone, the head the later parts qualify ("fracture of ... femur" of
      "..., initial encounter for closed fracture"); later parts are not phrases of their
      own ("closed", "percutaneous approach" say nothing alone);
   c. the head split at its connectors, left to right: " with " and " due to " keep both
      sides ("type 2 diabetes mellitus", "diabetic chronic kidney disease"); " without ",
      " with or without " and " for " keep only the left side, since the right side is
      absent ("hypertensive heart disease without heart failure" must not give "heart
      failure") or only a circumstance ("ventilation for less than 96 consecutive hours");
      a one-word left side of " for " is dropped ("encounter for ...", "screening for ...").
   A phrase needs three letters; shorter pieces are dropped.

An inclusion term gives one phrase: rule 3a applied to the term.

Leaf phrases of a code: its title phrases (at most LEAF_TITLE_FIRST first), then its
inclusion-term phrases, then any further title phrases, at most MAX_LEAF in all. An
ICD-10-CM code without inclusion terms of its own takes those of its nearest ancestor below
its parent that has some (I50.21 takes I50.2's "heart failure with reduced ejection
fraction"); the parent's own terms are parent phrases. A leaf phrase equal (ignoring case)
to one of its parent's phrases is dropped: de-duplication keeps the parent's copy, and a
code all of whose parent concepts are also leaf concepts ends with no parent concept, which
the de-duplication rule refuses. Only exact repeats are avoided here: a leaf phrase that
MiniLM finds merely close to every parent phrase ("cholera, unspecified" under "cholera")
still empties the code's parent list in `cec.concepts.dedup`. A code left with no phrase
gets its folded title with the noise kept ("acute kidney failure, unspecified"), or its raw
title, or, without a title, the code itself.

Parent phrases: the parent title's phrases, then (ICD-10-CM) the parent's inclusion terms,
at most MAX_PARENT, falling back to the raw parent title or the parent code. An ICD-10-PCS
table title (section, body system, root operation) gives "<operation> of <body system>"
and the whole title instead (`pcs_table_phrases`).

A code string does not tell its system (the ICD-9 V49.3 reads like the ICD-10-CM V49.3, the
ICD-10-PCS table B04 like the ICD-10-CM category B04, both with inclusion terms), so
inclusion terms are used only for the codes the caller names as ICD-10-CM diagnoses
(`icd10cm_codes` finds them in codes.tsv).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from cec.concepts.generate import GenerationResult
from cec.concepts.prompts import CodeRow

log = logging.getLogger(__name__)

MAX_LEAF = 6
MAX_PARENT = 5
# title phrases placed before the inclusion terms, so that neither source crowds out the other
LEAF_TITLE_FIRST = 3
PARENT_TITLE_FIRST = 3
MIN_LETTERS = 3
# "Encounter for ...", "Screening for ...": a one-word left side of " for " is no concept
_MIN_WORDS_BEFORE_FOR = 2
_PCS_CODE = re.compile(r"[0-9A-HJ-NP-Z]{7}")

SOURCE_TITLE = "derived:title"
SOURCE_INCLUSION = "derived:inclusion"
SOURCE_BOTH = "derived:title+inclusion"
SOURCE_CODE = "derived:code"

_BRACKETED = re.compile(r"\s*(\([^()]*\)|\[[^\[\]]*\])")
_NOS_NEC = re.compile(r"\b(NOS|NEC)\b")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
_LEADING_NOISE = re.compile(r"^(other specified|other and unspecified|other|unspecified|and|or)\s+")
# said in several words, meaning "unspecified"
_NOISE_PHRASES = re.compile(
    r"not elsewhere classified|not otherwise specified|not stated as uncontrolled"
)
_NOISE_CORE = frozenset({"unspecified", "other"})
_NOISE_FILLER = frozenset(
    {"site", "type", "part", "side", "organism", "cause", "episode", "of", "care", "as", "to"}
    | {"and", "or", "specified"}
)
# (connector, whether the text after it is a phrase too); the longest wins at a position
_CONNECTORS: tuple[tuple[str, bool], ...] = (
    (" with or without ", False),
    (" without ", False),
    (" due to ", True),
    (" with ", True),
    (" for ", False),
)


def fold(text: str) -> str:
    """Title text without modifiers in brackets, NOS/NEC, a final full stop and capitals
    of ordinary words (acronyms stay: the encoder ignores case, a reader does not)."""
    text = _BRACKETED.sub("", text)
    text = _NOS_NEC.sub("", text)
    text = " ".join(text.split()).replace(" ,", ",").strip(" ,;.")
    return _CAPITALISED.sub(lambda m: m.group().lower(), text)


def _is_noise(part: str) -> bool:
    """True for a comma part that only says how unspecific the code is ("organism
    unspecified", "not elsewhere classified"), never for one that names something."""
    words = set(_NOISE_PHRASES.sub(" unspecified ", part.lower()).split())
    return bool(words & _NOISE_CORE) and words <= _NOISE_CORE | _NOISE_FILLER


def _strip_leading_noise(part: str) -> str:
    while True:
        stripped = _LEADING_NOISE.sub("", part, count=1)
        if stripped == part or not stripped:
            return part
        part = stripped


def _has_letters(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= MIN_LETTERS


def _unique(phrases: Iterable[str]) -> list[str]:
    """Phrases in order, each once (ignoring case), without those too short to mean much."""
    seen: set[str] = set()
    out: list[str] = []
    for phrase in phrases:
        key = phrase.casefold()
        if _has_letters(phrase) and key not in seen:
            seen.add(key)
            out.append(phrase)
    return out


def _parts(title: str) -> list[str]:
    """The folded title's comma parts, without noise parts and leading noise words."""
    parts = [p.strip() for p in fold(title).split(", ")]
    return [_strip_leading_noise(p) for p in parts if p and not _is_noise(p)]


def _connector_pieces(head: str) -> list[str]:
    """The head split at its connectors, left to right (see the module docstring, 3c)."""
    pieces: list[str] = []
    rest = head
    while True:
        found = [(rest.find(c), -len(c), c, keep) for c, keep in _CONNECTORS if c in rest]
        if not found:
            pieces.append(rest)
            return [_strip_leading_noise(p.strip()) for p in pieces]
        at, _, connector, keep_tail = min(found)
        left = rest[:at]
        if connector != " for " or len(left.split()) >= _MIN_WORDS_BEFORE_FOR:
            pieces.append(left)
        if not keep_tail:
            return [_strip_leading_noise(p.strip()) for p in pieces]
        rest = rest[at + len(connector) :]


def title_phrases(title: str) -> list[str]:
    """Short clinical phrases of one ICD title, by the module's rule (whole title without
    noise, its head, the head's pieces at connectors); [] if nothing but noise is left."""
    parts = _parts(title)
    if not parts:
        return []
    return _unique([", ".join(parts), parts[0], *_connector_pieces(parts[0])])


def pcs_table_phrases(title: str) -> list[str]:
    """Phrases of an ICD-10-PCS table title, which lists section, body system and root
    operation ("Medical and Surgical, Gastrointestinal System, Resection"): the operation
    of the body system in the wording of the PCS long titles ("resection of
    gastrointestinal system"), then the whole title. The general rule's head would be the
    section ("medical and surgical"), which says nothing about the table."""
    parts = [p.strip() for p in fold(title).split(", ") if p.strip()]
    if len(parts) < 2:
        return title_phrases(title)
    operation, system = parts[-1], ", ".join(parts[1:-1])
    return _unique([f"{operation} of {system}" if system else operation, ", ".join(parts)])


def is_pcs(code: str) -> bool:
    """ICD-10-PCS codes are the only labels of 7 characters without a dot (ICD-10-CM's
    7-character codes are written S72.001A, ICD-9 codes have at most 5 characters)."""
    return bool(_PCS_CODE.fullmatch(code))


def term_phrase(term: str) -> str | None:
    """An inclusion term as one phrase (rule 3a), or None if it is only noise."""
    phrases = _unique([", ".join(_parts(term))])
    return phrases[0] if phrases else None


def _merge(title: list[str], terms: list[str], first: int, cap: int) -> list[str]:
    """Up to `first` title phrases, then the term phrases, then the other title phrases."""
    return _unique([*title[:first], *terms, *title[first:]])[:cap]


def _source(phrases: list[str], title: list[str], terms: list[str]) -> str:
    from_title = any(p in title for p in phrases)
    from_terms = any(p in terms for p in phrases)
    if from_title and from_terms:
        return SOURCE_BOTH
    return SOURCE_INCLUSION if from_terms else SOURCE_TITLE


def _fallback(title: str, code: str, taken: Collection[str]) -> tuple[str, str]:
    """One phrase for an owner the rule left empty: the folded title with its noise, the
    raw title, or (no title) the code; the first not already taken by the parent."""
    candidates = [c for c in (fold(title), title.strip()) if c]
    free = [c for c in candidates if c.casefold() not in taken]
    if free:
        return free[0], SOURCE_TITLE
    if candidates:
        return candidates[0], SOURCE_TITLE
    return code, SOURCE_CODE


def _label_ancestors(code: str, parent: str) -> list[str]:
    """An ICD-10-CM label and its ancestors below `parent`, nearest first
    (I50.21 under I50 -> I50.21, I50.2)."""
    undotted = code.replace(".", "")
    labels = []
    for n in range(len(undotted), 2, -1):
        prefix = undotted[:n]
        label = prefix if n == 3 else f"{prefix[:3]}.{prefix[3:]}"
        if label == parent:
            break
        labels.append(label)
    return labels


def leaf_terms(
    row: CodeRow, inclusion: Mapping[str, Sequence[str]], cm_codes: Collection[str]
) -> list[str]:
    """Inclusion terms for a leaf: its own, else its nearest ancestor's below the parent."""
    if row.code not in cm_codes:
        return []
    for label in _label_ancestors(row.code, row.parent):
        if inclusion.get(label):
            return list(inclusion[label])
    return []


def parent_phrases(
    parent: str, title: str, terms: Sequence[str], pcs_table: bool = False
) -> tuple[list[str], str]:
    """A parent's phrases and the source key saying where they came from."""
    from_title = pcs_table_phrases(title) if pcs_table else title_phrases(title)
    from_terms = _unique(p for p in map(term_phrase, terms) if p)
    phrases = _merge(from_title, from_terms, PARENT_TITLE_FIRST, MAX_PARENT)
    if phrases:
        return phrases, _source(phrases, from_title, from_terms)
    phrase, source = _fallback(title, parent, ())
    return [phrase], source


def leaf_phrases(
    row: CodeRow, terms: Sequence[str], parent: Sequence[str]
) -> tuple[list[str], str]:
    """A code's phrases (none equal to a parent phrase) and their source key."""
    taken = {p.casefold() for p in parent}
    from_title = [p for p in title_phrases(row.description) if p.casefold() not in taken]
    from_terms = [
        p for p in _unique(q for q in map(term_phrase, terms) if q) if p.casefold() not in taken
    ]
    phrases = _merge(from_title, from_terms, LEAF_TITLE_FIRST, MAX_LEAF)
    if phrases:
        return phrases, _source(phrases, from_title, from_terms)
    phrase, source = _fallback(row.description, row.code, taken)
    return [phrase], source


def icd10cm_codes(table: Sequence[Mapping[str, str]], icd_version: int) -> frozenset[str]:
    """The ICD-10-CM diagnosis codes of codes.tsv rows (cec.plumbing.artifacts
    .read_code_table) of a dataset of `icd_version`: the codes that may take inclusion
    terms."""
    if icd_version != 10:
        return frozenset()
    return frozenset(r["code"] for r in table if r["kind"] == "diagnosis")


def derive_concepts(
    rows: Sequence[CodeRow],
    cm_codes: Collection[str] = frozenset(),
    inclusion: Mapping[str, Sequence[str]] | None = None,
) -> GenerationResult:
    """Derived parent and leaf concepts for every row, in `write_raw`'s order.

    `cm_codes`: the codes of `rows` that are ICD-10-CM diagnoses; they and their parents
    take inclusion terms from `inclusion` (by default the shipped CMS terms, read only
    when some code needs them). Every other code gets concepts from titles alone."""
    if inclusion is None:
        inclusion = {}
        if cm_codes:
            from cec.icd.icd10 import inclusion_terms

            inclusion = inclusion_terms()
    result = GenerationResult({}, {}, {}, [], 0, 0)
    ordered = sorted(rows, key=lambda r: (r.parent, r.code))
    cm_parents = {r.parent for r in ordered if r.code in cm_codes}
    for row in ordered:
        if row.parent in result.parent:
            continue
        terms = inclusion.get(row.parent, ()) if row.parent in cm_parents else ()
        pcs_table = is_pcs(row.code)
        phrases, source = parent_phrases(row.parent, row.parent_description, terms, pcs_table)
        result.parent[row.parent] = phrases
        result.sources[("parent", row.parent)] = source
    for row in ordered:
        terms = leaf_terms(row, inclusion, cm_codes)
        phrases, source = leaf_phrases(row, terms, result.parent[row.parent])
        result.leaf[row.code] = phrases
        result.sources[("leaf", row.code)] = source
    with_terms = sum(
        1 for (level, _), s in result.sources.items() if level == "leaf" and "inclusion" in s
    )
    log.info(
        "derived concepts (no API): %d parents, %d codes, %d of them with inclusion terms",
        len(result.parent),
        len(result.leaf),
        with_terms,
    )
    return result
