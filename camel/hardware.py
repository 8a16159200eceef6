"""What the CPU does natively, for choices whose speed depends on it.

bfloat16 matmuls halve training time on CPUs with AVX512-BF16 or AMX units, but on a CPU
without them (AVX2 only) PyTorch emulates them: measured on a 2-core AMD EPYC (AVX2), a first
round of 150 labels took 126 s with bfloat16 and 14.9 s in float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Up to this many texts, a prediction runs on one intra-op thread. Two threads split a single
# message's tiny matmuls into pieces smaller than their synchronisation, and wait for each other
# whenever the other core is busy (a training round, another process): measured on the 2-core
# AMD EPYC at load average 14, one cached message took 807 ms with 2 threads and 54 ms with 1.
SMALL_BATCH_TEXTS = 8


def native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


@contextmanager
def threads_for(texts: int) -> Iterator[None]:
    """One intra-op thread in this thread while a batch of at most SMALL_BATCH_TEXTS texts runs.

    torch keeps the count per OS thread once set, so other threads' large batches keep theirs."""
    previous = torch.get_num_threads()
    if texts > SMALL_BATCH_TEXTS or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
