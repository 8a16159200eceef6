"""What the CPU does natively, for choices whose speed depends on it.

bfloat16 matmuls halve training time on CPUs with AVX512-BF16 or AMX units, but on a CPU
without them (AVX2 only) PyTorch emulates them: measured on a 2-core AMD EPYC (AVX2), a first
round of 150 labels took 126 s with bfloat16 and 14.9 s in float32.
"""

from __future__ import annotations

import torch


def native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
