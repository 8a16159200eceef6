"""Which unlabelled messages to ask about: uncertainty, spread over the base's embedding space.

The score of a message is how unsure the serving model is about it (`uncertainty`); the bot
computes it in the background for every unlabelled message after each promotion. Asking for
the n highest scores alone tends to ask five near-copies of one confusing message, so
`select_for_review` takes the best-scored candidates and picks greedily with maximal marginal
relevance: each pick maximises its score minus `diversity` times its cosine similarity to the
closest message already picked, and a message nearly identical to a pick is never taken.

Cost: one partial sort over all scores (O(N)) plus n x candidates dot products, so selection
for n = 5 among 100k messages takes milliseconds (bench/method/active.py measures it).
"""

from __future__ import annotations

import numpy as np

from camel.errors import CamelError

UNCERTAINTY_KINDS = ("margin", "entropy", "least_confident")
DEFAULT_UNCERTAINTY = "margin"  # chosen by bench/method/active.py (margin vs entropy on BANKING77)
# Weight of the similarity penalty. On BANKING77 batches of 50, 0.1 needed as few labels as pure
# margin (0.25 and 0.5 a few % more), while the duplicate cut-off still keeps copies apart.
DEFAULT_DIVERSITY = 0.1
# Candidates considered for the greedy pick: enough that diversity has room, few enough to be instant.
CANDIDATES_PER_PICK = 10
MIN_CANDIDATES = 200
# Cosine similarity of base embeddings above which two messages count as near-duplicates.
DUPLICATE_SIMILARITY = 0.95


class ReviewError(CamelError):
    """Scores or embeddings given to the review ranking are unusable."""


def uncertainty(probabilities: np.ndarray, kind: str = DEFAULT_UNCERTAINTY) -> np.ndarray:
    """Per-message usefulness in [0, 1] from probabilities [n, labels]; higher = ask sooner.

    margin: 1 - (top1 - top2), high when two labels compete; entropy: entropy / log(labels);
    least_confident: 1 - top1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ReviewError(f"probabilities must be [messages, labels >= 2], got shape {p.shape}")
    if kind == "margin":
        top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return np.asarray(1.0 - (top2[:, 1] - top2[:, 0]), dtype=np.float32)
    if kind == "entropy":
        safe = np.clip(p, 1e-12, 1.0)
        return np.asarray(-(p * np.log(safe)).sum(axis=1) / np.log(p.shape[1]), dtype=np.float32)
    if kind == "least_confident":
        return np.asarray(1.0 - p.max(axis=1), dtype=np.float32)
    raise ReviewError(f"uncertainty kind must be one of {UNCERTAINTY_KINDS}, got {kind!r}")


def select_for_review(
    scores: np.ndarray,
    embeddings: np.ndarray,
    n: int = 5,
    *,
    exclude: np.ndarray | None = None,
    diversity: float = DEFAULT_DIVERSITY,
    candidates: int | None = None,
    duplicate_similarity: float = DUPLICATE_SIMILARITY,
) -> list[int]:
    """Indices of up to n messages to ask about, most useful first.

    scores: [N] usefulness (e.g. `uncertainty(...)`); embeddings: [N, d] pooled base embeddings
    (any scale: they are L2-normalised here, only the candidates' rows); exclude: [N] bool mask
    of messages that must not be asked (labelled, disputed, deleted); diversity: weight of the
    similarity penalty (0 = pure ranking by score); candidates: how many top-scored messages the
    greedy pick looks at (default max(200, 10 n)).
    """
    scores = np.asarray(scores, dtype=np.float64)
    embeddings = np.asarray(embeddings)  # no copy for an array; only the candidates' rows are converted
    if scores.ndim != 1:
        raise ReviewError(f"scores must be one value per message, got shape {scores.shape}")
    if embeddings.ndim != 2 or embeddings.shape[0] != scores.shape[0]:
        raise ReviewError(f"embeddings must be [{scores.shape[0]}, dim], got shape {embeddings.shape}")
    if n < 0 or diversity < 0:
        raise ReviewError(f"n and diversity must be >= 0, got n={n}, diversity={diversity}")
    eligible = np.isfinite(scores)
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != scores.shape:
            raise ReviewError(f"exclude must be a mask of shape {scores.shape}, got {exclude.shape}")
        eligible &= ~exclude
    pool = np.flatnonzero(eligible)
    if n == 0 or len(pool) == 0:
        return []
    wanted = candidates if candidates is not None else max(MIN_CANDIDATES, CANDIDATES_PER_PICK * n)
    if len(pool) > wanted:
        top = np.argpartition(-scores[pool], wanted - 1)[:wanted]
        pool = pool[top]
    pool = pool[np.argsort(-scores[pool], kind="stable")]  # ties: the earlier message first
    vectors = np.asarray(embeddings[pool], dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    relevance = scores[pool].astype(np.float64)
    closest = np.full(len(pool), -np.inf)  # cosine similarity to the nearest pick so far
    available = np.ones(len(pool), dtype=bool)
    picked: list[int] = []
    while len(picked) < n and available.any():
        penalty = np.where(np.isfinite(closest), np.maximum(closest, 0.0), 0.0)
        value = np.where(available, relevance - diversity * penalty, -np.inf)
        best = int(np.argmax(value))
        picked.append(int(pool[best]))
        available[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
        available &= closest < duplicate_similarity
    return picked
