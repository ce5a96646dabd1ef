"""Row packing of prompt trees and the compute meter that reports what a job paid for."""

from __future__ import annotations

import logging
import random

import pytest

from cec.llm.backbones import load_model
from cec.llm.tiny import build_tiny_model
from cec.llm.token_meter import TokenMeter, log_compute, parse_compute
from cec.llm.yesno import (
    Segment,
    _passes,
    pack_rows,
    score_naive,
    score_shared_prefix,
    tree_chunks,
)


def _forest(rng: random.Random, trees: int) -> list[Segment]:
    """Label-like trees: a trunk (other + first own lines), then question / more-line
    pairs, sizes spread like the demo's CEC trees (about 90-300 tokens)."""
    segments: list[Segment] = []
    for _ in range(trees):
        segments.append(Segment(tuple(range(rng.randint(40, 160))), -1, scored=False))
        parent = len(segments) - 1
        for _ in range(rng.randint(1, 4)):
            segments.append(Segment(tuple(range(rng.randint(20, 40))), parent))
            segments.append(Segment(tuple(range(rng.randint(8, 20))), parent, scored=False))
            parent = len(segments) - 1
    return segments


def _padded_share(rows: list[list[Segment]], per_pass: int) -> float:
    """Positions computed over tokens when rows are batched `per_pass` at a time and
    each batch is padded to its widest row."""
    widths = [sum(len(s.ids) for s in row) for row in rows]
    computed = sum(
        max(widths[i : i + per_pass]) * len(widths[i : i + per_pass])
        for i in range(0, len(widths), per_pass)
    )
    return computed / sum(widths)


def test_packing_keeps_trees_whole_and_maps_every_answer_back() -> None:
    rng = random.Random(3)
    segments = _forest(rng, 60)
    rows, order = pack_rows(segments, 320)
    scored_total = sum(s.scored for s in segments)
    ranks = [i for row in order for i in row]
    assert sorted(ranks) == list(range(scored_total))  # each answer once, none lost
    capacity = max(320, max(sum(len(s.ids) for s in row) for row in rows))
    widths = [sum(len(s.ids) for s in row) for row in rows]
    assert widths == sorted(widths, reverse=True)  # equal widths share a pass
    assert max(widths) <= capacity
    # a tree stays whole and in order: every parent precedes its child in the row
    for row in rows:
        for i, seg in enumerate(row):
            assert -1 <= seg.parent < i
    # the scored segments of a row, read in row order, are the ones `order` names
    scored_ids = [s.ids for s in segments if s.scored]
    for row, row_order in zip(rows, order, strict=True):
        assert [s.ids for s in row if s.scored] == [scored_ids[i] for i in row_order]


def test_first_fit_decreasing_wastes_less_than_packing_in_order() -> None:
    rng = random.Random(5)
    segments = _forest(rng, 50)
    packed, _ = pack_rows(segments, 320)
    in_order = tree_chunks(segments, 320)
    packed_share = _padded_share(packed, 12)
    in_order_share = _padded_share(in_order, 12)
    assert packed_share < 1.1
    assert in_order_share > 1.2  # the old packing: what the test guards against


def _cost(widths: list[int], cuts: list[tuple[int, int]], overhead: int) -> int:
    return sum(widths[a] * (b - a) + overhead for a, b in cuts)


def test_passes_are_the_cheapest_cut_of_the_rows() -> None:
    """Against every way of cutting the rows (brute force over cut points)."""
    rng = random.Random(11)
    for _ in range(40):
        widths = sorted((rng.randint(10, 320) for _ in range(rng.randint(1, 9))), reverse=True)
        rows = [[Segment(tuple(range(w)))] for w in widths]
        limit = rng.randint(300, 1500)

        def fits(a: int, b: int, widths: list[int] = widths, limit: int = limit) -> bool:
            return widths[a] * (b - a) <= limit

        cuts = _passes(rows, fits, overhead=16)
        assert [a for a, _ in cuts] + [len(rows)] == [0] + [b for _, b in cuts]
        assert all(b - a == 1 or fits(a, b) for a, b in cuts)
        n = len(widths)
        best = min(
            _cost(widths, list(zip((0, *inner), (*inner, n), strict=True)), 16)
            for mask in range(2 ** (n - 1))
            for inner in [tuple(i + 1 for i in range(n - 1) if mask >> i & 1)]
            if all(b - a == 1 or fits(a, b) for a, b in zip((0, *inner), (*inner, n), strict=True))
        )
        assert _cost(widths, cuts, 16) == best


def test_a_narrow_last_row_gets_its_own_pass() -> None:
    rows = [[Segment(tuple(range(w)))] for w in (300, 298, 40)]
    assert _passes(rows, lambda a, b: True, overhead=16) == [(0, 2), (2, 3)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    texts = ["the patient has a cough and a fever Yes No question answer"] * 20
    folder = build_tiny_model("llama", tmp_path_factory.mktemp("meter") / "model", texts, seed=2)
    model, tokenizer = load_model(folder)
    return model.eval(), tokenizer


def test_meter_counts_exactly_the_positions_computed(tiny) -> None:  # noqa: ANN001
    model, _ = tiny
    prefix = list(range(5, 45))
    questions = [list(range(50, 60)), list(range(60, 70)), list(range(70, 80))]
    meter = TokenMeter(model)
    # rows of 20 tokens: two questions, then one padded to 20 in the same pass
    probs = score_shared_prefix(model, prefix, questions, (1, 2), batch_size=8, row_tokens=20)
    meter.close()
    assert meter.positions == len(prefix) + 2 * 20
    reference = score_naive(model, prefix, questions, (1, 2))
    assert max(abs(a - b) for a, b in zip(probs, reference, strict=True)) < 1e-5
    # after close() nothing is counted any more
    score_shared_prefix(model, prefix, questions, (1, 2))
    assert meter.positions == len(prefix) + 40


def test_compute_line_round_trips(caplog: pytest.LogCaptureFixture, tiny) -> None:  # noqa: ANN001
    model, _ = tiny
    meter = TokenMeter(model)
    meter.minimum = 70
    score_shared_prefix(model, list(range(5, 45)), [list(range(50, 80))], (1, 2))
    log = logging.getLogger("test.meter")
    with caplog.at_level(logging.INFO, logger="test.meter"):
        log_compute(log, meter.summary("score", "float32", 0.5))
    figures = parse_compute(caplog.records[-1].getMessage())
    assert figures is not None
    assert figures["positions_computed"] == 70 and figures["minimum_tokens"] == 70
    assert figures["positions_per_minimum"] == 1.0 and figures["kind"] == "score"
    assert parse_compute("INFO root: stage-2 predictions: {}") is None
    assert parse_compute("compute: [1, 2]") is None
