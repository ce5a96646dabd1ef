"""The CPU dtype follows the CPU (cec.llm.cpu_dtype): the capability is injected, so the
decision is tested for both kinds of CPU on any machine."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cec.llm.backbones import Backbone
from cec.llm.cpu_dtype import choose, cpu_flags

AVX2_ONLY = {"sse4_2", "avx", "avx2", "fma"}
ZEN4 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512_bf16", "avx512_vnni"}
SAPPHIRE_RAPIDS = AVX2_ONLY | {"avx512f", "amx_tile", "amx_bf16"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (AVX2_ONLY, "float32"),
        (ZEN4, "bfloat16"),
        (SAPPHIRE_RAPIDS, "bfloat16"),
        (set(), "float32"),
    ],  # fmt: skip
)
def test_auto_takes_bf16_only_where_it_is_native(flags: set[str], expected: str, caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.INFO):
        assert choose("auto", flags) == expected
    assert f"cpu_dtype auto -> {expected}" in caplog.text  # the job log says which, and why


def test_a_onednn_cap_below_bf16_makes_it_emulated(caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.INFO):
        assert choose("auto", ZEN4, onednn_max_isa="AVX2") == "float32"
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in caplog.text
    assert choose("auto", ZEN4, onednn_max_isa="AVX512_CORE_BF16") == "bfloat16"
    assert choose("auto", ZEN4, onednn_max_isa="ALL") == "bfloat16"


def test_an_explicit_value_wins_with_a_warning_where_bf16_is_emulated(caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.INFO):
        assert choose("bfloat16", AVX2_ONLY) == "bfloat16"
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "emulates" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert choose("bfloat16", ZEN4) == "bfloat16"
        assert choose("float32", ZEN4) == "float32"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\nbugs\t\t: none\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_auto_is_the_default_and_unknown_values_are_refused() -> None:
    assert Backbone.from_config("b", {"source": "tiny", "arch": "llama"}).cpu_dtype == "auto"
    with pytest.raises(ValueError, match="cpu_dtype must be one of"):
        Backbone.from_config("b", {"source": "tiny", "arch": "llama", "cpu_dtype": "bf16"})
