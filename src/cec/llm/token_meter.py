"""What an LLM job paid for: token positions its decoder computed and time spent in it.

Each LLM job logs one `compute:` line (JSON) with the positions its decoder computed
(padding included), the minimum it needed (each note once plus each question or prompt
segment once, per training step for training), the seconds inside the model and the
dtype and thread count it ran with. `benchmarks/bench_demo_rules.py` reads these lines
from a finished run's logs and sets them against a plain causal forward on the same
machine, so the efficiency of every rule of a real run can be checked after the fact
without re-running it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

COMPUTE_PREFIX = "compute: "


def _decoder(model: Any) -> Any:
    """The decoder stack under a (possibly PEFT-wrapped) causal LM."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()


class TokenMeter:
    """Counts the token positions (batch x width) of every decoder forward and the time
    inside it, from hooks: the code under measurement is not changed."""

    def __init__(self, model: Any) -> None:
        self.positions = 0
        self.forward_seconds = 0.0
        self.minimum = 0
        self._start = 0.0
        decoder = _decoder(model)
        self._handles = [
            decoder.register_forward_pre_hook(self._pre, with_kwargs=True),
            decoder.register_forward_hook(self._post),
        ]

    def _pre(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        if ids is not None:
            self.positions += int(ids.shape[0]) * int(ids.shape[1])
        self._start = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self.forward_seconds += time.perf_counter() - self._start

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    def summary(self, kind: str, dtype: str, seconds: float) -> dict[str, Any]:
        """`seconds`: the job's time in its model loop (forward, backward and optimizer
        for training), without start-up and loading."""
        import torch

        return {
            "kind": kind,  # train | score
            "dtype": dtype,
            "threads": torch.get_num_threads(),
            "positions_computed": self.positions,
            "minimum_tokens": self.minimum,
            "positions_per_minimum": round(self.positions / self.minimum, 4)
            if self.minimum
            else None,
            "forward_seconds": round(self.forward_seconds, 2),
            "loop_seconds": round(seconds, 2),
        }


def model_dtype(model: Any) -> str:
    """The dtype the model's weights compute in, as a config string ("bfloat16")."""
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def log_compute(log: logging.Logger, figures: dict[str, Any]) -> None:
    log.info("%s%s", COMPUTE_PREFIX, json.dumps(figures, sort_keys=True))


def parse_compute(line: str) -> dict[str, Any] | None:
    """The figures of a `compute:` log line, or None for any other line."""
    at = line.find(COMPUTE_PREFIX)
    if at < 0:
        return None
    try:
        figures = json.loads(line[at + len(COMPUTE_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return figures if isinstance(figures, dict) else None
