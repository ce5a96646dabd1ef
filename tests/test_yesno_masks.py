"""The packed-row attention masks against their definition, entry by entry.

`cec.llm.yesno` builds its masks with tensor tricks (segment-level gathers, a lower
triangle, one batch tensor); here every (query, key) entry is decided by walking the
segment tree in plain Python, on random trees with padding, with and without the prefix
as queries, and with a sliding window.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from cec.llm.yesno import Segment, _masks, _packed

MIN = torch.finfo(torch.float32).min


class FakeModel:
    """What `_masks` reads of a model: the parameter dtype and the layer types."""

    def __init__(self, layer_types: list[str] | None, window: int | None = None) -> None:
        self.config = SimpleNamespace(layer_types=layer_types, sliding_window=window)

    def parameters(self):  # noqa: ANN201
        yield torch.zeros(1)


def random_tree(rng: random.Random, n: int) -> list[Segment]:
    segments: list[Segment] = []
    for i in range(n):
        parent = -1 if i == 0 or rng.random() < 0.3 else rng.randrange(i)
        length = rng.randint(1, 5)
        segments.append(Segment(tuple(range(length)), parent, rng.random() < 0.5))
    return segments


def reference(
    segments: list[Segment], prefix_len: int, pad: int, with_prefix: bool, window: int | None
) -> torch.Tensor:
    """(queries, keys) bool, decided entry by entry from the definition."""
    owner: list[int] = []
    pos: list[int] = []
    start: dict[int, int] = {}
    for i, seg in enumerate(segments):
        start[i] = (
            prefix_len if seg.parent < 0 else start[seg.parent] + len(segments[seg.parent].ids)
        )
        owner += [i] * len(seg.ids)
        pos += [start[i] + j for j in range(len(seg.ids))]
    owner += [-2] * pad  # padding
    pos += [prefix_len] * pad

    def lineage(i: int) -> set[int]:
        out = set()
        while i >= 0:
            out.add(i)
            i = segments[i].parent
        return out

    queries = ([(-1, p) for p in range(prefix_len)] if with_prefix else []) + list(
        zip(owner, pos, strict=True)
    )
    keys = [(-1, p) for p in range(prefix_len)] + list(zip(owner, pos, strict=True))
    out = torch.zeros((len(queries), len(keys)), dtype=torch.bool)
    row_offset = prefix_len if with_prefix else 0
    for qi, (qo, qp) in enumerate(queries):
        for ki, (ko, kp) in enumerate(keys):
            if ko == -1:  # a prefix key: causal
                ok = kp <= qp
            elif qo < 0 or ko == -2:  # prefix or padding queries see no row token
                ok = False
            else:
                q_row, k_row = qi - row_offset, ki - prefix_len
                ok = ko in lineage(qo) and (ko != qo or k_row <= q_row)
            if window is not None:
                ok = ok and qp - kp < window
            out[qi, ki] = ok
    return out


def _row(segments: list[Segment], prefix_len: int, pad: int, with_prefix: bool):  # noqa: ANN202
    _, pos, owner, ancestors, _ = _packed(prefix_len, segments, with_prefix, torch.device("cpu"))
    if pad:
        pos = torch.cat([pos, pos.new_full((pad,), prefix_len)])
        owner = torch.cat([owner, owner.new_full((pad,), -2)])
    return owner, pos, ancestors


@pytest.mark.parametrize("seed", range(6))
def test_batched_masks_match_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    prefix_len = rng.randint(1, 6)
    rows = [random_tree(rng, rng.randint(1, 6)) for _ in range(3)]
    widths = [sum(len(s.ids) for s in row) for row in rows]
    width = max(widths)
    packed = [_row(row, prefix_len, width - w, False) for row, w in zip(rows, widths, strict=True)]
    mask = _masks(FakeModel(None), prefix_len, packed, False)
    assert mask.shape == (3, 1, width, prefix_len + width)
    for r, (row, w) in enumerate(zip(rows, widths, strict=True)):
        expected = reference(row, prefix_len, width - w, False, None)
        assert torch.equal(mask[r, 0] == 0, expected), (seed, r)
        assert torch.all((mask[r, 0] == 0) | (mask[r, 0] == MIN))


@pytest.mark.parametrize("seed", range(4))
def test_prefix_queries_and_sliding_window_match_the_definition(seed: int) -> None:
    rng = random.Random(100 + seed)
    prefix_len, window = rng.randint(2, 8), rng.randint(2, 6)
    row = random_tree(rng, rng.randint(2, 6))
    model = FakeModel(["sliding_attention", "full_attention"], window)
    masks = _masks(model, prefix_len, [_row(row, prefix_len, 0, True)], True)
    assert set(masks) == {"sliding_attention", "full_attention"}
    full = reference(row, prefix_len, 0, True, None)
    near = reference(row, prefix_len, 0, True, window)
    assert torch.equal(masks["full_attention"][0, 0] == 0, full)
    assert torch.equal(masks["sliding_attention"][0, 0] == 0, near)
    assert not torch.equal(full, near)  # the window hides something: the check can fail
