"""Section-aware segmentation of discharge summaries (paper, Appendix E).

Discharge summaries are often longer than an LLM's context. The paper keeps only the
medically relevant sections (discharge diagnosis, history of present illness, past medical
history, ...) and consolidates them into one shorter document. To find where sections start
it repeats the DF-IAPF procedure of Lu et al. (2023), which learns section titles from the
notes themselves instead of trusting a hand-written header list that drifts between
hospitals and note templates.

DF-IAPF (Document Frequency - Inverse Average Phrase Frequency)
---------------------------------------------------------------
A *candidate* is the text before the first colon of a line (the line stripped of surrounding
whitespace), lowercased and whitespace-normalised, of 1 to ``max_words`` words, made of
letters, spaces and the characters ``' & / -`` only and starting with a letter. Digits,
de-identification brackets (``[**...**]``) and punctuation rule a line out, so dates, times,
lab rows and most sentences never become candidates.

Over the ``N`` training notes, for every candidate phrase ``p``::

    DF(p)     = n_notes(p) / N
    APF(p)    = n_occurrences(p) / n_notes(p)
    DFIAPF(p) = DF(p) * log(1 + 1 / APF(p)) / log(2)

where ``n_notes(p)`` counts the notes in which ``p`` is a candidate at least once and
``n_occurrences(p)`` counts every candidate line with ``p`` over all notes. A section title
appears in most notes (high DF) and once per note (APF = 1), which scores 1.0. A field label
repeated inside a note ("Question:", "Answer:", one line per lab) has APF > 1 and is
penalised, and a phrase seen in few notes has a low DF. The division by ``log 2`` only scales
the score so that the ideal title scores exactly 1.0. Titles are selected when
``DF >= min_df`` and ``DFIAPF >= min_score``.

Reference: Chang Lu, Chandan K. Reddy, Ping Wang and Yue Ning. *Towards Semi-Structured
Automatic ICD Coding via Tree-Based Contrastive Learning.* NeurIPS 2023.

Titles are learned from TRAINING notes only, so that the dev and test notes do not shape the
view that the model is evaluated on.

Where a kept section ends
-------------------------
DF-IAPF also selects labels that sit inside sections: physical-exam fields ("HEENT:",
"Neuro:"), the systems-based lines of a hospital course, and the "Primary:"/"Secondary:"
lists under "Discharge Diagnosis:". Splitting at them would cut kept sections short (the
diagnosis section would keep its title line only). `boundary_titles` therefore splits only
at selected titles that stand on their own line in at least half of their training
occurrences (or that are kept), and never at the named `DEFAULT_SUBHEADINGS`; a label it
skips simply stays inside the section above it. This rule is ours, not Lu et al.'s.

Privacy: the report files hold title phrases and counts, never note text. A candidate is
written to the TSV only if it occurs in at least ``min_notes_listed`` notes, so that a
one-off phrase that happens to look like a title cannot carry patient text into the report.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_write, read_jsonl, write_json

#: The sections the paper names plus those MIMIC-III coders rely on most, in priority order:
#: a caller that truncates the view to a token budget loses the least relevant ones first.
DEFAULT_KEEP: tuple[str, ...] = (
    "discharge diagnosis",
    "discharge diagnoses",  # the plural heads many real MIMIC-III notes
    "history of present illness",
    "past medical history",
    "brief hospital course",
    "chief complaint",
    "major surgical or invasive procedure",
    "pertinent results",
    "discharge medications",
)

#: Selected titles that label parts of a section rather than start one. MIMIC-III writes
#: "Discharge Diagnosis:" alone on its line followed by "Primary:" and "Secondary:" lists;
#: these pass DF-IAPF (once per note, in most notes) but splitting at them would leave the
#: kept diagnosis section with its title line only. No statistic of the notes tells them
#: apart from real titles ("Secondary:" looks exactly like "Discharge Condition:"), so they
#: are named here and removed from the split points by `boundary_titles`.
DEFAULT_SUBHEADINGS: tuple[str, ...] = (
    "primary",
    "secondary",
    "primary diagnosis",
    "primary diagnoses",
    "secondary diagnosis",
    "secondary diagnoses",
)

#: Candidates rarer than this are not returned at all: they cannot be titles and listing them
#: would only make the report long.
MIN_LISTED_DF = 0.01

_CANDIDATE_RE = re.compile(r"[A-Za-z][A-Za-z'&/\- ]*")
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class SectionTitle:
    """One candidate phrase with its DF-IAPF statistics over the training notes.

    `own_line` is the share of its occurrences with nothing after the colon: section titles
    of the MIMIC-III template stand on their own line ("Brief Hospital Course:"), while
    field labels carry their value inline ("HEENT: NC/AT", "Neuro: A&Ox3"). It is not part
    of DF-IAPF; `boundary_titles` uses it to decide where a kept section ends.
    """

    title: str
    df: float
    apf: float
    score: float
    selected: bool
    own_line: float = 1.0


def dfiapf(df: float, apf: float) -> float:
    """DF-IAPF of a phrase: DF times log2(1 + 1/APF), 1.0 for a phrase once in every note."""
    return df * math.log(1.0 + 1.0 / apf) / math.log(2.0)


def _normalise(title: str) -> str:
    return _WS_RE.sub(" ", title).strip().lower()


def _line_candidate(line: str, max_words: int) -> tuple[str, bool] | None:
    """(normalised candidate, whether nothing follows the colon) of a line, or None."""
    head, colon, rest = line.strip().partition(":")
    if not colon:
        return None
    phrase = _normalise(head)
    if not phrase or not _CANDIDATE_RE.fullmatch(phrase) or len(phrase.split(" ")) > max_words:
        return None
    return phrase, not rest.strip()


def note_candidates(text: str, max_words: int = 6) -> list[str]:
    """All candidate titles of a note, one per candidate line, in note order."""
    return [c[0] for line in text.splitlines() if (c := _line_candidate(line, max_words))]


def learn_section_titles(
    texts: Iterable[str],
    min_df: float = 0.2,
    min_score: float = 0.15,
    max_words: int = 6,
) -> list[SectionTitle]:
    """Score every candidate phrase of `texts` with DF-IAPF.

    Returns the candidates with DF >= 0.01, sorted by score (then DF, then title, so ties
    are deterministic), with `selected` set for those with DF >= `min_df` and
    score >= `min_score`. An empty corpus yields an empty list.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    n_notes = 0
    doc_freq: Counter[str] = Counter()
    occurrences: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    for text in texts:
        n_notes += 1
        seen = set()
        for line in text.splitlines():
            cand = _line_candidate(line, max_words)
            if cand is None:
                continue
            phrase, on_own_line = cand
            occurrences[phrase] += 1
            alone[phrase] += on_own_line
            seen.add(phrase)
        doc_freq.update(seen)
    if n_notes == 0:
        return []
    titles = []
    for phrase, n_with in doc_freq.items():
        df = n_with / n_notes
        if df < MIN_LISTED_DF:
            continue
        n_occ = occurrences[phrase]
        apf = n_occ / n_with
        score = dfiapf(df, apf)
        selected = df >= min_df and score >= min_score
        titles.append(SectionTitle(phrase, df, apf, score, selected, alone[phrase] / n_occ))
    titles.sort(key=lambda t: (-t.score, -t.df, t.title))
    return titles


def boundary_titles(
    titles: Iterable[SectionTitle | str],
    keep: Collection[str] = DEFAULT_KEEP,
    subheadings: Collection[str] = DEFAULT_SUBHEADINGS,
    min_own_line: float = 0.5,
) -> list[str]:
    """The titles to split notes at for the sections view.

    From the output of `learn_section_titles`, a selected title is a split point if it is in
    `keep` (the view must find it) or stands on its own line in at least `min_own_line` of
    its occurrences (a section heading, not an inline field label such as "Neuro:" inside
    the hospital course, which would otherwise cut the kept section short). Titles in
    `subheadings` are never split points. Plain strings are taken as selected headings.
    Order is preserved.
    """
    wanted = {_normalise(k) for k in keep}
    drop = {_normalise(t) for t in subheadings}
    out: list[str] = []
    for t in titles:
        if isinstance(t, SectionTitle):
            if not t.selected:
                continue
            norm = _normalise(t.title)
            if norm not in wanted and t.own_line < min_own_line:
                continue
        else:
            norm = _normalise(t)
        if norm and norm not in drop and norm not in out:
            out.append(norm)
    return out


def _title_pattern(titles: Collection[str]) -> re.Pattern[str] | None:
    """A multiline regex matching a line that starts with one of `titles` and a colon.

    Words of a title may be separated by any run of spaces or tabs, mirroring the whitespace
    normalisation of the candidates; longer titles are tried first so that "discharge
    diagnosis" wins over a selected "discharge".
    """
    norm = {_normalise(t) for t in titles}
    norm.discard("")
    if not norm:
        return None
    alts = [
        r"[ \t]+".join(re.escape(w) for w in t.split(" "))
        for t in sorted(norm, key=lambda t: (-len(t), t))
    ]
    return re.compile(r"^[ \t]*(" + "|".join(alts) + r")[ \t]*:", re.IGNORECASE | re.MULTILINE)


def split_sections(text: str, titles: Collection[str]) -> list[tuple[str | None, str]]:
    """Split a note into (title, text) parts at lines that start with a title and a colon.

    The title is returned normalised (lowercase, single spaces); the part's text starts with
    the title line exactly as written. Text before the first title gets title None (omitted
    if empty). ``"".join(part for _, part in split_sections(...)) == text`` always holds.
    """
    pattern = _title_pattern(titles)
    if pattern is None or not text:
        return [(None, text)] if text else []
    parts: list[tuple[str | None, str]] = []
    starts = [(m.start(), _normalise(m.group(1))) for m in pattern.finditer(text)]
    if not starts or starts[0][0] > 0:
        head_end = starts[0][0] if starts else len(text)
        parts.append((None, text[:head_end]))
    for i, (start, title) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        parts.append((title, text[start:end]))
    return parts


def note_view(
    text: str,
    titles: Collection[str],
    mode: Literal["full", "sections"],
    keep: Sequence[str] = DEFAULT_KEEP,
) -> str:
    """The text a model sees: the full note, or only its relevant sections.

    `titles` are the split points, normally `boundary_titles(learn_section_titles(...))`; a
    title in `keep` that is not among them is never found. "full" returns `text` unchanged.
    "sections" returns the sections whose title is in `keep`, in the order of `keep`
    (priority order, so truncating the result to a token budget drops the least relevant
    sections first); a title that occurs several times contributes every occurrence, in
    note order. Each section starts with its title line as written in the note, loses its
    trailing whitespace, and is followed by one blank line (the last by a newline only).
    If the note has none of the kept sections (a note without headers, or another
    template), the full text is returned unchanged: an empty view would silently turn into
    an empty prompt. Use `view_fell_back` to know whether that happened.
    """
    if mode == "full":
        return text
    if mode != "sections":
        raise ValueError(f"mode must be 'full' or 'sections', got {mode!r}")
    consolidated = _consolidate(text, titles, keep)
    return consolidated if consolidated is not None else text


def view_fell_back(text: str, titles: Collection[str], keep: Sequence[str] = DEFAULT_KEEP) -> bool:
    """True if the "sections" view of `text` would fall back to the full note."""
    return _consolidate(text, titles, keep) is None


def _consolidate(text: str, titles: Collection[str], keep: Sequence[str]) -> str | None:
    """Kept sections in priority order, or None if the note has none of them."""
    wanted = [_normalise(k) for k in keep]
    by_title: dict[str, list[str]] = {}
    for title, part in split_sections(text, titles):
        if title is not None:
            by_title.setdefault(title, []).append(part.rstrip())
    chunks = [part for k in dict.fromkeys(wanted) for part in by_title.get(k, [])]
    if not chunks:
        return None
    return "\n\n".join(chunks) + "\n"


def _word_count(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class SectionSettings:
    """DF-IAPF selection (Appendix E: `min_df`, `min_score`, `max_words`), the sections the
    note view keeps, and how split points and the report's title list are chosen."""

    min_df: float = 0.2
    min_score: float = 0.15
    max_words: int = 6
    keep: Sequence[str] = DEFAULT_KEEP
    subheadings: Collection[str] = DEFAULT_SUBHEADINGS
    min_own_line: float = 0.5
    min_notes_listed: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", tuple(self.keep))  # the config gives a list


def write_section_report(
    train_path: str | Path,
    out_tsv: str | Path,
    out_json: str | Path,
    settings: SectionSettings | None = None,
) -> list[SectionTitle]:
    """Learn section titles from train.jsonl and write the title table and a summary.

    `section_titles.tsv` lists every candidate with DF >= 0.01 found in at least
    `min_notes_listed` notes (title, df, apf, score, selected, own_line; 4 decimals).
    `sections_report.json` holds the parameters, the selected titles, the split points
    (`boundary_titles`) and, over the training notes, how often each kept section is found,
    the mean word count of the full note and of the sections view, and how often the view
    fell back to the full note. No note text is written. Returns all learned titles.
    """
    settings = settings or SectionSettings()
    texts = _read_texts(train_path)
    titles = learn_section_titles(
        texts,
        min_df=settings.min_df,
        min_score=settings.min_score,
        max_words=settings.max_words,
    )
    selected = [t.title for t in titles if t.selected]
    boundaries = boundary_titles(titles, settings.keep, settings.subheadings, settings.min_own_line)
    wanted = list(dict.fromkeys(_normalise(k) for k in settings.keep))
    n = len(texts)

    found: Counter[str] = Counter()
    words_full = words_view = n_fallback = 0
    for text in texts:
        present = {t for t, _ in split_sections(text, boundaries)}
        found.update(k for k in wanted if k in present)
        words_full += _word_count(text)
        view = _consolidate(text, boundaries, wanted)
        if view is None:
            n_fallback += 1
            view = text
        words_view += _word_count(view)

    with atomic_write(out_tsv) as fh:
        fh.write("title\tdf\tapf\tscore\tselected\town_line\n")
        for t in titles:
            if round(t.df * n) < settings.min_notes_listed:
                continue
            flag = str(t.selected).lower()
            fh.write(
                f"{t.title}\t{t.df:.4f}\t{t.apf:.4f}\t{t.score:.4f}\t{flag}\t{t.own_line:.4f}\n"
            )

    def share(k: int) -> float:
        return round(k / n, 4) if n else 0.0

    report = {
        "method": "DF-IAPF (Lu et al., 2023): score = DF * log2(1 + 1/APF)",
        "n_train_notes": n,
        "parameters": {
            "min_df": settings.min_df,
            "min_score": settings.min_score,
            "max_words": settings.max_words,
            "keep": wanted,
            "subheadings": sorted(_normalise(t) for t in settings.subheadings),
            "min_own_line": settings.min_own_line,
            "min_notes_listed": settings.min_notes_listed,
        },
        "selected_titles": selected,
        "split_titles": boundaries,
        "kept_titles_not_split": [k for k in wanted if k not in boundaries],
        "kept_section_found_share": {k: share(found[k]) for k in wanted},
        "mean_words_full": round(words_full / n, 1) if n else 0.0,
        "mean_words_sections": round(words_view / n, 1) if n else 0.0,
        "fallback_share": share(n_fallback),
    }
    write_json(out_json, report)
    return titles


def _read_texts(path: str | Path) -> list[str]:
    """Note texts of a JSONL dataset file, with the record named on a bad row."""
    texts = []
    for i, rec in enumerate(read_jsonl(path), start=1):
        text = rec.get("text") if isinstance(rec, dict) else None
        if not isinstance(text, str):
            raise InputError("missing or non-string note text", file=path, row=i, field="text")
        texts.append(text)
    return texts


@dataclass(frozen=True)
class NoteView:
    """What the model reads: the full note, or the kept sections (Appendix E)."""

    mode: str = "full"
    split_titles: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()

    @classmethod
    def from_report(cls, mode: str, sections_report: str | Path | None) -> NoteView:
        if mode == "full" or sections_report is None:
            return cls("full")
        report = json.loads(Path(sections_report).read_text(encoding="utf-8"))
        return cls("sections", tuple(report["split_titles"]), tuple(report["parameters"]["keep"]))

    def __call__(self, text: str) -> str:
        if self.mode == "full":
            return text
        return note_view(text, self.split_titles, "sections", self.keep)
