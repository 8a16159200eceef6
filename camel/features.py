"""Inputs of a training round: the cached bottom states of every example, batched on demand."""

from __future__ import annotations

from typing import Callable

import torch

from camel.cache import FeatureCache, pad_states
from camel.model import Adapter

EVAL_BATCH = 128


class TrainingFeatures:
    """Bottom states of a round's texts; with K = 0 the pooled vectors are computed only once."""

    def __init__(self, adapter: Adapter, cache: FeatureCache, texts: list[str], bf16: bool = False) -> None:
        self.adapter = adapter
        self.bf16 = bf16
        self.states = cache.states(texts, adapter.split_layer, adapter.config.max_length)
        self.lengths = [int(state.shape[0]) for state in self.states]
        self.pooled: torch.Tensor | None = None
        if len(adapter.blocks) == 0:
            # Nothing trainable sits below the pooling, so each text's pooled vector is fixed.
            self.pooled = pooled_vectors(adapter, self.states)

    def outputs(self, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 (embeddings, logits); with bf16 the matmuls run in bfloat16, weights stay float32."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if self.pooled is not None:
                pooled = self.pooled[batch]
            else:
                pooled = self.adapter.pool(*pad_states([self.states[i] for i in batch]))
            embedding, logits = self.adapter.embed_and_classify(pooled)
        return embedding.float(), logits.float()

    @torch.no_grad()
    def validate(
        self, indices: list[int], targets: list[int], loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> dict[str, float]:
        self.adapter.eval()
        ordered = sorted(indices, key=lambda i: self.lengths[i])
        total_loss, correct = 0.0, 0
        for start in range(0, len(ordered), EVAL_BATCH):
            batch = ordered[start : start + EVAL_BATCH]
            logits = self.outputs(batch)[1]
            gold = torch.tensor([targets[i] for i in batch])
            total_loss += float(loss_fn(logits, gold)) * len(batch)
            correct += int((logits.argmax(dim=-1) == gold).sum())
        return {"val_loss": total_loss / len(ordered), "val_accuracy": correct / len(ordered)}


@torch.no_grad()
def pooled_vectors(adapter: Adapter, states: list[torch.Tensor], bf16: bool = False) -> torch.Tensor:
    """float32 pooled output of the adapter's top blocks for every text, in the given order; with
    bf16 the matmuls run in bfloat16, as in the round's steps (BANKING77's 10k on the 2-core AMD
    EPYC with AVX512-BF16, 1 thread: 8-10 s instead of 22-24 s; lowest cosine to float32 0.99999)."""
    order = sorted(range(len(states)), key=lambda i: states[i].shape[0])
    pooled = torch.empty(len(states), adapter.base.hidden_size)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), EVAL_BATCH):
            chunk = order[start : start + EVAL_BATCH]
            hidden, mask = pad_states([states[i] for i in chunk])
            pooled[chunk] = adapter.pool(hidden, mask).float()
    return pooled
