"""Balanced accuracy on torch tensors, for one label or many, and scorers for model selection."""

import numpy as np
import torch
from sklearn.metrics import make_scorer

__all__ = [
    "attribute_report",
    "attribute_scorer",
    "balanced_accuracy",
    "balanced_accuracy_scorer",
    "mean_balanced_accuracy",
    "mean_balanced_accuracy_scorer",
    "per_attribute_balanced_accuracy",
]


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
    weight = None if sample_weight is None else torch.as_tensor(
        sample_weight, dtype=torch.float64, device=true.device)
    score = _balanced_accuracies(true, pred.unsqueeze(0), n_labels, weight)[0]
    if adjusted:
        present = torch.bincount(true, weights=weight, minlength=n_labels) > 0
        chance = 1.0 / int(present.sum())
        score = (score - chance) / (1 - chance)
    return float(score)


def _balanced_accuracies(true, predictions, n_classes, sample_weight=None):
    """Balanced accuracy of every row of ``predictions`` against ``true``, in one pass.

    ``true`` holds class codes in ``[0, n_classes)`` (shape ``(n_samples,)``)
    and ``predictions`` one row of codes per candidate (shape ``(n_candidates,
    n_samples)``); classes absent from ``true`` are ignored. A model search
    scores dozens of candidates on the same rows: one bincount for all of
    them instead of one call each. Returns a float64 tensor of shape
    ``(n_candidates,)``.
    """
    weight = (torch.ones(true.shape, dtype=torch.float64, device=true.device)
              if sample_weight is None
              else torch.as_tensor(sample_weight, dtype=torch.float64, device=true.device))
    support = torch.bincount(true, weights=weight, minlength=n_classes)
    offsets = torch.arange(len(predictions), device=true.device).unsqueeze(1) * n_classes
    hits = torch.bincount((offsets + true).flatten(),
                          weights=(weight * (predictions == true)).flatten(),
                          minlength=len(predictions) * n_classes).reshape(-1, n_classes)
    present = support > 0
    return (hits[:, present] / support[present]).mean(dim=1)


balanced_accuracy_scorer = make_scorer(balanced_accuracy)
"""Scorer for ``scoring=`` in ``GridSearchCV`` / ``cross_validate``."""


def _indicator_matrix(Y, name):
    # Multi-label targets as (n_samples, n_attributes) indicator tensors;
    # tensors stay on their device, anything else goes through NumPy.
    Y = Y if torch.is_tensor(Y) else torch.as_tensor(np.asarray(Y))
    if Y.ndim != 2:
        raise ValueError(f"{name} must be a 2-D indicator matrix (n_samples, n_attributes); "
                         f"got an array of shape {tuple(Y.shape)}.")
    if Y.is_floating_point() and not torch.isfinite(Y).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if not torch.isin(Y, torch.tensor([0, 1], device=Y.device)).all():
        raise ValueError(f"{name} must hold only 0 and 1 (one binary attribute per column).")
    return Y.bool()


def per_attribute_balanced_accuracy(Y_true, Y_pred):
    """Balanced accuracy of every binary attribute (column), computed with torch.

    Column ``a`` scores ``(recall of positives + recall of negatives) / 2``,
    as :func:`sklearn.metrics.balanced_accuracy_score` on that column; a
    column whose true values hold one class only scores that class's recall.

    Parameters
    ----------
    Y_true, Y_pred : array-like or Tensor of shape (n_samples, n_attributes)
        Binary indicator matrices.

    Returns
    -------
    ndarray of shape (n_attributes,)

    Examples
    --------
    >>> from sklearn_clmle.metrics import per_attribute_balanced_accuracy
    >>> per_attribute_balanced_accuracy([[1, 0], [0, 0], [0, 1]],
    ...                                 [[1, 0], [1, 0], [0, 1]]).tolist()
    [0.75, 1.0]
    """
    true, pred = _indicator_matrix(Y_true, "Y_true"), _indicator_matrix(Y_pred, "Y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"Y_true and Y_pred have different shapes: {tuple(true.shape)} and "
                         f"{tuple(pred.shape)}.")
    if true.shape[0] == 0:
        raise ValueError("per_attribute_balanced_accuracy needs at least one sample.")
    pred = pred.to(true.device)
    positives = true.sum(dim=0, dtype=torch.float64)
    negatives = true.shape[0] - positives
    hits_pos = (true & pred).sum(dim=0, dtype=torch.float64)
    hits_neg = (~true & ~pred).sum(dim=0, dtype=torch.float64)
    recalls = torch.stack([hits_pos / positives.clamp_min(1), hits_neg / negatives.clamp_min(1)])
    present = torch.stack([positives > 0, negatives > 0])
    score = (recalls * present).sum(dim=0) / present.sum(dim=0)
    return score.cpu().numpy()


def mean_balanced_accuracy(Y_true, Y_pred):
    """Mean over attributes of the per-attribute balanced accuracy (Sec. 5.3).

    The paper's metric for imbalanced face attributes: every attribute, and
    within it both classes, count equally.

    Parameters
    ----------
    Y_true, Y_pred : array-like or Tensor of shape (n_samples, n_attributes)
        Binary indicator matrices.

    Returns
    -------
    float

    See Also
    --------
    per_attribute_balanced_accuracy : The per-attribute values.
    attribute_report : The values sorted by imbalance level, as Table 5.

    Examples
    --------
    >>> from sklearn_clmle.metrics import mean_balanced_accuracy
    >>> mean_balanced_accuracy([[1, 0], [0, 0], [0, 1]], [[1, 0], [1, 0], [0, 1]])
    0.875
    """
    return float(per_attribute_balanced_accuracy(Y_true, Y_pred).mean())


mean_balanced_accuracy_scorer = make_scorer(mean_balanced_accuracy)
"""Scorer of :func:`mean_balanced_accuracy` for ``scoring=`` in ``GridSearchCV``."""


def attribute_report(Y_true, Y_pred, *, attribute_names=None, Y_reference=None,
                     output_dict=False, digits=3):
    """Per-attribute balanced accuracy sorted by imbalance level, as Table 5.

    The imbalance level of an attribute is ``|positive rate - 50|`` in
    percent; the paper lists attributes from the most balanced to the most
    imbalanced to show how each method copes as imbalance grows.

    Parameters
    ----------
    Y_true, Y_pred : array-like of shape (n_samples, n_attributes)
        Binary indicator matrices.
    attribute_names : sequence of str, default=None
        Column names; ``None`` uses ``"attribute 0"``, ``"attribute 1"``, ...
    Y_reference : array-like of shape (n_reference, n_attributes), default=None
        Labels whose positive rates define the imbalance levels, e.g. the
        training labels (the test set may be sampled differently); ``None``
        uses ``Y_true``.
    output_dict : bool, default=False
        Return a dict of lists instead of a text table.
    digits : int, default=3
        Decimals of the text table.

    Returns
    -------
    str or dict
        The table; or a dict with keys ``"attribute"``, ``"positive_rate"``,
        ``"imbalance_level"``, ``"balanced_accuracy"`` (lists in table order)
        and ``"mean_balanced_accuracy"``.

    Examples
    --------
    >>> from sklearn_clmle.metrics import attribute_report
    >>> report = attribute_report([[1, 0], [0, 0], [0, 1], [1, 0]],
    ...                           [[1, 1], [1, 0], [0, 1], [1, 0]],
    ...                           attribute_names=["smiling", "bald"], output_dict=True)
    >>> report["attribute"], report["imbalance_level"]
    (['smiling', 'bald'], [0.0, 25.0])
    """
    scores = per_attribute_balanced_accuracy(Y_true, Y_pred)
    reference = _indicator_matrix(Y_true if Y_reference is None else Y_reference,
                                  "Y_reference")
    if reference.shape[1] != len(scores):
        raise ValueError(f"Y_reference has {reference.shape[1]} attributes; Y_true has "
                         f"{len(scores)}.")
    names = ([f"attribute {a}" for a in range(len(scores))] if attribute_names is None
             else [str(name) for name in attribute_names])
    if len(names) != len(scores):
        raise ValueError(f"{len(names)} attribute_names for {len(scores)} attributes.")
    rate = reference.double().mean(dim=0).cpu().numpy()
    level = np.abs(100 * rate - 50)
    order = np.argsort(level, kind="stable")
    report = {"attribute": [names[a] for a in order],
              "positive_rate": rate[order].tolist(),
              "imbalance_level": level[order].tolist(),
              "balanced_accuracy": scores[order].tolist(),
              "mean_balanced_accuracy": float(scores.mean())}
    if output_dict:
        return report
    width = max(len("attribute"), *map(len, names))
    lines = [f"{'attribute':<{width}}  {'positive %':>10}  {'imbalance':>9}  "
             f"{'balanced accuracy':>17}"]
    lines += [f"{n:<{width}}  {100 * r:10.1f}  {lv:9.1f}  {s:17.{digits}f}"
              for n, r, lv, s in zip(*(report[k] for k in (
                  "attribute", "positive_rate", "imbalance_level", "balanced_accuracy")))]
    lines.append(f"{'mean':<{width}}  {'':>10}  {'':>9}  "
                 f"{report['mean_balanced_accuracy']:17.{digits}f}")
    return "\n".join(lines)


def attribute_scorer(attribute_names=None):
    """A multi-metric scorer: the mean and every attribute's balanced accuracy.

    For ``GridSearchCV(scoring=attribute_scorer(names), refit="mean")``: the
    search ranks by the mean and keeps every attribute's score per candidate
    in ``cv_results_`` (``mean_test_<name>``).

    Parameters
    ----------
    attribute_names : sequence of str, default=None
        Keys of the per-attribute scores; ``None`` uses ``"attribute_0"``, ...

    Returns
    -------
    callable
        ``scorer(estimator, X, Y) -> dict`` with key ``"mean"`` and one key
        per attribute.
    """
    def scorer(estimator, X, Y):
        scores = per_attribute_balanced_accuracy(Y, estimator.predict(X))
        names = (attribute_names if attribute_names is not None
                 else [f"attribute_{a}" for a in range(len(scores))])
        if len(names) != len(scores):
            raise ValueError(f"{len(names)} attribute_names for {len(scores)} attributes.")
        return {"mean": float(scores.mean()),
                **{str(name): float(s) for name, s in zip(names, scores)}}

    return scorer
