"""Yes/no answers from a causal LM, with a note encoded once for all its questions.

Per note the paper asks |C| (~325) questions that share the note. All questions of a
chunk are packed after the note into one sequence; a block attention mask lets each
question see the note and itself (causally) but not the other questions, and position
ids restart after the note for every question, so each question sees exactly what it
would see in its own full prompt. Only the answer positions reach the LM head
(`logits_to_keep`), and p(yes) is the softmax over the two answer-token logits.

For models without sliding-window layers the note is run once and kept as a key/value
cache; each chunk of questions extends it and the cache is cropped back to the note.
Sliding-window layers (Gemma) drop cached keys beyond their window, so for them each
chunk is run together with the note in one pass; the mask then also encodes each
layer type's window. Training uses the single-pass form with gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _layer_types(model: Any) -> list[str]:
    cfg = model.config
    types = getattr(cfg, "layer_types", None)
    return list(types) if types else ["full_attention"]


def has_sliding_window(model: Any) -> bool:
    return "sliding_attention" in _layer_types(model)


def _packed(
    prefix_len: int, questions: Sequence[Sequence[int]], with_prefix: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Question ids, position ids (prefix included if `with_prefix`), the question each
    position belongs to (-1 for the prefix), and the index of each question's last token."""
    q_ids = [t for q in questions for t in q]
    q_pos = [prefix_len + i for q in questions for i in range(len(q))]
    ends = torch.tensor([len(q) for q in questions], device=device).cumsum(0) - 1
    if with_prefix:
        positions = list(range(prefix_len)) + q_pos
        ends = ends + prefix_len
    else:
        positions = q_pos
    pos = torch.tensor(positions, dtype=torch.long, device=device)
    owner = torch.tensor(
        [-1] * (prefix_len if with_prefix else 0) + [i for i, q in enumerate(questions) for _ in q],
        device=device,
    )
    return torch.tensor(q_ids, dtype=torch.long, device=device), pos, owner, ends


def _mask(
    prefix_len: int,
    q_owner: torch.Tensor,
    q_pos: torch.Tensor,
    with_prefix: bool,
    window: int | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Additive 4D mask (1, 1, queries, keys): 0 where attention is allowed.

    Keys are the prefix (positions 0..P-1) then the packed questions. A query sees the
    prefix up to its own position, and earlier tokens of its own question; with a window
    w, only keys whose position is within w - 1 of its own.
    """
    device = q_pos.device
    n_q = q_pos.shape[0]
    key_pos = torch.cat(
        [torch.arange(prefix_len, device=device), q_pos[prefix_len:] if with_prefix else q_pos]
    )
    key_owner = torch.cat(
        [
            torch.full((prefix_len,), -1, device=device),
            q_owner[prefix_len:] if with_prefix else q_owner,
        ]
    )
    qp = q_pos.view(n_q, 1)
    kp = key_pos.view(1, -1)
    qo = q_owner.view(n_q, 1)
    ko = key_owner.view(1, -1)
    query_index = torch.arange(n_q, device=device).view(n_q, 1)
    key_index = torch.arange(key_pos.shape[0], device=device).view(1, -1)
    key_index_in_query_space = key_index if with_prefix else key_index - prefix_len
    prefix_key = ko == -1
    same_question = (ko == qo) & (ko >= 0) & (key_index_in_query_space <= query_index)
    allowed = (prefix_key & (kp <= qp)) | same_question
    if window is not None:
        allowed &= (qp - kp) < window
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.view(1, 1, *allowed.shape)


def _masks(
    model: Any, prefix_len: int, owner: torch.Tensor, pos: torch.Tensor, with_prefix: bool
) -> Any:
    dtype = next(model.parameters()).dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = torch.float32
    types = set(_layer_types(model))
    if types == {"full_attention"}:
        return _mask(prefix_len, owner, pos, with_prefix, None, dtype)
    window = getattr(model.config, "sliding_window", None)
    return {
        t: _mask(
            prefix_len, owner, pos, with_prefix, window if t == "sliding_attention" else None, dtype
        )
        for t in types
    }


def answer_logits(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    answer_ids: tuple[int, int],
    cache: Any | None = None,
) -> torch.Tensor:
    """(n, 2) yes/no logits for questions about one note, in one forward pass.

    With `cache` (the note's key/value cache) only the questions are run and the cache is
    cropped back to the note afterwards; without, note and questions run together.
    """
    device = model.device
    p = len(prefix)
    with_prefix = cache is None
    q_ids, pos, owner, ends = _packed(p, questions, with_prefix, device)
    if with_prefix:
        q_ids = torch.cat([torch.tensor(list(prefix), dtype=torch.long, device=device), q_ids])
    mask = _masks(model, p, owner, pos, with_prefix)
    out = model(
        input_ids=q_ids.unsqueeze(0),
        position_ids=pos.unsqueeze(0),
        attention_mask=mask,
        past_key_values=cache,
        use_cache=cache is not None,
        logits_to_keep=ends,
    )
    if cache is not None:
        cache.crop(-int(q_ids.shape[0]))  # drop the questions, keep the note
    return out.logits[0][:, list(answer_ids)].float()


def prefix_cache(model: Any, prefix: Sequence[int]) -> Any:
    """Run the note once; return its key/value cache."""
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=model.device)
    return model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values


@torch.no_grad()
def score_shared_prefix(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    answer_ids: tuple[int, int],
    batch_size: int = 64,
) -> list[float]:
    """p(yes) for every question about one note, the note encoded once per note (or once
    per chunk of `batch_size` questions for sliding-window models)."""
    if not questions:
        return []
    cache = None if has_sliding_window(model) else prefix_cache(model, prefix)
    out: list[float] = []
    for start in range(0, len(questions), batch_size):
        logits = answer_logits(
            model, prefix, questions[start : start + batch_size], answer_ids, cache
        )
        out += torch.softmax(logits, dim=-1)[:, 0].tolist()
    return out


@torch.no_grad()
def score_naive(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    answer_ids: tuple[int, int],
) -> list[float]:
    """p(yes) with each full prompt run on its own: the reference and the baseline."""
    out: list[float] = []
    for q in questions:
        ids = torch.tensor([list(prefix) + list(q)], dtype=torch.long, device=model.device)
        logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1, list(answer_ids)].float()
        out.append(float(torch.softmax(logits, dim=-1)[0]))
    return out


def shared_prefix_loss(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    labels: Sequence[int],
    answer_ids: tuple[int, int],
) -> torch.Tensor:
    """Mean 2-way cross-entropy (label 1 = yes) over a note's questions, one pass.

    Equal to accumulating the questions one by one over their full prompts (the loss is a
    mean of per-question terms and the note's activations are shared exactly).
    """
    logits = answer_logits(model, prefix, questions, answer_ids, cache=None)
    target = torch.tensor([0 if y else 1 for y in labels], dtype=torch.long, device=model.device)
    return torch.nn.functional.cross_entropy(logits, target)
