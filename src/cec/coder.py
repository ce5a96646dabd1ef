"""`cec code NOTE.txt`: code one new note with the trained models, and show why.

Runs stage 1 (every concept of the dataset asked about the note) and stage 2 (each code
asked with k of its concepts and 2 answered-no concepts of other codes) on the local
model with the adapters the workflow trained, and prints each predicted code with its
probability, its title and the concept answers its prompt showed: the interpretability
the paper claims. Hub access is switched off before any model code loads; nothing leaves
the machine.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cec.llm.backbones import Backbone
from cec.llm.loading import (
    check_adapter_dir,
    check_model_dir,
    choose_device,
    load_scoring_model,
    model_rebuild,
)
from cec.llm.prompting import PromptEncoder, QuestionTemplate
from cec.llm.yesno import score_shared_prefix
from cec.plumbing.artifacts import (
    artifact,
    damaged,
    read_code_concepts,
    read_code_table,
    read_concept_texts,
    read_json_artifact,
    rebuild_hint,
)
from cec.plumbing.errors import InputError
from cec.sections import NoteView
from cec.stage2.methods import label_backbone
from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate
from cec.stage2.score import LabelScorer
from cec.stage2.trainset import code_titles, concept_view


@dataclass(frozen=True)
class CodingSetup:
    """Where the workflow put everything one (dataset, backbone) needs."""

    results: Path
    backbone: Backbone  # stage 1 (the row backbone)
    label_backbone: Backbone  # stage 2 (Appendix A: may differ, e.g. Bio-Medical-Llama)
    concept_adapter: Path
    label_adapter: Path
    concepts: Path
    code_concepts: Path
    codes: Path
    sections_report: Path | None
    note_view: str
    m: int

    @classmethod
    def from_config(
        cls, config: dict[str, Any], dataset: str, backbone: str, seed: int, results: Path
    ) -> CodingSetup:
        if dataset not in config["datasets"]:
            raise InputError(f"no dataset {dataset!r} in the config ({sorted(config['datasets'])})")
        if backbone not in config["stage2"]["backbones"]:
            raise InputError(
                f"backbone {backbone!r} has no label model in the config "
                f"(stage2.backbones: {config['stage2']['backbones']})"
            )
        label = label_backbone(config["stage2"], backbone, "cec")
        view = config["note_view"]
        return cls(
            results=results,
            backbone=Backbone.from_config(backbone, config["backbones"][backbone]),
            label_backbone=Backbone.from_config(label, config["backbones"][label]),
            concept_adapter=artifact(
                "concept_adapter", results, dataset=dataset, backbone=backbone
            ),
            label_adapter=artifact(
                "label_adapter",
                results,
                dataset=dataset,
                backbone=backbone,
                variant="cec",
                seed=seed,
            ),  # fmt: skip
            concepts=artifact("concepts", results, dataset=dataset),
            code_concepts=artifact("code_concepts", results, dataset=dataset),
            codes=artifact("codes", results, dataset=dataset),
            sections_report=(
                artifact("sections_report", results, dataset=dataset)
                if view == "sections"
                else None
            ),
            note_view=view,
            m=int(config["stage2"]["trainset"]["m"]),
        )

    def check(self) -> None:
        """Every file exists and is whole, or say which target builds it: a damaged
        adapter or model is named before minutes go into loading the other one."""
        needed = [
            (self.backbone.model_dir(self.results), model_rebuild(self.backbone)),
            (self.label_backbone.model_dir(self.results), model_rebuild(self.label_backbone)),
            (self.concept_adapter / "provenance.json", None),
            (self.label_adapter / "provenance.json", None),
            (self.concepts, None),
            (self.code_concepts, None),
            (self.codes, None),
        ] + ([(self.sections_report, None)] if self.sections_report else [])
        for path, rebuild in needed:
            if not path.exists():
                raise damaged(path, "not built yet: run the workflow first", rebuild)
        for bb in (self.backbone, self.label_backbone):
            check_model_dir(bb.model_dir(self.results), model_rebuild(bb))
        for adapter in (self.concept_adapter, self.label_adapter):
            check_adapter_dir(adapter)
        self._check_code_sets()
        if self.sections_report is not None:
            read_json_artifact(self.sections_report)

    def _check_code_sets(self) -> None:
        """codes.tsv and code_concepts.json name the same codes (the workflow derives one
        from the other): a table cut at a line end would otherwise code fewer codes
        without a word."""
        try:
            codes = {r["code"] for r in read_code_table(self.codes)}
        except InputError as exc:
            raise exc.restated(f"{exc.message}; {rebuild_hint(self.codes)}") from None
        mapping = read_code_concepts(self.code_concepts, self.concepts)
        extra = sorted(set(mapping) - codes)
        if extra:
            raise damaged(
                self.codes,
                f"lacks code {extra[0]}, which {self.code_concepts.name} has ({len(extra)} "
                "missing in all): cut, or from another run",
            )
        lacking = sorted(codes - set(mapping))
        if lacking:
            raise damaged(
                self.code_concepts,
                f"has no concepts for code {lacking[0]} of {self.codes.name} ({len(lacking)} "
                "missing in all): from another run",
            )


def read_note(path: str | Path) -> str:
    """The note's text, or a clear error for a missing, empty or binary file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such note file", file=path)
    data = path.read_bytes()
    if b"\x00" in data:
        raise InputError("this is a binary file, not a text note (it holds NUL bytes)", file=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start}); save the note as UTF-8", file=path
        ) from None
    if not text.strip():
        raise InputError("the note is empty", file=path)
    return text


def code_note(
    note_path: str | Path,
    config: dict[str, Any],
    dataset: str,
    backbone: str,
    *,
    seed: int | None = None,
    k: int = 6,
    results: str | Path = "results",
    truncate: bool = False,
    device: str = "auto",
) -> dict[str, Any]:
    """Probabilities and evidence for every code of the dataset's label set."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # local files only, whatever the caller's setting
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    device = choose_device(device, "--device")  # no GPU for --device cuda: say so first
    text = read_note(note_path)
    seed = int(config["stage2"]["seeds"][0] if seed is None else seed)
    setup = CodingSetup.from_config(config, dataset, backbone, seed, Path(results))
    setup.check()
    view = NoteView.from_report(setup.note_view, setup.sections_report)
    shown_text = view(text)
    results = Path(results)
    bb = setup.backbone

    # stage 1: every concept, one shared note prefix
    model, tokenizer, prov1 = load_scoring_model(
        bb, bb.model_dir(results), setup.concept_adapter, device
    )
    assert prov1 is not None
    enc1 = PromptEncoder(tokenizer, QuestionTemplate.load(prov1["template"]), 0)
    concepts = read_concept_texts(setup.concepts)
    ids = list(concepts)
    questions = [enc1.question(concepts[c]) for c in ids]
    enc1.note_budget = bb.note_tokens(enc1.around_note(questions))  # as score_notes does
    note1 = enc1.note(shown_text)
    if note1.truncated and not truncate:
        raise InputError(
            f"the note has {note1.note_tokens} tokens ({setup.note_view} view); the "
            f"{bb.name} budget is {enc1.note_budget}. Pass --truncate to keep the first "
            f"{enc1.note_budget}, as the workflow does",
            file=note_path,
        )
    probs1 = score_shared_prefix(model, note1.ids, questions, enc1.answer_ids)
    p_yes = dict(zip(ids, probs1, strict=True))
    del model

    # stage 2: the CEC label model with k concepts per code
    lb = setup.label_backbone
    model, tokenizer, prov2 = load_scoring_model(
        lb, lb.model_dir(results), setup.label_adapter, device
    )
    assert prov2 is not None
    enc2 = LabelPromptEncoder(tokenizer, LabelTemplate.load(prov2["template"]), 0)
    titles = code_titles(setup.codes)
    code_concepts = read_code_concepts(setup.code_concepts, setup.concepts)
    cview = concept_view(code_concepts, list(titles), "cec")
    assert cview is not None
    tail = enc2.longest_tail([concepts[c] for c in cview.space], titles.values(), setup.m + k)
    enc2.note_budget = lb.note_tokens(enc2.around_note(tail))  # as predict_split does
    scorer = LabelScorer(model, enc2, titles, concepts, cview, seed, setup.m)
    key = "note:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    result = scorer.score(enc2.note(shown_text).ids, key, [k], p_yes)
    codes = []
    for code, prob in sorted(result.probs[k].items(), key=lambda t: -t[1]):
        own = set(cview.own[code]) if cview else set()
        codes.append(
            {
                "code": code,
                "title": titles[code],
                "prob": round(prob, 6),
                "concepts": [
                    {
                        "concept_id": c,
                        "text": concepts[c],
                        "answer": "yes" if y else "no",
                        "p_yes": round(p_yes[c], 4),
                        "of": code if c in own else "another code",
                    }
                    for c, y in result.lines[code]
                ],
            }
        )
    return {
        "note": str(note_path),
        "dataset": dataset,
        "backbone": backbone,
        "label_model": lb.name,
        "method": f"cec_k{k}",
        "seed": seed,
        "note_tokens": note1.note_tokens,
        "truncated": note1.truncated,
        "codes": codes,
    }


def format_result(result: dict[str, Any], threshold: float, show_all: bool) -> str:
    """A terminal report: predicted codes first, each with the answers behind it."""
    lines = [
        f"{result['note']}: {result['dataset']}, {result['backbone']} "
        f"({result['method']}, seed {result['seed']}; {result['note_tokens']} note tokens"
        f"{', truncated' if result['truncated'] else ''})",
    ]
    chosen = [c for c in result["codes"] if show_all or c["prob"] > threshold]
    if not chosen:
        lines.append(f"no code above {threshold} (--all lists every code)")
    for c in chosen:
        mark = "+" if c["prob"] > threshold else " "
        lines.append(f"{mark} {c['code']:<8} {c['prob']:.3f}  {c['title']}")
        for e in c["concepts"]:
            lines.append(
                f"      {e['answer']:<3} (p={e['p_yes']:.2f})  {e['text']}"
                + ("" if e["of"] == c["code"] else "  [another code]")
            )
    return "\n".join(lines)
