"""Balanced accuracy on torch tensors and a scorer for model selection."""

import numpy as np
import torch
from sklearn.metrics import make_scorer

__all__ = ["balanced_accuracy", "balanced_accuracy_scorer"]


def _as_codes(y_true, y_pred):
    # Integer codes on a common label set; tensors stay on their device.
    if torch.is_tensor(y_true) and torch.is_tensor(y_pred):
        labels, codes = torch.unique(torch.cat([y_true.flatten(), y_pred.flatten()]),
                                     return_inverse=True)
        return codes[: y_true.numel()], codes[y_true.numel():], labels.numel()
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    codes = torch.from_numpy(codes.astype(np.int64))
    return codes[: len(y_true)], codes[len(y_true):], len(labels)


def balanced_accuracy(y_true, y_pred, *, sample_weight=None, adjusted=False):
    """Mean per-class recall, computed with torch (on the inputs' device).

    Equal to :func:`sklearn.metrics.balanced_accuracy_score`: classes absent
    from ``y_true`` are ignored.

    Parameters
    ----------
    y_true, y_pred : array-like or Tensor of shape (n_samples,)
        True and predicted labels, of any comparable type.
    sample_weight : array-like or Tensor of shape (n_samples,), default=None
        Sample weights.
    adjusted : bool, default=False
        Rescale so that chance scores 0 and perfect scores 1.

    Returns
    -------
    float
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred have different lengths: {len(y_true)} and "
                         f"{len(y_pred)}.")
    if len(y_true) == 0:
        raise ValueError("balanced_accuracy needs at least one sample.")
    true, pred, n_labels = _as_codes(y_true, y_pred)
    weight = (torch.ones(true.shape, dtype=torch.float64, device=true.device)
              if sample_weight is None
              else torch.as_tensor(sample_weight, dtype=torch.float64, device=true.device))
    support = torch.bincount(true, weights=weight, minlength=n_labels)
    hits = torch.bincount(true, weights=weight * (true == pred), minlength=n_labels)
    present = support > 0
    score = (hits[present] / support[present]).mean()
    if adjusted:
        chance = 1.0 / int(present.sum())
        score = (score - chance) / (1 - chance)
    return float(score)


balanced_accuracy_scorer = make_scorer(balanced_accuracy)
"""Scorer for ``scoring=`` in ``GridSearchCV`` / ``cross_validate``."""
