"""Closed-form starts for a fresh head: a logistic-regression probe on the pooled features, plus
the label-name prior (linear probe, then fine-tune: the blocks never see a random head's gradients)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

PROBE_MAX_ITER = 1000


def fit_probe(features: torch.Tensor, targets: list[int], n_labels: int, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [n_labels, hidden], bias [n_labels]) of a multinomial logistic regression.

    lbfgs on a fixed problem is deterministic, so the same data gives the same head. A label
    with no example here (a continuation that keeps old labels) gets a zero row and the lowest
    bias, so it is never predicted by the probe alone.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = features.detach().float().numpy().astype(np.float64)
    y = np.asarray(targets)
    present = np.unique(y)
    weight = torch.zeros(n_labels, x.shape[1])
    bias = torch.zeros(n_labels)
    if len(present) < 2:
        return weight, bias
    # The fit's matrix products run in numpy's BLAS, whose own thread pool takes every core unless
    # told otherwise: it gets the round's torch thread count (TrainingArgs.num_threads). Its idle
    # threads spin, so a pool wider than the round's cores lost to any other process on them
    # (2-core AMD EPYC at load 9: 44.7 s with 2 BLAS threads, 3.7 s with 1).
    with warnings.catch_warnings(), threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # the head is fine-tuned afterwards anyway
        model = LogisticRegression(C=c, max_iter=PROBE_MAX_ITER).fit(x, y)
    coef, intercept = torch.from_numpy(model.coef_).float(), torch.from_numpy(model.intercept_).float()
    if len(present) == 2:  # sklearn's binary form: one row for the positive class
        coef = torch.stack([-coef[0] / 2, coef[0] / 2])
        intercept = torch.stack([-intercept[0] / 2, intercept[0] / 2])
    rows = torch.as_tensor(model.classes_, dtype=torch.long)
    weight[rows] = coef
    bias[rows] = intercept
    missing = [i for i in range(n_labels) if i not in set(model.classes_.tolist())]
    if missing:
        bias[missing] = float(intercept.min()) - 1.0
    return weight, bias


def prior_weight_for(weight: float, decay: float, examples_per_label: float) -> float:
    """The label-name prior's weight: strong with a handful of examples per label, fading with more."""
    return weight / (1.0 + decay * examples_per_label)
