"""Multi-label classification (Sec. 5.3): one binary classifier per attribute.

A binary indicator matrix ``y`` makes :class:`~sklearn_clmle.KNearestClusterClassifier`
fit one binary nearest-cluster classifier per attribute, a clone at the same
parameters with its own seed drawn from ``random_state``, each on its
attribute's columns of ``X`` (``feature_blocks``: the heads of a multi-label
embedder). The per-attribute classifiers are kept in ``estimators_``, as
scikit-learn's ``MultiOutputClassifier`` keeps them, and the prediction
methods answer in scikit-learn's multi-output forms. This module holds that
fit, the choice of the blocks and the dispatch; the classifier itself knows
only single-label rows.
"""

import re

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data


def is_multi_label(classifier):
    """Whether ``classifier`` was fitted on multi-label ``y``."""
    return "n_attributes_" in vars(classifier)


def fit_attributes(classifier, X, Y, sample_weight=None):
    """Set the multi-label fitted attributes: ``feature_blocks_``,
    ``n_attributes_``, ``estimators_``, ``classes_`` and ``n_iter_``."""
    classifier.feature_blocks_ = feature_blocks(classifier, X, Y.shape[1])
    classifier.n_attributes_ = Y.shape[1]
    rng = check_random_state(classifier.random_state)
    classifier.estimators_ = [
        clone(classifier).set_params(feature_blocks="all",
                                     random_state=rng.randint(np.iinfo(np.int32).max))
        .fit(columns(X, block), Y[:, a], sample_weight=sample_weight)
        for a, block in enumerate(classifier.feature_blocks_)]
    classifier.classes_ = [estimator.classes_ for estimator in classifier.estimators_]
    classifier.n_iter_ = np.array([estimator.n_iter_ for estimator in classifier.estimators_])
    return classifier


def per_attribute(classifier, X, method, **kwargs):
    """``method`` of every attribute's classifier on its block of ``X``: a list."""
    # The fitted check comes first so that an unfitted model fails clearly.
    check_is_fitted(classifier)
    X = validate_data(classifier, X, dtype=np.float32, reset=False)
    return [getattr(estimator, method)(columns(X, block), **kwargs)
            for estimator, block in zip(classifier.estimators_, classifier.feature_blocks_)]


def feature_blocks(classifier, X, n_attributes):
    """Column indices of each attribute's block, from ``feature_blocks``."""
    n_features = X.shape[1]
    if classifier.feature_blocks == "all":
        return [np.arange(n_features)] * n_attributes
    if classifier.feature_blocks == "auto":
        return _auto_feature_blocks(classifier, X, n_attributes)
    if len(classifier.feature_blocks) != n_attributes:
        raise ValueError(f"feature_blocks has {len(classifier.feature_blocks)} blocks for "
                         f"{n_attributes} attributes in y; give one block per attribute.")
    all_columns, blocks = np.arange(n_features), []
    for a, block in enumerate(classifier.feature_blocks):
        try:
            index = all_columns[block if isinstance(block, slice) else np.asarray(block)]
        except IndexError as exc:
            raise ValueError(f"feature_blocks[{a}] does not index the {n_features} "
                             f"features of X: {exc}") from exc
        if index.ndim != 1 or index.size == 0:
            raise ValueError(f"feature_blocks[{a}] must select at least one column "
                             f"(a slice or a 1-d array of column indices); got {block!r}.")
        blocks.append(index)
    return blocks


def _auto_feature_blocks(classifier, X, n_attributes):
    """The embedder's heads, from the feature names or the unit-norm blocks; else all."""
    names = getattr(classifier, "feature_names_in_", None)
    if names is not None:
        found = [re.fullmatch(r".*_attr(\d+)_\d+", str(name)) for name in names]
        if all(found):
            attribute = np.array([int(match.group(1)) for match in found])
            if set(attribute.tolist()) != set(range(n_attributes)):
                raise ValueError(
                    f"The feature names of X give the heads of attributes "
                    f"{sorted(set(attribute.tolist()))} but y has {n_attributes} "
                    "attributes; fit on the columns of y the embedder was fitted on, or "
                    "pass feature_blocks explicitly.")
            return [np.flatnonzero(attribute == a) for a in range(n_attributes)]
    n_features = X.shape[1]
    if n_attributes > 1 and n_features % n_attributes == 0:
        blocks = X.reshape(len(X), n_attributes, -1).astype(np.float64)
        if np.allclose(np.linalg.norm(blocks, axis=2), 1.0, atol=1e-3):
            width = n_features // n_attributes
            return [np.arange(a * width, (a + 1) * width) for a in range(n_attributes)]
    return [np.arange(n_features)] * n_attributes


def columns(X, block):
    """``X[:, block]``, without a copy when the block is every column (each
    attribute's classifier keeps a reference to its training rows)."""
    if np.array_equal(block, np.arange(X.shape[1])):
        return X
    return X[:, block]
