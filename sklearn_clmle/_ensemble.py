"""Ensembles of embedders: ``n_estimators`` members, embeddings side by side.

An embedder with ``n_estimators > 1`` fits that many independent copies of
itself (each with ``n_estimators=1`` and its own seed drawn from
``random_state``, as scikit-learn's ``BaseEnsemble`` seeds its members),
one after the other, optionally each on a stratified bootstrap of the rows.
``transform`` puts the members' unit-norm embeddings side by side, divided by
``sqrt(n_estimators)``: a row keeps unit norm and the cosine similarity of
two rows is the mean of the members' cosine similarities, so a
nearest-centroid classifier on the ensemble scores by the members' mean
similarity.

The ensemble owns the input checks (``n_features_in_``,
``feature_names_in_``) and hands the members validated arrays; everything
learnt (scalers, networks, histories) lives in the members.
"""

import math

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state, get_tags, resample
from sklearn.utils.validation import has_fit_parameter, validate_data
from skorch.callbacks import Checkpoint, TrainEndCheckpoint
from torch.utils.data import Dataset, Subset

from ._input_rows import (can_cross_fit, check_input_weight, choose_input_weight,
                          cross_fit_folds, fit_input_scaler, set_input_rows)
from ._nearest_cluster import KNearestClusterClassifier
from ._torch_data import dataset_labels, first_inputs
from ._validation import (check_class_labels, check_input_shape, check_no_effect,
                          drop_zero_weight_rows)

#: Fitted attributes that belong to one trained network: an ensemble has one
#: per member (``estimators_[i].<name>``), none of its own.
MEMBER_ATTRIBUTES = frozenset({"module_", "history_", "scaler_", "best_epoch_",
                               "cluster_size_"})


def bootstrap_indices(class_codes, seed):
    """Rows of a stratified bootstrap: every class redrawn to its own count.

    ``class_codes`` is one label per row, or a binary indicator matrix (then
    every combination of labels is a stratum, so each attribute keeps both
    values). Each stratum of ``n_c`` rows is drawn ``n_c`` times with
    replacement from its own rows: no class is lost or shrinks, unlike a
    plain bootstrap, where a class of 3 samples is absent 4% of the time.
    """
    codes = np.asarray(class_codes)
    # With n_samples equal to the number of rows, resample's stratified
    # allocation gives every stratum exactly its count.
    return resample(np.arange(len(codes)), replace=True, stratify=codes, random_state=seed)


def fit_ensemble(estimator, X, y, sample_weight=None):
    """Fit ``estimator.n_estimators`` members and set the ensemble's attributes.

    Rows of ``sample_weight`` 0 are dropped first; every member gets the
    weights of its rows (a bootstrap sample's repeats on top of them, as
    ``BaggingClassifier`` combines them).
    """
    name = type(estimator).__name__
    if estimator.n_estimators == 1:
        check_no_effect(estimator, "bootstrap", "with n_estimators=1 (a single network "
                        "trains on all rows)", "set n_estimators above 1, or leave "
                        "bootstrap=False")
    if estimator.bootstrap and getattr(estimator, "validation_fraction", None) is not None:
        raise ValueError(
            f"{name}: bootstrap=True cannot be combined with validation_fraction: a "
            "bootstrap sample repeats rows, so a hold-out taken from it shares rows with "
            "the training part and its valid_bacc would be optimistic. Use "
            "bootstrap=False (the members then differ by their seeds), or "
            "validation_fraction=None.")
    for callback in estimator.callbacks or []:
        callback = callback[1] if isinstance(callback, tuple) else callback
        if isinstance(callback, (Checkpoint, TrainEndCheckpoint)):
            # Every member gets a copy of the callbacks, and so the same files.
            raise ValueError(
                f"{name}: {type(callback).__name__} with n_estimators="
                f"{estimator.n_estimators} would save every network to the same files, "
                "each overwriting the last. Fit the networks one by one (n_estimators=1, "
                "random_state varied) with a checkpoint each, or drop the checkpoint.")
    # A refit must not keep attributes of an earlier single-network fit.
    for attribute in [a for a in vars(estimator) if a.endswith("_") and not a.startswith("_")]:
        delattr(estimator, attribute)

    multi_label = get_tags(estimator).target_tags.multi_output
    if isinstance(X, Dataset):
        # The checks of a single fit, in its order: labels, two items, classes.
        labels = dataset_labels(X, y, name)
        check_input_shape(first_inputs(X, 2, name), name)
        X, labels, weights = drop_zero_weight_rows(X, labels, sample_weight)
        y = check_class_labels(labels, name, multi_label=multi_label)
    else:
        # The checks of a single fit, once: the members get validated arrays.
        X, y = validate_data(estimator, X, y, dtype=np.float32, multi_output=True,
                             ensure_min_samples=2, allow_nd=True, accept_sparse="csr")
        X, y, weights = drop_zero_weight_rows(X, y, sample_weight)
        check_input_shape(X, name)
        y = check_class_labels(y, name, multi_label=multi_label)

    check_input_weight(estimator, X, y.ndim > 1)
    rng = check_random_state(estimator.random_state)
    folds = None
    if getattr(estimator, "input_weight", 0.0) == "auto" and can_cross_fit(X, y, estimator):
        # Cross-fitted members: member k never sees fold k, so every row has
        # a held-out embedding to choose the input rows' weight on. (The seed
        # is drawn only here: elsewhere "auto" fits what input_weight=0 fits.)
        fold_seed = int(rng.randint(np.iinfo(np.int32).max))
        folds = cross_fit_folds(y, estimator.n_estimators, fold_seed)
    members = []
    for k in range(estimator.n_estimators):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        member = clone(estimator).set_params(n_estimators=1, bootstrap=False,
                                             random_state=seed)
        if "input_weight" in member.get_params():
            # The ensemble chooses and adds the input rows.
            member.set_params(input_weight=0.0, input_weight_estimator=None)
        rows = np.arange(len(y)) if folds is None else folds[k][0]
        if estimator.bootstrap:
            rows = rows[bootstrap_indices(y[rows], seed)]
        if len(rows) == len(y) and not estimator.bootstrap:
            member.fit(X, y, sample_weight=weights)
        else:
            member.fit(Subset(X, rows.tolist()) if isinstance(X, Dataset) else X[rows], y[rows],
                       sample_weight=None if weights is None else weights[rows])
        members.append(member)

    first = members[0]
    estimator.estimators_ = members
    # Every member saw every class (the bootstrap is stratified): the same classes_.
    for attribute in ("classes_", "n_attributes_", "input_shape_", "embedding_dim_",
                      "device_"):
        if hasattr(first, attribute):
            setattr(estimator, attribute, getattr(first, attribute))
    if isinstance(X, Dataset):
        estimator.n_features_in_ = first.n_features_in_
    chosen = scaler = None
    if folds is not None:
        classifier = input_weight_classifier(estimator, fold_seed, weights is not None)
        # Scores the choice, then scales transform's rows.
        scaler = fit_input_scaler(X, weights)
        chosen, estimator.input_weight_scores_ = choose_input_weight(
            members, folds, X, y, scaler, classifier, estimator._input_weight_choice,
            sample_weight=weights, seed=fold_seed)
    set_input_rows(estimator, X, chosen, scaler, sample_weight=weights)
    return estimator


def input_weight_classifier(estimator, seed, weighted):
    """The unfitted classifier that chooses ``input_weight="auto"``: a clone of
    ``input_weight_estimator`` seeded from ``seed`` where it has an unset
    ``random_state``, or :class:`KNearestClusterClassifier` at its defaults."""
    if estimator.input_weight_estimator is None:
        # Only its predictions choose the weight: no threshold of unknown rows.
        return KNearestClusterClassifier(random_state=seed, device=estimator.device,
                                         unknown_rate=None)
    classifier = clone(estimator.input_weight_estimator)
    if classifier.get_params().get("random_state", 0) is None:
        classifier.set_params(random_state=seed)
    if weighted and not has_fit_parameter(classifier, "sample_weight"):
        raise ValueError(
            f"{type(estimator).__name__}: input_weight_estimator="
            f"{type(classifier).__name__} takes no sample_weight in fit, so it cannot "
            "choose input_weight on weighted rows. Give a classifier that does, fit "
            "without sample_weight, or set input_weight to a number.")
    return classifier


def transform_ensemble(estimator, X):
    """The members' embeddings side by side, divided by ``sqrt(n_estimators)``.

    After a multi-label fit, the members' heads of one attribute are
    contiguous (attribute blocks of ``n_estimators * width`` columns, each of
    unit norm), as ``KNearestClusterClassifier(feature_blocks="auto")``
    expects of the heads of a multi-label embedder.
    """
    if not isinstance(X, Dataset):
        if len(estimator.input_shape_) > 1:
            # As a single network does: name the image shape first.
            check_input_shape(np.asarray(X), type(estimator).__name__,
                              expected=estimator.input_shape_)
        X = validate_data(estimator, X, dtype=np.float32, reset=False, allow_nd=True,
                          accept_sparse="csr")
    n_blocks = getattr(estimator, "n_attributes_", 1)
    parts = [member.transform(X) for member in estimator.estimators_]
    # (n, blocks, width) per member -> (n, blocks, members, width).
    out = np.stack([part.reshape(len(part), n_blocks, -1) for part in parts], axis=2)
    out = out.reshape(len(out), -1)
    return out / np.float32(math.sqrt(len(parts)))


def missing_attribute(estimator, name):
    """The ``AttributeError`` of a missing attribute, pointing an ensemble to its members."""
    members = estimator.__dict__.get("estimators_")
    if members is not None and name in MEMBER_ATTRIBUTES:
        return AttributeError(
            f"{type(estimator).__name__} with n_estimators={len(members)} has no {name}: "
            f"each member network has its own; read estimators_[i].{name}.")
    return AttributeError(f"{type(estimator).__name__!r} object has no attribute {name!r}")
