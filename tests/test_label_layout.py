"""No line position of a label prompt may carry the label (Section 3.4's shortcut).

In training, a true code shows its own concepts "Yes" and m others "No", a false code the
reverse. With the others always on the first lines, their answers were the negation of
the label, and a model learns that cue (the demo's CEC said "Yes" to every code). These
tests measure, over a generated training set, how well each line position's answer tells
true codes from false ones: the same for every position, up to sampling noise.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from cec.stage2.run import build_label_trainset
from cec.stage2.sampling import ConceptView, prediction_layout

K, M = 5, 2


def synthetic_code_concepts(n_codes: int = 40, seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """Codes in groups of four siblings: each has 2-4 leaf concepts of its own and shares
    its group's 4-5 parent concepts, as ICD-9 siblings share a category."""
    rng = random.Random(seed)
    out: dict[str, dict[str, list[str]]] = {}
    for i in range(n_codes):
        group = i // 4
        parents = [f"parent {group}.{j}" for j in range(4 + group % 2)]
        leaves = [f"leaf {i}.{j}" for j in range(rng.randint(2, 4))]
        out[f"{100 + i}.0"] = {"leaf": leaves, "parent": parents}
    return out


def training_set(seed: int = 13) -> tuple[list[dict], ConceptView]:
    code_concepts = synthetic_code_concepts()
    codes = sorted(code_concepts)
    rng = random.Random(seed)
    records = [
        {"hadm_id": str(h), "labels": sorted(rng.sample(codes, rng.randint(1, 4)))}
        for h in range(1, 801)
    ]
    rows = build_label_trainset(records, codes, code_concepts, "cec", seed, K, M, 1.0)
    return rows, ConceptView.build(code_concepts, codes, "cec")


def position_gaps(rows: Sequence[dict]) -> list[float]:
    """Per line position: P(answer Yes | true code) - P(answer Yes | false code), over the
    rows that show all k + m lines."""
    counts = {(p, y): [0, 0] for p in range(K + M) for y in (0, 1)}  # [yes, total]
    for row in rows:
        if len(row["concepts"]) != K + M:
            continue
        for p, (_, answer) in enumerate(row["concepts"]):
            cell = counts[(p, row["label"])]
            cell[0] += answer
            cell[1] += 1
    return [
        counts[(p, 1)][0] / counts[(p, 1)][1] - counts[(p, 0)][0] / counts[(p, 0)][1]
        for p in range(K + M)
    ]


def others_first(rows: Sequence[dict], view: ConceptView) -> list[dict]:
    """The same rows laid out as before the fix: the m others, then the own concepts."""
    out = []
    for row in rows:
        own = set(view.own[row["code"]])
        lines = row["concepts"]
        reordered = [x for x in lines if x[0] not in own] + [x for x in lines if x[0] in own]
        out.append({**row, "concepts": reordered})
    return out


def test_no_line_position_tells_the_label_in_training() -> None:
    rows, view = training_set()
    full = [r for r in rows if len(r["concepts"]) == K + M]
    assert len(full) > 1500 and {r["label"] for r in full} == {0, 1}
    gaps = position_gaps(rows)
    print("per-position P(Yes|true) - P(Yes|false):", [round(g, 3) for g in gaps])
    # the answers do tell the label (own concepts outnumber the others) ...
    assert min(gaps) > 0.2
    # ... but no position more than another: the spread is sampling noise (sd ~0.02)
    assert max(gaps) - min(gaps) < 0.12
    # the check can fail: the old layout puts a perfect inverse cue on the first lines
    old = position_gaps(others_first(rows, view))
    print("the same rows, others first:", [round(g, 3) for g in old])
    assert old[0] < -0.9 and old[1] < -0.9 and max(old) - min(old) > 1.5


def test_prediction_spreads_the_others_over_the_shared_head() -> None:
    code_concepts = synthetic_code_concepts()
    codes = sorted(code_concepts)
    view = ConceptView.build(code_concepts, codes, "cec")
    rng = random.Random(3)
    hits = [0] * (K + 3)
    layouts = 0
    for hadm in range(1, 201):
        p_yes = {c: rng.random() for c in view.space}
        for code in codes[:10]:
            lines, n_others = prediction_layout(view, code, str(hadm), 13, p_yes, M, 3)
            if n_others != M or len(lines) < K + 3:
                continue
            layouts += 1
            for p, (c, _) in enumerate(lines[: K + 3]):
                hits[p] += c not in view.own[code]
            again, _ = prediction_layout(view, code, str(hadm), 13, p_yes, M, 3)
            assert again == lines  # seeded by (seed, admission, code)
    shares = [h / layouts for h in hits]
    print("share of prompts with an 'other' line at each position:", [round(s, 3) for s in shares])
    assert layouts > 1000
    # the others sit among the first m + k_min = 5 lines, each position equally often ...
    assert all(abs(s - M / (M + 3)) < 0.06 for s in shares[: M + 3])
    # ... and never after them, so the k = 3 prompt is a prefix of the k = 4..6 ones
    assert shares[M + 3 :] == [0.0] * (len(shares) - M - 3)
