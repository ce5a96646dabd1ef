"""The CPU compute dtype follows the CPU: bf16 only where the CPU computes it natively.

On a CPU without AVX512-BF16 or AMX, torch emulates bf16 matrix products: a
512x576 by 576x1536 product took 15 ms in fp32 and 1,170 ms in bf16 on one AVX2 core, so a
demo set to bf16 ran its LoRA steps at 111 s instead of ~8 s. Where it is native, bf16 is
1.6-1.7x faster than fp32 (`benchmarks/bench_cpu_dtype.py` prints both on any machine).
The decision is taken in the job, on the machine that runs it, and logged there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

NATIVE_BF16 = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 math
# oneDNN ISA caps below which bf16 is emulated even on a CPU that has it
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(flags: Iterable[str], onednn_max_isa: str | None = None) -> str | None:
    """The flag that makes bf16 native here, or None. A oneDNN ISA cap
    (`ONEDNN_MAX_CPU_ISA`) below the bf16 instructions makes it emulated again."""
    found = next((f for f in NATIVE_BF16 if f in set(flags)), None)
    if found and onednn_max_isa:
        cap = onednn_max_isa.upper()
        if cap not in ("ALL", "DEFAULT") and not cap.startswith(_ONEDNN_BF16_ISAS):
            return None
    return found


def choose(requested: str, flags: Iterable[str], onednn_max_isa: str | None = None) -> str:
    """The CPU dtype for a backbone's `cpu_dtype` setting, with the reason in the log:
    `auto` gives bf16 where it is native and fp32 elsewhere; an explicit value wins, with
    a warning when bf16 is forced onto a CPU that emulates it."""
    native = native_bf16(flags, onednn_max_isa)
    if requested == "auto":
        dtype = "bfloat16" if native else "float32"
        if native:
            why = f"the CPU has {native}"
        elif native_bf16(flags):
            why = f"ONEDNN_MAX_CPU_ISA={onednn_max_isa} keeps oneDNN below its bf16 instructions"
        else:
            why = "the CPU has neither avx512_bf16 nor amx_bf16: bf16 would be emulated"
        logging.info("cpu_dtype auto -> %s (%s)", dtype, why)
        return dtype
    if requested == "bfloat16" and not native:
        logging.warning(
            "cpu_dtype bfloat16 is forced on a CPU without native bf16 (no avx512_bf16 or "
            "amx_bf16%s): torch emulates it, and its matrix products run tens of times "
            "slower than float32; set cpu_dtype: auto or float32",
            f"; ONEDNN_MAX_CPU_ISA={onednn_max_isa}" if onednn_max_isa else "",
        )
    else:
        logging.info("cpu_dtype %s (set in the config)", requested)
    return requested


def cpu_dtype_here(requested: str) -> str:
    """`choose` for the machine this process runs on."""
    return choose(requested, cpu_flags(), os.environ.get("ONEDNN_MAX_CPU_ISA"))
