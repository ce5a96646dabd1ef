"""No line position of a label prompt may carry the label (Section 3.4's shortcut).

In training, a true code shows its own concepts "Yes" and m others "No", a false code the
reverse. With the others always on the first lines, their answers were the negation of
the label, and a model learns that cue (the demo's CEC said "Yes" to every code). These
tests measure, over a generated training set, how well each line position's answer tells
true codes from false ones: the same for every position, up to sampling noise.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from cec.llm.tiny import build_tiny_model, workflow_texts
from cec.plumbing.artifacts import read_concept_texts
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate
from cec.stage2.sampling import ConceptView, prediction_layout
from cec.stage2.trainset import build_label_trainset, write_label_trainset

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


def _learning_setup(tmp_path: Path) -> dict[str, Path]:
    """A small task whose label follows from the concept answers alone: every note says
    the same thing, so only the answer lines tell a true code from a false one."""
    code_concepts = synthetic_code_concepts(16)
    codes = sorted(code_concepts)
    ids = {text: f"C{i:04d}" for i, text in enumerate(
        dict.fromkeys(c for e in code_concepts.values() for v in e.values() for c in v)
    )}  # fmt: skip
    by_id = {
        code: {lv: [ids[t] for t in v] for lv, v in e.items()} for code, e in code_concepts.items()
    }
    concepts = tmp_path / "concepts.tsv"
    concepts.write_text(
        "concept_id\tlevel\towner\ttext\n" + "".join(f"{i}\tleaf\tx\t{t}\n" for t, i in ids.items())
    )
    table = tmp_path / "codes.tsv"
    table.write_text(
        "code\tkind\tdescription\tparent\tparent_description\n"
        + "".join(f"{c}\tdiagnosis\tdisease {c}\t{c[:3]}\tgroup {c[:3]}\n" for c in codes)
    )
    rng = random.Random(1)
    records = [
        {"hadm_id": str(h), "subject_id": str(h), "text": "admission note",
         "labels": sorted(rng.sample(codes, rng.randint(1, 3)))}
        for h in range(1, 401)
    ]  # fmt: skip
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = build_label_trainset(records, codes, by_id, "cec", 13, K, M, 1.0)
    trainset = tmp_path / "label_cec.jsonl"
    write_label_trainset(rows, trainset, tmp_path / "summary.json", {})
    texts = [" ".join(ids), "disease admission note Yes No"] * 20
    model = build_tiny_model("llama", tmp_path / "model", workflow_texts() + texts, seed=1,
                             vocab_size=2048)  # fmt: skip
    return {"model": model, "train": train, "concepts": concepts, "codes": table,
            "trainset": trainset, "by_id": by_id}  # fmt: skip


def test_the_trained_label_model_follows_the_answers_not_the_positions(tmp_path: Path) -> None:
    """Trained through `train_label_model`, the label model answers from the concept
    answers wherever the lines sit: with the others always first, a tiny model learned
    to read the last lines and said No to codes whose own concepts were all Yes as soon
    as the others moved there."""
    from cec.llm.backbones import Backbone
    from cec.llm.loading import load_scoring_model
    from cec.llm.lora import LoraSettings, TrainingFiles, TrainingOptions
    from cec.llm.yesno import score_naive
    from cec.stage2.run import train_label_model

    s = _learning_setup(tmp_path)
    backbone = Backbone.from_config("tiny", {"source": "tiny", "arch": "llama",
                                             "lora_targets": ["k_proj", "v_proj"],
                                             "note_budget": 16,
                                             "cpu_dtype": "float32"})  # fmt: skip
    lora = LoraSettings(r=32, alpha=128, dropout=0.0, targets=("k_proj", "v_proj"),
                        steps=200, grad_accum=8, lr=0.003, seed=13)  # fmt: skip
    template = "label_question_compact_v1.jinja2"
    files = TrainingFiles(s["model"], s["trainset"], s["train"], s["concepts"],
                          tmp_path / "adapter", code_table=s["codes"])  # fmt: skip
    train_label_model(
        backbone, files, lora, "cec", TrainingOptions(template=template, progress=False)
    )
    model, tokenizer, _ = load_scoring_model(backbone, s["model"], tmp_path / "adapter", "cpu")
    encoder = LabelPromptEncoder(tokenizer, LabelTemplate.load(template), 16)
    texts = read_concept_texts(s["concepts"])
    view = ConceptView.build(s["by_id"], sorted(s["by_id"]), "cec")
    note = encoder.note("admission note").ids
    rng = random.Random(7)
    for own_yes in (True, False):
        for place in ("first", "last", "random"):
            says_yes = []
            for code in sorted(s["by_id"]):
                own = [(c, own_yes) for c in rng.sample(view.own[code], K)]
                others = [(c, False) for c in rng.sample(
                    [c for c in view.space if c not in view.own[code]], M)]  # fmt: skip
                lines = {"first": others + own, "last": own + others}.get(place)
                if lines is None:
                    lines = others + own
                    rng.shuffle(lines)
                ids = [t for c, y in lines for t in encoder.line(texts[c], y)]
                ids += encoder.question(f"disease {code}")
                says_yes.append(score_naive(model, note, [ids], encoder.answer_ids)[0] > 0.5)
            share = sum(says_yes) / len(says_yes)
            print(f"own concepts {'Yes' if own_yes else 'No'}, others {place}: {share:.2f} Yes")
            assert share == (1.0 if own_yes else 0.0), (own_yes, place, share)
