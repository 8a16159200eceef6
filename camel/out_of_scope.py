"""Out of scope: how strongly a message looks like none of the task's labels, and what the bot says.

Scores, all "higher = more likely out of scope":
- `max_probability_score`: 1 - the largest calibrated probability of an in-scope label. When the
  task declares an explicit out-of-scope label, its probability mass counts against every
  in-scope label, so labelled out-of-scope examples sharpen the same score.
- `centroid_score`: 1 - cosine similarity of the base embedding to the nearest class centroid.
- `nearest_neighbour_score`: 1 - cosine similarity to the nearest in-scope training message.
- "combined": the sum of the max-probability and nearest-neighbour scores, each standardised
  on the held-out in-scope messages. On BANKING77 (50 intents in scope, 27 out) it has the best
  AUROC of these (bench/results/active.md), so it is the default.

`fit_out_of_scope` sets the detector's threshold from held-out in-scope messages only (a task
rarely has out-of-scope labels): the score quantile that turns away `max_inscope_rejection` of
them. `decide` turns calibrated probabilities into what the bot says: a label, "not one of mine"
(the explicit out-of-scope label wins, or the detector fires), or abstain (no in-scope label
reaches the calibrated threshold). For out-of-scope recall, both of the last two count as not
forcing a label. Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from dataclasses import replace as dataclasses_replace
from typing import Any, Literal

import numpy as np

from camel.errors import CamelError

Outcome = Literal["label", "out_of_scope", "abstain"]
# The detector's file in an adapter folder, next to the calibration's and under the manifest.
OUT_OF_SCOPE_FILE = "out_of_scope.json"
METHODS = ("max_probability", "nearest_neighbour", "combined")
DEFAULT_METHOD = "combined"
# Share of in-scope messages the detector may turn away; on BANKING77 this keeps in-scope
# accuracy (abstentions as errors) near 85 % (bench/results/active.md).
DEFAULT_MAX_INSCOPE_REJECTION = 0.1
MIN_EXAMPLES = 40  # held-out in-scope messages needed to place the detector's threshold


class OutOfScopeError(CamelError):
    """Probabilities, embeddings or labels given to out-of-scope scoring are unusable."""


@dataclass(frozen=True)
class Decision:
    """What the bot says about one message.

    outcome: "label" (state `label_index`), "out_of_scope" (the task's out-of-scope label is the
    most probable one: say "not one of mine") or "abstain" (below the calibrated threshold).
    label_index: the most probable in-scope label (also for abstentions, for the top-3 menu).
    confidence: its calibrated probability.
    """

    outcome: Outcome
    label_index: int
    confidence: float


@dataclass(frozen=True)
class OutOfScopeDetector:
    """Where a message counts as "none of my labels" (JSON-serialisable, stored next to the calibration).

    method: which score (see METHODS); threshold: score >= threshold -> out of scope (inf = off);
    max_inscope_rejection: share of held-out in-scope messages the threshold turns away;
    *_mean / *_std: standardisation of the two scores on held-out in-scope messages ("combined");
    fitted_on_n: held-out in-scope messages used; status: "fitted", "too_few_examples" or "off".
    """

    method: str
    threshold: float
    max_inscope_rejection: float
    probability_mean: float
    probability_std: float
    neighbour_mean: float
    neighbour_std: float
    fitted_on_n: int
    status: str

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OutOfScopeError(f"out-of-scope method must be one of {METHODS}, got {self.method!r}")
        if self.status not in ("fitted", "too_few_examples", "off"):
            raise OutOfScopeError(f"out-of-scope status must be fitted, too_few_examples or off, got {self.status!r}")
        if not 0.0 <= self.max_inscope_rejection < 1.0:
            raise OutOfScopeError(f"max_inscope_rejection must be in [0, 1), got {self.max_inscope_rejection!r}")

    @classmethod
    def off(cls, method: str = DEFAULT_METHOD) -> "OutOfScopeDetector":
        return cls(
            method=method,
            threshold=math.inf,
            max_inscope_rejection=0.0,
            probability_mean=0.0,
            probability_std=1.0,
            neighbour_mean=0.0,
            neighbour_std=1.0,
            fitted_on_n=0,
            status="off",
        )

    def score(self, probability_score: np.ndarray, neighbour_score: np.ndarray | None = None) -> np.ndarray:
        """The detector's score from `max_probability_score` and `nearest_neighbour_score` values."""
        probability = np.asarray(probability_score, dtype=np.float64)
        if self.method == "max_probability":
            return probability
        if neighbour_score is None:
            raise OutOfScopeError(f"the {self.method} out-of-scope score needs nearest-neighbour distances")
        neighbour = np.asarray(neighbour_score, dtype=np.float64)
        if self.method == "nearest_neighbour":
            return neighbour
        return (probability - self.probability_mean) / self.probability_std + (
            neighbour - self.neighbour_mean
        ) / self.neighbour_std

    def flags(self, probability_score: np.ndarray, neighbour_score: np.ndarray | None = None) -> np.ndarray:
        """[n] True where the message is out of scope by this detector."""
        if self.status != "fitted":
            return np.zeros(len(np.asarray(probability_score)), dtype=bool)
        return self.score(probability_score, neighbour_score) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["threshold"] = None if math.isinf(self.threshold) else self.threshold  # JSON has no inf
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OutOfScopeDetector":
        if not isinstance(data, dict):
            raise OutOfScopeError("a stored out-of-scope detector must be a JSON object")
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise OutOfScopeError(f"stored out-of-scope detector has fields {sorted(data)}, expected {sorted(names)}")
        values = dict(data)
        values["threshold"] = math.inf if values["threshold"] is None else float(values["threshold"])
        return cls(**values)


def fit_out_of_scope(
    probability_score: np.ndarray,
    neighbour_score: np.ndarray | None = None,
    *,
    method: str = DEFAULT_METHOD,
    max_inscope_rejection: float = DEFAULT_MAX_INSCOPE_REJECTION,
    min_examples: int = MIN_EXAMPLES,
) -> OutOfScopeDetector:
    """A detector from the scores of held-out IN-SCOPE messages (drop held-out out-of-scope ones first).

    The threshold is the (1 - max_inscope_rejection) quantile of the held-out scores, so about
    that share of in-scope messages is turned away. max_inscope_rejection = 0 switches it off.
    """
    if method not in METHODS:
        raise OutOfScopeError(f"out-of-scope method must be one of {METHODS}, got {method!r}")
    if not 0.0 <= max_inscope_rejection < 1.0:
        raise OutOfScopeError(f"max_inscope_rejection must be in [0, 1), got {max_inscope_rejection!r}")
    probability = np.asarray(probability_score, dtype=np.float64)
    if method != "max_probability":
        if neighbour_score is None or np.asarray(neighbour_score).shape != probability.shape:
            raise OutOfScopeError(f"the {method} out-of-scope score needs one nearest-neighbour distance per message")
    if max_inscope_rejection == 0.0:
        return OutOfScopeDetector.off(method)
    if len(probability) < min_examples:
        return dataclasses_replace(
            OutOfScopeDetector.off(method),
            fitted_on_n=len(probability),
            status="too_few_examples",
            max_inscope_rejection=max_inscope_rejection,
        )
    neighbour = np.asarray(neighbour_score if neighbour_score is not None else probability, dtype=np.float64)
    unscaled = OutOfScopeDetector(
        method=method,
        threshold=math.inf,
        max_inscope_rejection=max_inscope_rejection,
        probability_mean=float(probability.mean()),
        probability_std=float(max(probability.std(), 1e-9)),
        neighbour_mean=float(neighbour.mean()),
        neighbour_std=float(max(neighbour.std(), 1e-9)),
        fitted_on_n=len(probability),
        status="fitted",
    )
    scores = unscaled.score(probability, neighbour)
    threshold = float(np.quantile(scores, 1.0 - max_inscope_rejection, method="higher"))
    return dataclasses_replace(unscaled, threshold=threshold)


def nearest_neighbour_score(embeddings: np.ndarray, reference: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """[n] 1 - cosine similarity to the nearest row of `reference` (the in-scope training messages'
    base embeddings; leave out messages labelled out of scope)."""
    vectors, known = _normalised(embeddings), _normalised(reference)
    if known.shape[0] == 0 or known.shape[1] != vectors.shape[1]:
        raise OutOfScopeError(f"reference must be [messages >= 1, {vectors.shape[1]}], got shape {known.shape}")
    best = np.empty(len(vectors))
    for start in range(0, len(vectors), chunk):  # bounded memory for large message sets
        best[start : start + chunk] = (vectors[start : start + chunk] @ known.T).max(axis=1)
    return np.asarray(1.0 - best)


def max_probability_score(probabilities: np.ndarray, out_of_scope_index: int | None = None) -> np.ndarray:
    """[n] 1 - the largest in-scope probability (calibrated probabilities [n, labels])."""
    p = _probabilities(probabilities, out_of_scope_index)
    return np.asarray(1.0 - _in_scope(p, out_of_scope_index).max(axis=1), dtype=np.float64)


def class_centroids(embeddings: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """[n_labels, d] L2-normalised mean of each label's normalised embeddings (zero rows for unseen labels)."""
    vectors = _normalised(embeddings)
    labels = np.asarray(labels)
    if labels.shape != (vectors.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise OutOfScopeError(f"labels must be {vectors.shape[0]} integer indices, got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_labels):
        raise OutOfScopeError(f"labels must be in [0, {n_labels})")
    sums = np.zeros((n_labels, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, vectors)
    return _normalised(sums)


def centroid_score(embeddings: np.ndarray, centroids: np.ndarray, out_of_scope_index: int | None = None) -> np.ndarray:
    """[n] 1 - cosine similarity to the nearest in-scope centroid (the out-of-scope label's is skipped)."""
    vectors = _normalised(embeddings)
    if centroids.ndim != 2 or centroids.shape[1] != vectors.shape[1]:
        raise OutOfScopeError(f"centroids must be [labels, {vectors.shape[1]}], got shape {centroids.shape}")
    similarity = vectors @ np.asarray(centroids, dtype=np.float64).T
    similarity[:, np.linalg.norm(centroids, axis=1) == 0] = -1.0  # labels without examples
    if out_of_scope_index is not None:
        similarity[:, out_of_scope_index] = -1.0
    return np.asarray(1.0 - similarity.max(axis=1), dtype=np.float64)


def decide(
    probabilities: np.ndarray,
    threshold: float,
    out_of_scope_index: int | None = None,
    out_of_scope: np.ndarray | None = None,
) -> list[Decision]:
    """One Decision per row of calibrated probabilities [n, labels] at a calibrated threshold;
    `out_of_scope` ([n] bool, e.g. `detector.flags(...)`) marks messages a detector turned away."""
    p = _probabilities(probabilities, out_of_scope_index)
    in_scope = _in_scope(p, out_of_scope_index)
    best = in_scope.argmax(axis=1)
    confidence = in_scope[np.arange(len(p)), best]
    top = p.argmax(axis=1)
    if out_of_scope is not None and np.asarray(out_of_scope).shape != (len(p),):
        raise OutOfScopeError(f"out_of_scope must be one flag per message ({len(p)})")
    decisions = []
    for row in range(len(p)):
        if (out_of_scope_index is not None and top[row] == out_of_scope_index) or (
            out_of_scope is not None and out_of_scope[row]
        ):
            outcome: Outcome = "out_of_scope"
        elif confidence[row] < threshold:
            outcome = "abstain"
        else:
            outcome = "label"
        decisions.append(Decision(outcome=outcome, label_index=int(best[row]), confidence=float(confidence[row])))
    return decisions


def _in_scope(p: np.ndarray, out_of_scope_index: int | None) -> np.ndarray:
    if out_of_scope_index is None:
        return p
    masked = p.copy()
    masked[:, out_of_scope_index] = -np.inf
    return masked


def _probabilities(probabilities: np.ndarray, out_of_scope_index: int | None) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise OutOfScopeError(f"probabilities must be [messages, labels >= 2], got shape {p.shape}")
    if out_of_scope_index is not None and not 0 <= out_of_scope_index < p.shape[1]:
        raise OutOfScopeError(f"out_of_scope_index {out_of_scope_index} outside [0, {p.shape[1]})")
    return p


def _normalised(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2:
        raise OutOfScopeError(f"embeddings must be [messages, dim], got shape {v.shape}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v / np.where(norms == 0, 1.0, norms))
