"""Input checks shared by the estimators."""

import inspect
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from scipy.sparse import issparse
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import BatchScoring, Checkpoint, EarlyStopping, EpochScoring, LRScheduler
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, column_or_1d

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


def stratified_hold_out(class_codes, fraction, rng, estimator_name):
    """Indices ``(train, valid)``: a stratified ``fraction`` of the classes large enough.

    A class gives samples to validation only when it has at least two and
    ``fraction`` of it is at least one sample; smaller classes stay whole in
    training. The split of the other classes is scikit-learn's stratified
    ``train_test_split``.
    """
    counts = np.bincount(class_codes)
    eligible = (counts >= 2) & (counts * fraction >= 1)
    pool = np.flatnonzero(eligible[class_codes])
    if not eligible.any() or round(len(pool) * fraction) < 1:
        raise ValueError(
            f"validation_fraction={fraction} holds out no sample: only classes of at least "
            f"max(2, 1 / validation_fraction) = {max(2, int(np.ceil(1 / fraction)))} samples "
            "give samples to validation, and none is that large. Use a larger "
            "validation_fraction or leave it None."
        )
    seed = rng.randint(np.iinfo(np.int32).max)
    train, valid = train_test_split(pool, test_size=fraction, stratify=class_codes[pool],
                                    random_state=seed)
    train = np.sort(np.concatenate([train, np.flatnonzero(~eligible[class_codes])]))
    return train, np.sort(valid)


def _monitored_key(callback):
    """The history key a callback reads every epoch, or None.

    Early stopping and checkpoints read ``monitor``; a learning-rate
    scheduler only with ``ReduceLROnPlateau`` (other policies carry the
    attribute unused).
    """
    if isinstance(callback, (EarlyStopping, Checkpoint)):
        return callback.monitor
    if isinstance(callback, LRScheduler):
        policy = callback.policy
        name = policy if isinstance(policy, str) else getattr(policy, "__name__", "")
        return callback.monitor if name == "ReduceLROnPlateau" else None
    return None


def check_callbacks(callbacks, monitorable, estimator_name):
    """Refuse skorch callbacks that cannot work in this training.

    ``monitorable`` is ``(keys, reason)``: the history keys the embedder
    records each epoch, and why others are missing or meaningless. Scoring
    callbacks need skorch's validation iterator, which this training has not.
    """
    keys, reason = monitorable
    for callback in callbacks or []:
        callback = callback[1] if isinstance(callback, tuple) else callback
        kind = type(callback).__name__
        if isinstance(callback, (EpochScoring, BatchScoring)):
            has_validation = "valid_bacc" in keys or "validation_fraction" in reason
            raise ValueError(
                f"{estimator_name} cannot run skorch's {kind}: its training has no skorch "
                "validation iterator and its network outputs embeddings, not class scores. "
                + ("Set validation_fraction, which records 'valid_bacc' every epoch, or "
                   "score" if has_validation else "Score")
                + " the fitted embedder with scikit-learn (cross_val_score) instead."
            )
        monitor = _monitored_key(callback)
        if isinstance(monitor, str) and monitor not in keys:
            raise ValueError(f"{estimator_name} cannot run {kind}(monitor={monitor!r}): "
                             f"{reason}.")
        if monitor in ("valid_bacc",) and getattr(callback, "lower_is_better", False):
            raise ValueError(f"{kind}(monitor='valid_bacc') needs lower_is_better=False: "
                             "a higher balanced accuracy is better.")


def to_tensor(X):
    """``torch.from_numpy`` without its warning on read-only arrays.

    Validated arrays may be read-only (a caller's ``setflags(write=False)``,
    a read-only memmap, pandas' copy-on-write); torch warns that writing to
    such a tensor is undefined behaviour. Those are copied, others shared.
    """
    return torch.from_numpy(X if X.flags.writeable else X.copy())


def check_no_effect(estimator, name, condition, fix):
    """Refuse a parameter set away from its default where it has no effect.

    The one rule of the family for parameters that a configuration ignores
    (an auxiliary weight without an auxiliary loss, triplet mining for
    another loss, ...): a ``ValueError`` naming the parameter, the reason
    and the fix, rather than a setting silently ignored. The default value
    is always accepted.
    """
    default = inspect.signature(type(estimator).__init__).parameters[name].default
    value = getattr(estimator, name)
    try:
        unchanged = value is default or bool(value == default)
    except (TypeError, ValueError):  # e.g. an array compared with a scalar
        unchanged = False
    if not unchanged:
        raise ValueError(f"{type(estimator).__name__}: {name}={value!r} has no effect "
                         f"{condition}; {fix}.")


def renamed_parameter(estimator, old, new, version="0.2", removal="0.4"):
    """The value of parameter ``new``, taken from its deprecated name ``old`` if set.

    scikit-learn's way of renaming a parameter: the old name stays in the
    signature with the default ``"deprecated"`` for two releases; setting it
    warns (``FutureWarning``) and gives its value to the new name. Setting
    both is refused.
    """
    value = getattr(estimator, old)
    if isinstance(value, str) and value == "deprecated":
        return getattr(estimator, new)
    default = inspect.signature(type(estimator).__init__).parameters[new].default
    if getattr(estimator, new) is not default:
        raise ValueError(f"{type(estimator).__name__}: `{old}` was renamed to `{new}`; "
                         f"set only `{new}`.")
    warnings.warn(f"`{old}` was renamed to `{new}` in {version} and will be removed in "
                  f"{removal}.", FutureWarning, stacklevel=3)
    return value


def clear_fitted_attributes(estimator, private=()):
    """Delete what an earlier fit set: the public fitted attributes (names
    ending in ``_``) and the ``private`` ones named, so that a refit of
    another kind (one network or several, single- or multi-label) keeps
    nothing of the last."""
    for name in [a for a in vars(estimator)
                 if (a.endswith("_") and not a.startswith("_")) or a in private]:
        delattr(estimator, name)


def positive_weight_rows(sample_weight, n_samples):
    """Checked ``sample_weight``: the rows to fit on and their weights.

    Returns ``(rows, weights)``: with no weights or equal ones (scaling the
    weights changes nothing, so equal weights fit what no weights fit, bit
    for bit) ``slice(None)`` and ``None``; else the indices of the rows of
    positive weight (a weight of 0 drops its row) and their weights, a
    float64 array. Raises a ``ValueError`` for negative, non-finite or
    all-zero weights, or a length other than ``n_samples``.
    """
    if sample_weight is None:
        return slice(None), None
    weights = _check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float64,
                                   ensure_non_negative=True)
    if np.all(weights == weights[0]):
        return slice(None), None
    rows = np.flatnonzero(weights > 0)
    return rows, weights[rows]


def take_rows(X, rows):
    """Rows ``rows`` (a NumPy or torch index array) of an array, tensor, sparse
    matrix, :class:`~.nn.sparse_rows.SparseRows` or torch dataset."""
    return Subset(X, rows.tolist()) if isinstance(X, Dataset) else X[rows]


def drop_zero_weight_rows(X, y, sample_weight):
    """``(X, y, weights)`` without the rows of ``sample_weight`` 0, for the
    embedders (rows of an array, sparse matrix or torch dataset); ``X`` and
    ``y`` as given and ``None`` when the weights change nothing
    (:func:`positive_weight_rows`)."""
    kept, weights = positive_weight_rows(sample_weight, len(y))
    if weights is None:
        return X, y, None
    return take_rows(X, kept), np.asarray(y)[kept], weights
