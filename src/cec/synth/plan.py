"""Who is admitted, with which codes, in which split: decided before any text is written.

The plan holds only integers and short code lists (a few MB for 60,000 admissions), so
the tables can then be streamed to disk in one pass. Every random choice draws from a
generator seeded by (seed, purpose, index), which keeps the output identical for a seed
and independent of how many admissions come after.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cec.icd.icd9 import Icd9Hierarchy
from cec.plumbing.artifacts import SPLITS
from cec.synth.knowledge import Knowledge

# KEPT's MIMIC-III-rare-50 sizes (249 / 20 / 142) and caml-mimic's MIMIC-III-50 shares.
KEPT_RARE_SIZES = (249, 20, 142)
CAML_50_SHARES = (8066, 1573, 1729)
RARE_TRAIN_RANGE = (2, 8)
RARE_DEV_CODES = 13  # KEPT's rare-50 dev split covers only 13 codes
MIN_ADMISSIONS = 20  # the documented minimum: every split of both versions gets admissions


def rng_for(seed: int, purpose: str, index: int | str = 0) -> random.Random:
    """A generator private to one decision: string seeds hash stably across runs."""
    return random.Random(f"cec-synth:{seed}:{purpose}:{index}")


@dataclass
class Admission:
    """One hospital stay of the plan."""

    index: int
    hadm_id: int
    subject_id: int
    diagnoses: list[str] = field(default_factory=list)  # dotted, in SEQ_NUM order
    procedures: list[str] = field(default_factory=list)
    has_discharge_summary: bool = True
    rare_split: str | None = None
    top50_split: str | None = None


@dataclass
class Plan:
    admissions: list[Admission]
    top50_split: dict[str, list[int]]
    rare50_split: dict[str, list[int]]


def _subjects(n_admissions: int, seed: int) -> list[tuple[int, int]]:
    """(subject_id, number of stays) until n admissions: 80% one stay, as in MIMIC."""
    out: list[tuple[int, int]] = []
    total = 0
    k = 0
    while total < n_admissions:
        r = rng_for(seed, "subject", k).random()
        stays = 1 if r < 0.8 else 2 if r < 0.95 else 3
        stays = min(stays, n_admissions - total)
        out.append((10 + k, stays))
        total += stays
        k += 1
    return out


def _sample_codes(
    rng: random.Random, knowledge: Knowledge, background_dx: list[str], background_px: list[str]
) -> tuple[list[str], list[str]]:
    """Top-50 and confounder codes by prevalence and co-occurrence, plus background codes."""
    top = knowledge.groups["top50"]
    present: list[str] = []
    if rng.random() >= 0.08:  # ~8% of stays carry no code of interest (elective, newborn)
        present = [code for code, k in top.items() if rng.random() < k.prevalence]
        for code in list(present):
            for other, p in top[code].co_occurs:
                if other in top and other not in present and rng.random() < p:
                    present.append(other)
        kept: list[str] = []
        for code in present:
            excluded = any(code in top[k].excludes or k in top[code].excludes for k in kept)
            if not excluded:
                kept.append(code)
        present = kept
    rng.shuffle(present)
    dx = [c for c in present if top[c].kind == "diagnosis"]
    px = [c for c in present if top[c].kind == "procedure"]
    dx += rng.sample(background_dx, rng.randint(2, 8))
    px += rng.sample(background_px, rng.randint(0, 3))
    return dx, px


def _assign_rare_train(codes: list[str], n_adm: int, seed: int) -> list[list[str]]:
    """Give every rare code 2-8 training admissions, every admission at least one code."""
    if n_adm < RARE_TRAIN_RANGE[0]:
        raise ValueError(
            f"the rare-50 train split needs at least {RARE_TRAIN_RANGE[0]} admissions "
            f"(got {n_adm}): raise --admissions or the --rare50-split train size"
        )
    rng = rng_for(seed, "rare-train")
    # a code sits at most once in an admission: a split smaller than the range's top
    # caps every code's count at the split's size (the draws stay as they were)
    cap = min(RARE_TRAIN_RANGE[1], n_adm)
    counts = {c: min(rng.randint(*RARE_TRAIN_RANGE), cap) for c in codes}
    max_total = cap * len(codes)
    n_adm = min(n_adm, max_total)
    order = sorted(codes)
    while sum(counts.values()) < n_adm:  # enough occurrences to cover every admission
        c = rng.choice([c for c in order if counts[c] < cap])
        counts[c] += 1
    occurrences = [c for c in order for _ in range(counts[c])]
    rng.shuffle(occurrences)
    slots: list[list[str]] = [[] for _ in range(n_adm)]
    for code in occurrences:
        # the emptiest admission that does not hold this code yet (ties: lowest index)
        best = min(
            (i for i in range(n_adm) if code not in slots[i]),
            key=lambda i: (len(slots[i]), i),
        )
        slots[best].append(code)
    return slots


def default_rare_sizes(n_admissions: int) -> tuple[int, int, int]:
    """KEPT's sizes, scaled down so rare stays are at most a quarter of all stays."""
    scale = min(1.0, 0.25 * n_admissions / sum(KEPT_RARE_SIZES))
    return tuple(max(1, round(s * scale)) for s in KEPT_RARE_SIZES)  # type: ignore[return-value]


def _largest_remainder(total: int, shares: tuple[int, ...]) -> tuple[int, ...]:
    """`total` split in proportion to `shares`: each part's floor, then one more to the
    parts with the largest remainders (ties: the earlier part). The parts add up to
    `total` exactly, which per-share rounding does not promise."""
    whole = sum(shares)
    parts = [total * s // whole for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(total * shares[i] % whole), i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return tuple(parts)


def default_top50_sizes(n_eligible: int) -> tuple[int, int, int]:
    """caml-mimic's MIMIC-III-50 shares of the `n_eligible` admissions.

    Each share is rounded on its own, as releases before this one did, so that a seed that
    worked keeps giving the same bytes; where the three roundings overshoot the eligible
    admissions (by one at most: 20 admissions leave 11 eligible and 7.8, 1.5, 1.7 round to
    8 + 2 + 2 = 12), the largest-remainder split of the eligible count is used instead,
    which never exceeds it."""
    rounded = tuple(round(n_eligible * s / sum(CAML_50_SHARES)) for s in CAML_50_SHARES)
    if sum(rounded) <= n_eligible:
        return rounded  # type: ignore[return-value]
    return _largest_remainder(n_eligible, CAML_50_SHARES)  # type: ignore[return-value]


def fit_rare_sizes(available: int) -> tuple[int, int, int]:
    """Default rare-50 sizes for a plan with only `available` single-stay admissions (a
    seed that draws many multi-stay patients at a small N): the smallest usable split
    (train 2, dev 1, test 1), the rest in KEPT's proportions. Fewer than 4 are left as
    they are, for make_plan to refuse."""
    floor = (RARE_TRAIN_RANGE[0], 1, 1)
    if available < sum(floor):
        return floor
    rest = _largest_remainder(available - sum(floor), KEPT_RARE_SIZES)
    return tuple(f + r for f, r in zip(floor, rest, strict=True))  # type: ignore[return-value]


def make_plan(
    n_admissions: int,
    seed: int,
    knowledge: Knowledge,
    top50_sizes: tuple[int, int, int] | None = None,
    rare_sizes: tuple[int, int, int] | None = None,
) -> Plan:
    """Decide all admissions, their codes and the literature-style split lists."""
    if n_admissions < MIN_ADMISSIONS:
        raise ValueError(f"the synthetic MIMIC needs at least {MIN_ADMISSIONS} admissions")
    hierarchy = Icd9Hierarchy.load()
    special = {c for g in knowledge.groups.values() for c in g}
    background_dx = [c for c in hierarchy.leaves("diagnosis") if c not in special]
    background_px = [c for c in hierarchy.leaves("procedure") if c not in special]
    subjects = _subjects(n_admissions, seed)
    admissions: list[Admission] = []
    for subject_id, stays in subjects:
        for _ in range(stays):
            i = len(admissions)
            rng = rng_for(seed, "codes", i)
            dx, px = _sample_codes(rng, knowledge, background_dx, background_px)
            adm = Admission(i, 100001 + i, subject_id, dx, px)
            adm.has_discharge_summary = rng.random() >= 0.08
            admissions.append(adm)

    # Rare-50: planted on single-stay patients with a discharge summary.
    rare_codes = sorted(knowledge.groups["rare50"])
    sizes = rare_sizes or default_rare_sizes(n_admissions)
    by_subject: dict[int, list[Admission]] = {}
    for adm in admissions:
        by_subject.setdefault(adm.subject_id, []).append(adm)
    singles = [a[0] for a in by_subject.values() if len(a) == 1 and a[0].has_discharge_summary]
    rng_for(seed, "rare-pick").shuffle(singles)
    if rare_sizes is None and sum(sizes) > len(singles):
        sizes = fit_rare_sizes(len(singles))
    if sum(sizes) > len(singles):
        raise ValueError(
            f"rare-50 split sizes {sizes} need {sum(sizes)} single-stay admissions; only "
            f"{len(singles)} exist among {n_admissions}: raise --admissions"
        )
    train_codes = _assign_rare_train(rare_codes, sizes[0], seed)
    pick = iter(singles)
    rare_split: dict[str, list[int]] = {s: [] for s in SPLITS}
    for codes in train_codes:
        adm = next(pick)
        adm.rare_split = "train"
        _add_codes(adm, codes, knowledge)
    rng = rng_for(seed, "rare-dev")
    dev_codes = sorted(rng.sample(rare_codes, min(RARE_DEV_CODES, len(rare_codes))))
    for j in range(sizes[1]):
        adm = next(pick)
        adm.rare_split = "dev"
        _add_codes(adm, [dev_codes[j % len(dev_codes)]], knowledge)
    rng = rng_for(seed, "rare-test")
    cycle = list(rare_codes)
    rng.shuffle(cycle)
    for j in range(sizes[2]):
        adm = next(pick)
        adm.rare_split = "test"
        codes = [cycle[j % len(cycle)]]
        if rng.random() < 0.3:
            codes.append(cycle[(j + 17) % len(cycle)])
        _add_codes(adm, codes, knowledge)
    for adm in admissions:
        if adm.rare_split:
            rare_split[adm.rare_split].append(adm.hadm_id)

    # MIMIC-III-50: patient-level split of the other patients' coded stays.
    top = knowledge.groups["top50"]
    labels = {c for c, k in top.items() if k.role == "label"}
    eligible_subjects = sorted(
        s
        for s, stays in by_subject.items()
        if not any(a.rare_split for a in stays)
        and any(a.has_discharge_summary and labels & set(a.diagnoses + a.procedures) for a in stays)
    )
    rng_for(seed, "top50-split").shuffle(eligible_subjects)
    n_eligible = sum(
        1
        for s in eligible_subjects
        for a in by_subject[s]
        if a.has_discharge_summary and labels & set(a.diagnoses + a.procedures)
    )
    if top50_sizes is None:
        top50_sizes = default_top50_sizes(n_eligible)
    if sum(top50_sizes) > n_eligible:
        raise ValueError(
            f"MIMIC-III-50 split sizes {top50_sizes} exceed the {n_eligible} eligible "
            "admissions: raise --admissions or lower the sizes"
        )
    top50_split: dict[str, list[int]] = {s: [] for s in SPLITS}
    order = ["test", "dev", "train"]
    targets = dict(zip(SPLITS, top50_sizes, strict=True))
    for subject in eligible_subjects:
        coded = [
            a
            for a in by_subject[subject]
            if a.has_discharge_summary and labels & set(a.diagnoses + a.procedures)
        ]
        target = next((s for s in order if len(top50_split[s]) + len(coded) <= targets[s]), None)
        if target is None:
            continue
        for a in coded:
            a.top50_split = target
            top50_split[target].append(a.hadm_id)
    return Plan(
        admissions,
        {s: sorted(v) for s, v in top50_split.items()},
        {s: sorted(v) for s, v in rare_split.items()},
    )


def _add_codes(adm: Admission, codes: list[str], knowledge: Knowledge) -> None:
    for code in codes:
        k = knowledge.groups["rare50"][code]
        target = adm.diagnoses if k.kind == "diagnosis" else adm.procedures
        if code not in target:
            target.insert(0 if k.kind == "diagnosis" else len(target), code)
