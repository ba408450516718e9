"""Input checks shared by the estimators."""

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ._training import resolve_device


def check_class_labels(y, estimator_name, min_classes=2, multi_label=False):
    """Validate class targets and return them as a 1-d array (or the indicator matrix).

    Raises a ``ValueError`` naming the problem for continuous targets and
    fewer than ``min_classes`` classes, and for multi-label indicator matrices
    unless ``multi_label`` (then see :func:`check_indicator_matrix`).
    """
    target_type = type_of_target(y)
    if multi_label and getattr(y, "ndim", 1) == 2 and y.shape[1] > 1:
        return check_indicator_matrix(y, target_type, estimator_name)
    if target_type == "multilabel-indicator":
        raise ValueError(
            f"{estimator_name} does not support multi-label y yet (got a "
            f"{y.shape[1]}-column indicator matrix); pass one label per sample."
        )
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    n_classes = len(set(y.tolist()))
    if n_classes < min_classes:
        raise ValueError(
            f"{estimator_name} needs at least {min_classes} classes in y; got "
            f"{n_classes} class."
        )
    return y


def check_indicator_matrix(Y, target_type, estimator_name):
    """Check a multi-label target: binary 0/1 columns, each with both values.

    An attribute with a single value cannot be learnt by a binary head (no
    other class to keep a margin from), so it is refused rather than skipped.
    """
    if target_type != "multilabel-indicator":
        raise ValueError(
            f"{estimator_name} supports multi-label y only as a binary indicator matrix "
            f"(n_samples, n_attributes) of 0 and 1; got a {Y.shape[1]}-column y of type "
            f"{target_type!r}."
        )
    Y = Y.toarray() if issparse(Y) else np.asarray(Y)
    positives = Y.sum(axis=0)
    constant = np.flatnonzero((positives == 0) | (positives == Y.shape[0]))
    if constant.size:
        raise ValueError(
            f"{estimator_name} needs both classes in every attribute of y; attribute(s) "
            f"{constant.tolist()} hold a single class. Drop those columns."
        )
    return Y


def check_cluster_size(cluster_size, class_counts):
    """Refuse a cluster size larger than the largest class.

    Such a size leaves every class a single cluster, which is almost never
    what was meant, so it is reported instead of silently accepted.
    """
    largest = int(max(class_counts))
    if cluster_size > largest:
        raise ValueError(
            f"cluster_size={cluster_size} is larger than the largest class ({largest} "
            "samples): too few samples for the requested clusters, every class would be "
            "one cluster. Use a smaller cluster_size."
        )


def check_device(device, estimator_name):
    """Resolve ``device`` (``"auto"``, a device string or a ``torch.device``).

    The parameter constraints only check the type (any string could name a
    device, e.g. ``"cuda:1"``); this raises the scikit-learn style
    ``InvalidParameterError`` for strings torch does not parse, and a
    ``ValueError`` for CUDA when no GPU is visible, instead of torch's errors.
    """
    try:
        resolved = torch.device(resolve_device(device))
    except (RuntimeError, ValueError) as exc:
        raise InvalidParameterError(
            f"The 'device' parameter of {estimator_name} must be 'auto', 'cpu', 'cuda', "
            f"'cuda:<index>' or a torch.device. Got {device!r} instead."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{estimator_name} got device={device!r} but CUDA is not available; use "
            "device='auto' or 'cpu'."
        )
    return resolved


def check_input_shape(X, estimator_name, expected=None):
    """Shape of one input (``X.shape[1:]``): feature rows or images.

    Accepts 2-D feature matrices, 3-D ``(n, height, width)`` and 4-D
    ``(n, channels, height, width)`` image arrays; with ``expected`` (the
    shape seen in ``fit``), refuses any other shape by name.
    """
    if X.ndim > 4:
        raise ValueError(
            f"{estimator_name} accepts feature rows (n_samples, n_features) or images "
            f"(n_samples, [channels,] height, width); got an array of shape {X.shape}."
        )
    shape = tuple(int(d) for d in X.shape[1:])
    if expected is not None and shape != tuple(expected):
        raise ValueError(
            f"{estimator_name} was fitted on inputs of shape {tuple(expected)} per sample; "
            f"got {shape}."
        )
    return shape
