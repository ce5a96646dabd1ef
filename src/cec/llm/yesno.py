"""Yes/no answers from a causal LM, with a note encoded once for all its questions.

Per note the paper asks |C| (~325) concept questions (stage 1) and one question per code
and method (stage 2), all sharing the note. The note is run once and kept as a key/value
cache. The questions are `Segment`s: a flat question continues the note; in stage 2 a
code's prompts form a tree (shared concept lines, then one question per k). Whole trees
are packed into rows; an attention mask lets each token see the note, its segment's
ancestors and the earlier tokens of its own segment, and position ids continue from the
parent, so every question sees exactly what it would see as its own full prompt. Rows
are batched over a repeated copy of the note's cache, which is cropped back afterwards.
Only answer positions reach the two answer rows of the LM head, in fp32.

Sliding-window layers (Gemma) drop cached keys beyond their window, so for them each
chunk is run together with the note in one row; the mask then also encodes each layer
type's window. Training uses that single-row form with gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


def _layer_types(model: Any) -> list[str]:
    cfg = model.config
    types = getattr(cfg, "layer_types", None)
    return list(types) if types else ["full_attention"]


def has_sliding_window(model: Any) -> bool:
    return "sliding_attention" in _layer_types(model)


@dataclass(frozen=True)
class Segment:
    """A run of tokens that continues the prefix (`parent` -1) or an earlier segment.

    Flat questions are segments whose parent is the prefix. The label stage grows trees:
    concept lines shared by several questions are one segment, and each question that
    follows them is a child, so k = 3..6 reuse the lines they have in common. A `scored`
    segment has its answer read after its last token."""

    ids: tuple[int, ...]
    parent: int = -1
    scored: bool = True


def _packed(
    prefix_len: int, segments: Sequence[Segment], with_prefix: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packed ids, position ids (prefix included if `with_prefix`), the segment each
    position belongs to (-1 for the prefix), the ancestor-or-self matrix of the segments,
    and the index of each scored segment's last token. Per-token arrays are built with
    tensor ops: a note's label trees hold tens of thousands of tokens."""
    n = len(segments)
    starts: list[int] = []
    ancestors = torch.zeros((n + 1, n + 1), dtype=torch.bool)  # row/col n: prefix, padding
    for i, seg in enumerate(segments):
        if not seg.ids:
            raise ValueError(f"segment {i} is empty")
        if not -1 <= seg.parent < i:
            raise ValueError(f"segment {i} must follow its parent (got parent {seg.parent})")
        if seg.parent < 0:
            starts.append(prefix_len)
        else:
            starts.append(starts[seg.parent] + len(segments[seg.parent].ids))
            ancestors[i] = ancestors[seg.parent]
        ancestors[i, i] = True
    lengths = torch.tensor([len(seg.ids) for seg in segments], dtype=torch.long)
    ends = torch.cumsum(lengths, 0)
    total = int(ends[-1]) if n else 0
    owner = torch.repeat_interleave(torch.arange(n), lengths)
    # a token's position: its segment's start plus its offset within the segment
    q_pos = (
        torch.tensor(starts, dtype=torch.long)[owner]
        + torch.arange(total)
        - (ends - lengths)[owner]
    )
    q_ids = torch.tensor([t for seg in segments for t in seg.ids], dtype=torch.long)
    offset = prefix_len if with_prefix else 0
    scored = torch.tensor([seg.scored for seg in segments], dtype=torch.bool)
    last = ends[scored] - 1 + offset
    if with_prefix:
        q_pos = torch.cat([torch.arange(prefix_len), q_pos])
        owner = torch.cat([torch.full((prefix_len,), -1, dtype=torch.long), owner])
    return (
        q_ids.to(device),
        q_pos.to(device),
        owner.to(device),
        ancestors.to(device),
        last.to(device),
    )


def _allowed(
    prefix_len: int, row_owner: torch.Tensor, ancestors: torch.Tensor, with_prefix: bool
) -> torch.Tensor:
    """Which keys each query may see, as a (queries, keys) bool matrix.

    Keys are the prefix (P tokens) then the row's W packed tokens; queries are the row's
    tokens, preceded by the prefix's own if `with_prefix`. A row token sees the whole
    prefix, every token of its segment's ancestors, and the earlier tokens of its own
    segment. Built from the small segment-level `ancestors` matrix by two gathers and a
    lower triangle (segments follow their ancestors in a row, so a key after its query
    can only be in the query's own segment, where it is hidden): per-token index
    arithmetic over the whole (W, P + W) grid cost a third of the tiny model's scoring
    time. Padding (owner -2) maps to the unused last row and column of `ancestors`: it
    sees the prefix only, and nothing sees it.
    """
    device = row_owner.device
    n_seg = ancestors.shape[0] - 1
    index = torch.where(row_owner >= 0, row_owner, n_seg)
    # rows first, then columns as rows of the transpose: index_select along dim 1 of a
    # bool matrix is ~30x slower than along dim 0
    by_query = ancestors.index_select(0, index).T.contiguous()  # (segments, W)
    block = torch.tril(by_query.index_select(0, index).T)
    width = int(row_owner.shape[0])
    rows = torch.cat([torch.ones((width, prefix_len), dtype=torch.bool, device=device), block], 1)
    if not with_prefix:
        return rows
    causal = torch.ones((prefix_len, prefix_len), dtype=torch.bool, device=device).tril()
    top = torch.cat([causal, torch.zeros((prefix_len, width), dtype=torch.bool, device=device)], 1)
    return torch.cat([top, rows], 0)


def _masks(
    model: Any,
    prefix_len: int,
    rows: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    with_prefix: bool,
) -> Any:
    """Additive attention masks (rows, 1, queries, keys) for packed rows of equal width,
    each given as (owner, positions, ancestors): 0 where attention is allowed, the dtype's
    minimum elsewhere (SDPA on CPU runs faster with an additive mask than with a bool one).
    Models with sliding-window layers get one mask per layer type, the windowed one also
    hiding keys `window` or more positions back. Each row's mask is written in place into
    one batch tensor: per-row tensors and their concatenation cost as much again."""
    dtype = next(model.parameters()).dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = torch.float32
    allowed = [
        _allowed(prefix_len, owner[prefix_len:] if with_prefix else owner, ancestors, with_prefix)
        for owner, _, ancestors in rows
    ]
    types = set(_layer_types(model))
    window = getattr(model.config, "sliding_window", None)
    out = {}
    for kind in sorted(types):
        mask = torch.full(
            (len(rows), 1, *allowed[0].shape), torch.finfo(dtype).min, dtype=dtype
        ).to(allowed[0].device)
        for r, ((_, pos, _), ok) in enumerate(zip(rows, allowed, strict=True)):
            if kind == "sliding_attention" and window is not None:
                row_pos = pos[prefix_len:] if with_prefix else pos
                key_pos = torch.cat([torch.arange(prefix_len, device=pos.device), row_pos])
                ok = ok & ((pos.view(-1, 1) - key_pos.view(1, -1)) < window)
            mask[r, 0].masked_fill_(ok, 0.0)
        out[kind] = mask
    return out["full_attention"] if types == {"full_attention"} else out


def _flat(questions: Sequence[Sequence[int]]) -> list[Segment]:
    return [Segment(tuple(q)) for q in questions]


def segment_logits(
    model: Any,
    prefix: Sequence[int],
    segments: Sequence[Segment],
    answer_ids: tuple[int, int],
    cache: Any | None = None,
) -> torch.Tensor:
    """(n_scored, 2) answer logits for the scored segments, packed in one row.

    With `cache` (the note's key/value cache) only the segments are run and the cache is
    cropped back to the note afterwards; without, note and segments run together.
    """
    if cache is not None:
        return row_logits(model, len(prefix), [segments], answer_ids, cache)
    return _answer_head(model, segment_hidden(model, prefix, segments), answer_ids)


def segment_hidden(model: Any, prefix: Sequence[int], segments: Sequence[Segment]) -> torch.Tensor:
    """(n_scored, hidden) final hidden states at the answer positions of the scored
    segments, note and segments run together in one row (with gradients if enabled)."""
    device = model.device
    p = len(prefix)
    q_ids, pos, owner, ancestors, ends = _packed(p, segments, True, device)
    q_ids = torch.cat([torch.tensor(list(prefix), dtype=torch.long, device=device), q_ids])
    mask = _masks(model, p, [(owner, pos, ancestors)], True)
    hidden = model.get_decoder()(
        input_ids=q_ids.unsqueeze(0),
        position_ids=pos.unsqueeze(0),
        attention_mask=mask,
        use_cache=False,
    ).last_hidden_state
    return hidden[0, ends]


def _answer_head(
    model: Any, hidden: torch.Tensor, answer_ids: tuple[int, int] | None
) -> torch.Tensor:
    """Logits in float32 from final hidden states: of the two answer tokens (only two
    rows of the LM head are needed, and a bfloat16 head would round logits of ~20 to
    steps of 0.125, so p(yes) would come in coarse steps, with ties), or of the whole
    vocabulary when `answer_ids` is None."""
    weight = model.get_output_embeddings().weight
    if answer_ids is not None:
        weight = weight[list(answer_ids)]
    logits = hidden.float() @ weight.float().T
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def row_logits(
    model: Any,
    prefix_len: int,
    rows: Sequence[Sequence[Segment]],
    answer_ids: tuple[int, int],
    cache: Any,
) -> torch.Tensor:
    """Answer logits for rows of packed segments that continue a cached note, one row per
    batch entry: the note's cache is repeated over the rows, so a query attends to the
    note and its own row only (packing everything into one row makes every query pay
    attention over all other questions: 2/3 of the time at 2,400 packed tokens).
    Rows are right-padded; padding attends to the note only and is never read."""
    device = model.device
    packed = [_packed(prefix_len, row, False, device) for row in rows]
    width = max(int(x[0].shape[0]) for x in packed)
    ids, pos, mask_rows, picks = [], [], [], []
    for r, (q_ids, q_pos, owner, ancestors, ends) in enumerate(packed):
        pad = width - int(q_ids.shape[0])
        ids.append(torch.cat([q_ids, q_ids.new_zeros(pad)]))
        q_pos = torch.cat([q_pos, q_pos.new_full((pad,), prefix_len)])
        owner = torch.cat([owner, owner.new_full((pad,), -2)])
        pos.append(q_pos)
        mask_rows.append((owner, q_pos, ancestors))
        picks += [(r, int(e)) for e in ends]
    batch = len(rows)
    if batch > 1:
        cache.batch_repeat_interleave(batch)
    try:
        hidden = model.get_decoder()(
            input_ids=torch.stack(ids),
            position_ids=torch.stack(pos),
            attention_mask=_masks(model, prefix_len, mask_rows, False),
            cache=cache,
            use_cache=True,
        ).last_hidden_state
    finally:
        cache.crop(-width)  # drop the rows, keep the note
        if batch > 1:
            cache.batch_select_indices(torch.tensor([0], device=device))
    index = torch.tensor(picks, dtype=torch.long, device=device).view(-1, 2)
    return _answer_head(model, hidden[index[:, 0], index[:, 1]], answer_ids)


def answer_logits(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    answer_ids: tuple[int, int],
    cache: Any | None = None,
) -> torch.Tensor:
    """(n, 2) yes/no logits for flat questions about one note, in one forward pass."""
    return segment_logits(model, prefix, _flat(questions), answer_ids, cache)


def prefix_cache(model: Any, prefix: Sequence[int]) -> Any:
    """Run the note once; return its key/value cache."""
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=model.device)
    return model.get_decoder()(input_ids=ids, use_cache=True).cache


@torch.no_grad()
def score_shared_prefix(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    answer_ids: tuple[int, int],
    batch_size: int = 64,
    row_tokens: int = 256,
) -> list[float]:
    """p(yes) for every question about one note, the note encoded once per note (or once
    per chunk of `batch_size` questions for sliding-window models). A forward pass takes
    `batch_size` questions, packed in rows of about `row_tokens` tokens."""
    if not questions:
        return []
    segments = _flat(questions)
    if has_sliding_window(model):
        out: list[float] = []
        for start in range(0, len(segments), batch_size):
            logits = segment_logits(model, prefix, segments[start : start + batch_size], answer_ids)
            out += _p_yes(logits)
        return out
    rows, order = pack_rows(segments, row_tokens)
    counts = [len(row) for row in rows]

    def fits(start: int, stop: int) -> bool:  # a pass holds at most batch_size questions
        return sum(counts[start:stop]) <= batch_size

    return _score_packed(model, prefix, rows, order, fits, answer_ids)


def _p_yes(logits: torch.Tensor) -> list[float]:
    return torch.softmax(logits, dim=-1)[:, 0].tolist()


def _score_packed(
    model: Any,
    prefix: Sequence[int],
    rows: Sequence[Sequence[Segment]],
    order: Sequence[Sequence[int]],
    fits: Callable[[int, int], bool],
    answer_ids: tuple[int, int],
) -> list[float]:
    """p(yes) of every scored segment, in input order, from rows made by `pack_rows`
    (with their `order`), run over the note's cache in the passes `_passes` cuts."""
    cache = prefix_cache(model, prefix)
    out = [0.0] * sum(len(row_order) for row_order in order)
    for start, stop in _passes(rows, fits):
        logits = row_logits(model, len(prefix), rows[start:stop], answer_ids, cache)
        ranks = [i for row_order in order[start:stop] for i in row_order]
        for index, p in zip(ranks, _p_yes(logits), strict=True):
            out[index] = p
    return out


def _trees(segments: Sequence[Segment]) -> list[list[int]]:
    """Segment indices grouped by tree (a root and its descendants), in order."""
    trees: list[list[int]] = []
    root_of: dict[int, int] = {}
    for i, seg in enumerate(segments):
        if not -1 <= seg.parent < i:
            raise ValueError(f"segment {i} must follow its parent (got parent {seg.parent})")
        if seg.parent < 0:
            root_of[i] = len(trees)
            trees.append([i])
        else:
            root_of[i] = root_of[seg.parent]
            trees[root_of[i]].append(i)
    return trees


def _reindexed(segments: Sequence[Segment], run: Sequence[int]) -> list[Segment]:
    index = {old: new for new, old in enumerate(run)}
    return [
        Segment(
            segments[i].ids,
            -1 if segments[i].parent < 0 else index[segments[i].parent],
            segments[i].scored,
        )
        for i in run
    ]


def pack_rows(
    segments: Sequence[Segment], row_tokens: int
) -> tuple[list[list[Segment]], list[list[int]]]:
    """Whole trees packed into rows by first-fit decreasing, rows returned widest first;
    and for each row, the rank (among the scored segments of `segments`) of each of its
    scored segments, in row order.

    Rows of a pass are padded to the widest, so greedy packing in input order (a tree
    that does not fit opens a new row) left a third of the positions as padding on the
    label trees; first-fit decreasing with a capacity of at least the largest tree fills
    the rows almost evenly, and sorting them by width puts rows of equal width together.
    Rows without a scored segment are dropped (nothing is read from them)."""
    trees = _trees(segments)
    size = [sum(len(segments[i].ids) for i in tree) for tree in trees]
    capacity = max([row_tokens, *size]) if size else row_tokens
    rank, scored = {}, 0
    for i, seg in enumerate(segments):
        if seg.scored:
            rank[i] = scored
            scored += 1
    bins: list[list[int]] = []
    fill: list[int] = []
    for t in sorted(range(len(trees)), key=lambda t: (-size[t], t)):
        spot = next((b for b in range(len(bins)) if fill[b] + size[t] <= capacity), None)
        if spot is None:
            bins.append([])
            fill.append(0)
            spot = len(bins) - 1
        bins[spot].append(t)
        fill[spot] += size[t]
    rows, order = [], []
    for b in sorted(range(len(bins)), key=lambda b: (-fill[b], b)):
        run = [i for t in sorted(bins[b]) for i in trees[t]]
        if any(segments[i].scored for i in run):
            rows.append(_reindexed(segments, run))
            order.append([rank[i] for i in run if segments[i].scored])
    return rows, order


def _passes(
    rows: Sequence[Sequence[Segment]], fits: Callable[[int, int], bool], overhead: int = 32
) -> list[tuple[int, int]]:
    """Cut rows (widest first) into consecutive passes, minimising the positions computed:
    a pass pads its rows to its first (widest) row, so a narrow last row batched with
    wide ones is mostly padding. `fits(start, stop)` says whether rows[start:stop] may
    share a pass (a single row always may); `overhead` is a pass's fixed cost in token
    positions, so that near-equal rows are not split for nothing. Exact by dynamic
    programming over the cut points (tens of rows per note)."""
    widths = [sum(len(seg.ids) for seg in row) for row in rows]
    n = len(rows)
    best = [0] + [None] * n
    cut = [0] * (n + 1)
    for stop in range(1, n + 1):
        for start in range(stop - 1, -1, -1):
            if stop - start > 1 and not fits(start, stop):
                break
            assert best[start] is not None
            cost = best[start] + widths[start] * (stop - start) + overhead
            if best[stop] is None or cost < best[stop]:
                best[stop], cut[stop] = cost, start
    out = []
    stop = n
    while stop > 0:
        out.append((cut[stop], stop))
        stop = cut[stop]
    return out[::-1]


def tree_chunks(segments: Sequence[Segment], max_tokens: int) -> list[list[Segment]]:
    """Cut a segment list into runs of whole trees of at most `max_tokens` tokens (one
    tree may exceed it alone), in order; parents are re-indexed within each run."""
    runs: list[list[int]] = []
    size = 0
    for tree in _trees(segments):
        n = sum(len(segments[i].ids) for i in tree)
        if not runs or size + n > max_tokens:
            runs.append([])
            size = 0
        runs[-1] += tree
        size += n
    return [_reindexed(segments, run) for run in runs]


@torch.no_grad()
def score_tree(
    model: Any,
    prefix: Sequence[int],
    segments: Sequence[Segment],
    answer_ids: tuple[int, int],
    max_tokens: int = 4096,
    row_tokens: int = 640,
) -> list[float]:
    """p(yes) for every scored segment (in order), each seeing the note, its ancestors
    and itself: what it would see as one full prompt. Whole trees are packed in rows of
    about `row_tokens`, and rows batched up to `max_tokens` per forward pass."""
    if not segments:
        return []
    out: list[float] = []
    if has_sliding_window(model):
        for run in tree_chunks(segments, max_tokens):
            if any(seg.scored for seg in run):
                logits = segment_logits(model, prefix, run, answer_ids)
                out += _p_yes(logits)
        return out
    rows, order = pack_rows(segments, row_tokens)
    widths = [sum(len(seg.ids) for seg in row) for row in rows]

    def fits(start: int, stop: int) -> bool:  # a pass holds at most max_tokens positions
        return widths[start] * (stop - start) <= max_tokens

    return _score_packed(model, prefix, rows, order, fits, answer_ids)


def path_ids(segments: Sequence[Segment], index: int) -> list[int]:
    """The tokens a segment continues and its own: the full prompt after the prefix."""
    chain = []
    while index >= 0:
        chain.append(index)
        index = segments[index].parent
    return [t for i in reversed(chain) for t in segments[i].ids]


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
        hidden = model.get_decoder()(input_ids=ids).last_hidden_state[0, -1:]
        logits = _answer_head(model, hidden, answer_ids)[0]
        out.append(float(torch.softmax(logits, dim=-1)[0]))
    return out


LOSSES = ("full_vocab", "yes_no")


def shared_prefix_loss(
    model: Any,
    prefix: Sequence[int],
    questions: Sequence[Sequence[int]],
    labels: Sequence[int],
    answer_ids: tuple[int, int],
    loss: str = "full_vocab",
) -> torch.Tensor:
    """Mean cross-entropy (label 1 = yes) over a note's questions, one pass.

    `full_vocab`: the next-token loss of the correct answer over the whole vocabulary,
    what "we append the correct answer during fine-tuning" is (the default). `yes_no`: a
    2-way loss over the two answer tokens only. Either equals the mean of the questions'
    losses over their full prompts (the note's activations are shared exactly); so does its
    gradient when no dropout is active (dropout masks of one pass are not those of several).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    hidden = segment_hidden(model, prefix, _flat(questions))
    if loss == "yes_no":
        logits = _answer_head(model, hidden, answer_ids)
        target = [0 if y else 1 for y in labels]
    else:
        logits = _answer_head(model, hidden, None)
        target = [answer_ids[0] if y else answer_ids[1] for y in labels]
    target_t = torch.tensor(target, dtype=torch.long, device=model.device)
    return torch.nn.functional.cross_entropy(logits, target_t)
