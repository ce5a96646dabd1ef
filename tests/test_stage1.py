"""Stage 1 on tiny random models: prompt, answer tokens, shared-prefix equivalence, LoRA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cec.llm.backbones import Backbone, load_model
from cec.llm.lora import Group, LoraSettings, attach_lora, make_groups, save_adapter, train
from cec.llm.prompting import AnswerTokenError, PromptEncoder, QuestionTemplate
from cec.llm.tiny import build_tiny_model
from cec.llm.yesno import score_naive, score_shared_prefix
from cec.stage1.trainset import TrainsetSettings, build_concept_trainset

FIG3 = """Below is a clinical note. Write a response that appropriately completes the request.
### Instruction: You will be asked whether a medical concept is relevant with the following
clinical note or not. The concept will be a phrase of a few words. Write your answer in only
one word and nothing else. Your replying word should be 'yes' or 'no'. The question will be :
Is the note above relevant with the concept: {concept}? You will be provided an actual concept
in place of {concept}.
### Clinical Note : NOTE
### Question: Is the note above relevant with the concept 'Ptosis'?
### Answer:"""
TEXTS = [
    "Admission Date: History of Present Illness: creatinine peaked at 3.4, improved with IV "
    "fluids; extubated on HD#2; CHF exacerbation, diuresed with lasix.",
    "Is the note above relevant with the concept 'Oliguria'? ### Answer: yes",
] * 30
NOTE = (
    "Pt admitted with dyspnea. Creatinine peaked at 3.4 from a baseline of 0.9 and improved "
    "with IV fluids over three days. Extubated on hospital day two. "
) * 12
CONCEPTS = [
    "Rising serum creatinine",
    "Oliguria",
    "Ventilator management",
    "Early extubation after a passed breathing trial",
    "Atrial fibrillation",
    "Ptosis",
    "Volume overload treated with diuretics",
]


@pytest.fixture(
    scope="module", params=[("llama", None), ("gemma3_text", 16)], ids=["llama", "gemma3-sliding16"]
)
def tiny(request, tmp_path_factory):  # noqa: ANN001, ANN201
    arch, window = request.param
    folder = build_tiny_model(
        arch, tmp_path_factory.mktemp(arch) / "model", TEXTS, seed=3, sliding_window=window
    )
    model, tokenizer = load_model(folder)
    return folder, model.eval(), tokenizer


@pytest.fixture(scope="module")
def template() -> QuestionTemplate:
    return QuestionTemplate.load("concept_question_v1.jinja2")


def test_prompt_is_fig3(template: QuestionTemplate) -> None:
    text = template.head_text + "NOTE" + template.question("Ptosis")
    assert " ".join(text.split()) == " ".join(FIG3.split())
    assert text.endswith("\n### Answer:")  # the answer is the next token


def test_shared_prefix_equals_full_prompts(tiny, template) -> None:  # noqa: ANN001
    _, model, tokenizer = tiny
    enc = PromptEncoder(tokenizer, template, note_budget=300)
    note = enc.note(NOTE)
    questions = [enc.question(c) for c in CONCEPTS]
    assert len({len(q) for q in questions}) > 1  # left padding is exercised
    shared = score_shared_prefix(model, note.ids, questions, enc.answer_ids, batch_size=3)
    naive = score_naive(model, note.ids, questions, enc.answer_ids)
    assert max(abs(a - b) for a, b in zip(shared, naive, strict=True)) < 1e-4
    assert max(shared) - min(shared) > 1e-4  # the check can fail: scores differ by concept
    if model.config.model_type == "gemma3_text":
        assert len(note.ids) > 2 * model.config.sliding_window  # the window is crossed


def test_note_budget_truncates(tiny, template) -> None:  # noqa: ANN001
    _, _, tokenizer = tiny
    enc = PromptEncoder(tokenizer, template, note_budget=20)
    short, long = enc.note("Short note."), enc.note(NOTE)
    assert not short.truncated and long.truncated
    assert len(long.ids) == len(enc.note("").ids) + 20


def test_answer_tokens_must_be_single_tokens(template) -> None:  # noqa: ANN001
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(
        ["abc def"],
        trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    bytes_only = PreTrainedTokenizerFast(tokenizer_object=raw)
    with pytest.raises(AnswerTokenError, match="' yes' is not one token"):
        PromptEncoder(bytes_only, template, note_budget=10)


def test_trainset_pseudo_labels_no_leak_and_order_free() -> None:
    code_concepts = {
        "584.9": {"leaf": ["C1", "C2"], "parent": ["C3"]},
        "585.9": {"leaf": ["C4"], "parent": ["C5"]},
        "428.0": {"leaf": ["C6"], "parent": ["C7", "C8"]},
        "96.71": {"leaf": ["C9"], "parent": ["C10"]},
    }
    records = [
        {"hadm_id": "7", "labels": ["584.9", "428.0"]},
        {"hadm_id": "3", "labels": ["96.71"]},
        {"hadm_id": "5", "labels": []},
    ]
    s = TrainsetSettings(neg_per_pos=1.0, max_pos_per_note=None, seed=1)
    rows = build_concept_trainset(records, code_concepts, s)
    assert rows == build_concept_trainset(list(reversed(records)), code_concepts, s)
    by = {}
    for r in rows:
        by.setdefault(r["hadm_id"], []).append(r)
    assert set(by) == {"3", "7"}  # an admission without labels gives no pair
    pos7 = {r["concept_id"] for r in by["7"] if r["label"] == 1}
    neg7 = {r["concept_id"] for r in by["7"] if r["label"] == 0}
    assert pos7 == {"C1", "C2", "C3", "C6", "C7", "C8"}
    assert len(neg7) == 4 and not neg7 & pos7  # only 4 concepts outside the gold codes
    assert {r["concept_id"] for r in by["3"] if r["label"] == 0} <= {
        "C1",
        "C2",
        "C3",
        "C4",
        "C5",
        "C6",
        "C7",
        "C8",
    }
    capped = build_concept_trainset(
        records, code_concepts, TrainsetSettings(neg_per_pos=0.5, max_pos_per_note=2, seed=1)
    )
    assert sum(r["label"] for r in capped if r["hadm_id"] == "7") == 2
    assert sum(1 - r["label"] for r in capped if r["hadm_id"] == "7") == 1


def test_groups_cover_pairs_in_steps_of_grad_accum() -> None:
    items = [([1, 2], [[3], [4], [5], [6], [7]], [1, 0, 1, 0, 1]), ([8], [[9], [10]], [1, 0])]
    groups = make_groups(items, size=4, steps=7, seed=0)
    assert len(groups) == 7
    assert sorted(len(g.questions) for g in groups[:3]) == [1, 2, 4]  # epoch 1: all pairs
    assert groups == make_groups(items, size=4, steps=7, seed=0)


@pytest.mark.parametrize("loss", ["full_vocab", "yes_no"])
def test_lora_train_save_reload(tiny, template, tmp_path: Path, loss: str) -> None:  # noqa: ANN001
    folder, _, tokenizer = tiny
    model, _ = load_model(folder)
    enc = PromptEncoder(tokenizer, template, note_budget=64)
    note = enc.note(NOTE).ids
    qs = [enc.question(c) for c in CONCEPTS[:4]]
    labels = [1, 1, 0, 0]
    s = LoraSettings(
        r=4,
        alpha=8,
        dropout=0.0,
        targets=("q_proj", "v_proj"),
        steps=25,
        grad_accum=4,
        lr=0.02,
        seed=0,
        loss=loss,
    )
    model = attach_lora(model, s)
    report = train(model, [Group(note, qs, labels)] * s.steps, enc.answer_ids, s, progress=False)
    assert len(report.losses) == 25
    print(loss, [round(x, 3) for x in report.losses[::6]])
    # it learns the four answers (checked below); the 2-way loss halves, the full-vocabulary
    # one starts near ln |V| and must also move mass from every other token to the answers
    if loss == "yes_no":
        assert report.losses[-1] < 0.5 * report.losses[0]
    else:
        assert report.losses[-1] < report.losses[0] - 0.5
    after = score_shared_prefix(model, note, qs, enc.answer_ids)
    assert [p > 0.5 for p in after] == [True, True, False, False]
    save_adapter(model, tmp_path / "adapter", {"steps": s.steps}, report.losses, "test")
    saved = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "provenance.json",
        "loss_curve.png",
        "loss_curve.pdf",
    } <= set(saved)
    from peft import PeftModel

    fresh, _ = load_model(folder)
    reloaded = PeftModel.from_pretrained(fresh, str(tmp_path / "adapter")).eval()
    again = score_shared_prefix(reloaded, note, qs, enc.answer_ids)
    assert max(abs(a - b) for a, b in zip(after, again, strict=True)) < 1e-6
    assert json.loads((tmp_path / "adapter" / "provenance.json").read_text())["steps"] == 25


def test_interrupted_save_leaves_nothing(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    folder, _, _ = tiny
    model, _ = load_model(folder)
    model = attach_lora(model, LoraSettings(r=2, alpha=2, targets=("q_proj",)))

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt

    model.save_pretrained = boom
    with pytest.raises(KeyboardInterrupt):
        save_adapter(model, tmp_path / "adapter", {}, [1.0], "t")
    assert list(tmp_path.iterdir()) == []


def test_backbone_registry_reads_config() -> None:
    b = Backbone.from_config(
        "llama3_8b",
        {
            "source": "hf",
            "path": "/models/llama",
            "dtype": "bfloat16",
            "lora_targets": ["q_proj"],
            "note_budget": 2500,
            "revision": "abc",
        },
    )
    assert b.model_dir() == Path("/models/llama") and b.lora_targets == ("q_proj",)
    assert Backbone.from_config(
        "demo",
        {
            "source": "gguf",
            "gguf": "smollm2-135m-instruct",
            "dtype": "float32",
            "lora_targets": ["q_proj"],
            "note_budget": 384,
        },
    ).model_dir() == Path("results/models/demo")
    with pytest.raises(ValueError, match="dtype"):
        Backbone.from_config("x", {"source": "hf", "path": "p", "dtype": "int8"})


def test_float32_tolerance_is_the_real_one() -> None:
    assert torch.get_default_dtype() == torch.float32


def test_rank_auc_by_hand() -> None:
    from cec.stage1.run import rank_auc

    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs won 3 of 4 -> 0.75
    assert rank_auc([(0.9, True), (0.4, True), (0.5, False), (0.1, False)]) == 0.75
    assert rank_auc([(0.5, True), (0.5, False)]) == 0.5  # a tie counts half
    assert rank_auc([(0.5, True)]) is None


def test_lora_init_is_seeded(tiny) -> None:  # noqa: ANN001
    folder, _, _ = tiny
    s = LoraSettings(r=4, alpha=8, targets=("q_proj",), seed=5)
    weights = []
    for _ in range(2):
        model, _ = load_model(folder)
        torch.manual_seed(12345 + len(weights))  # whatever ran before must not matter
        lora = attach_lora(model, s)
        weights.append({k: v.clone() for k, v in lora.named_parameters() if "lora_A" in k})
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("loss", ["full_vocab", "yes_no"])
def test_shared_prefix_loss_equals_each_full_prompt(tiny, template, loss: str) -> None:  # noqa: ANN001
    """One pass over the note gives the mean of the per-question losses, each computed on
    its own full prompt: over the whole vocabulary (the default, next-token training), or
    over the two answer tokens."""
    from cec.llm.yesno import shared_prefix_loss

    _, model, tokenizer = tiny
    enc = PromptEncoder(tokenizer, template, note_budget=60)
    note = enc.note(NOTE).ids
    qs = [enc.question(c) for c in CONCEPTS[:4]]
    labels = [1, 0, 0, 1]
    yes, no = enc.answer_ids
    with torch.no_grad():
        shared = float(shared_prefix_loss(model, note, qs, labels, enc.answer_ids, loss))
        terms = []
        for q, y in zip(qs, labels, strict=True):
            logits = model(torch.tensor([note + list(q)])).logits[0, -1].float()
            if loss == "yes_no":
                logits = logits[[yes, no]]
                target = 0 if y else 1
            else:
                target = yes if y else no
            terms.append(
                float(torch.nn.functional.cross_entropy(logits[None], torch.tensor([target])))
            )
        other = "yes_no" if loss == "full_vocab" else "full_vocab"
        different = float(shared_prefix_loss(model, note, qs, labels, enc.answer_ids, other))
    assert abs(shared - sum(terms) / len(terms)) < 1e-4
    assert abs(shared - different) > 0.1  # the two losses are not the same quantity


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_shared_prefix_gradient_is_accumulation_only_without_dropout(
    tiny,  # noqa: ANN001
    template,  # noqa: ANN001
    dropout: float,
) -> None:
    """The LoRA gradient of one pass over the note equals the gradient of accumulating the
    pairs one by one over their full prompts when LoRA dropout is 0. With dropout each
    pass draws its own masks, and the two agree only in expectation."""
    from cec.llm.yesno import shared_prefix_loss

    folder, _, tokenizer = tiny
    enc = PromptEncoder(tokenizer, template, note_budget=60)
    note = enc.note(NOTE).ids
    qs = [enc.question(c) for c in CONCEPTS[:4]]
    labels = [1, 0, 0, 1]
    model, _ = load_model(folder)
    s = LoraSettings(r=4, alpha=8, dropout=dropout, targets=("q_proj", "v_proj"), seed=5)
    lora = attach_lora(model, s)
    with torch.no_grad():  # LoRA's B starts at zero: give it weights, so A gets gradients
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    lora.train()
    params = [p for p in lora.parameters() if p.requires_grad]
    torch.manual_seed(1)
    shared = torch.autograd.grad(shared_prefix_loss(lora, note, qs, labels, enc.answer_ids), params)
    accumulated = [torch.zeros_like(p) for p in params]
    yes, no = enc.answer_ids
    for q, y in zip(qs, labels, strict=True):
        logits = lora(input_ids=torch.tensor([note + list(q)])).logits[0, -1].float()
        term = torch.nn.functional.cross_entropy(logits[None], torch.tensor([yes if y else no]))
        for total, g in zip(accumulated, torch.autograd.grad(term / len(qs), params), strict=True):
            total += g
    scale = max(float(g.abs().max()) for g in shared)
    gap = max(float((a - b).abs().max()) for a, b in zip(shared, accumulated, strict=True))
    assert scale > 1e-3  # the comparison is between real gradients
    if dropout == 0.0:
        assert gap < 1e-5 * max(1.0, scale)
    else:
        assert gap > 1e-3 * scale  # masks differ between the passes


def test_note_budget_comes_from_the_context_window() -> None:
    """Without a fixed budget the note gets what the context window leaves around the
    longest prompt, so a typical discharge summary is read whole."""
    from cec.llm.prompting import CutStats, EncodedNote
    from cec.plumbing.errors import InputError

    llama = Backbone.from_config(
        "llama3_8b",
        {"source": "hf", "path": "/m", "dtype": "bfloat16", "lora_targets": ["q_proj"],
         "context_window": 8192},
    )  # fmt: skip
    assert llama.note_budget is None and llama.note_tokens(around=700) == 7492
    fixed = Backbone.from_config(
        "demo", {"source": "tiny", "arch": "llama", "dtype": "float32",
                 "lora_targets": ["q_proj"], "note_budget": 320},
    )  # fmt: skip
    assert fixed.note_tokens(around=700) == 320  # a configured budget wins
    with pytest.raises(InputError, match="more than the context window"):
        llama.note_tokens(around=9000)
    with pytest.raises(InputError, match="note_budget or context_window"):
        Backbone.from_config("x", {"source": "hf", "path": "/m", "dtype": "float32",
                                   "lora_targets": ["q_proj"]}).note_tokens(10)  # fmt: skip
    cut = CutStats(budget=100)
    for length in (50, 100, 200, 400):  # two notes fit, two lose 1/2 and 3/4 of their tokens
        cut.add(EncodedNote([], length > 100, length))
    assert cut.as_dict() == {
        "note_budget_tokens": 100, "notes_truncated": 2,
        "share_notes_truncated": 0.5, "mean_share_tokens_lost": 0.3125,
    }  # fmt: skip


def test_prompt_around_the_note_is_measured(tiny, template) -> None:  # noqa: ANN001
    _, _, tokenizer = tiny
    enc = PromptEncoder(tokenizer, template, note_budget=0)
    questions = [enc.question(c) for c in CONCEPTS]
    around = enc.around_note(questions)
    full = enc.note("").ids  # head + lead, no note
    assert around == len(full) + max(len(q) for q in questions)
