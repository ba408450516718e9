"""Ensembles of networks: ``n_estimators`` networks, embeddings side by side.

Every embedder trains ``n_estimators`` networks (one by default for most,
three for :class:`~sklearn_clmle.CLMLEEmbedder`) into ``estimators_``,
each with its own seed drawn from ``random_state`` (as scikit-learn's
``BaseEnsemble`` seeds its members; a single network trains under
``random_state`` itself), one after the other, optionally each on a
stratified bootstrap of the rows, or, for ``input_weight="auto"``, each
without one fold of the rows (cross-fitting). ``transform`` puts the
networks' unit-norm embeddings side by side, divided by
``sqrt(n_estimators)``: a row keeps unit norm and the cosine similarity of
two rows is the mean of the networks' cosine similarities, so a
nearest-centroid classifier on the ensemble scores by their mean similarity.
"""

import math

import numpy as np
from sklearn.base import clone
from sklearn.utils import resample
from sklearn.utils.validation import has_fit_parameter
from skorch.callbacks import Checkpoint, TrainEndCheckpoint

from ._nearest_cluster import KNearestClusterClassifier
from ._settings import with_settings
from ._validation import check_no_effect


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


def check_ensemble_params(estimator):
    """Refuse ``bootstrap`` and callbacks that an ensemble of this size cannot honour."""
    name = type(estimator).__name__
    if estimator.n_estimators == 1:
        check_no_effect(estimator, "bootstrap", "with n_estimators=1 (a single network "
                        "trains on all rows)", "set n_estimators above 1, or leave "
                        "bootstrap=False")
        return
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
            # Every network gets a copy of the callbacks, and so the same files.
            raise ValueError(
                f"{name}: {type(callback).__name__} with n_estimators="
                f"{estimator.n_estimators} would save every network to the same files, "
                "each overwriting the last. Fit the networks one by one (n_estimators=1, "
                "random_state varied) with a checkpoint each, or drop the checkpoint.")


def member_rows(estimator, y, folds, rng):
    """``(rows, random_state)`` of every network: ``rows`` None for all rows.

    A single network trains on every row under ``random_state`` itself; the
    members of an ensemble draw their seeds from ``rng`` in turn, and train
    without their fold (``folds``, cross-fitting) and/or on a stratified
    bootstrap of their rows.
    """
    if estimator.n_estimators == 1:
        return [(None, estimator.random_state)]
    plan = []
    for k in range(estimator.n_estimators):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        rows = np.arange(len(y)) if folds is None else folds[k][0]
        if estimator.bootstrap:
            rows = rows[bootstrap_indices(y[rows], seed)]
        elif len(rows) == len(y):
            rows = None
        plan.append((rows, seed))
    return plan


def join_members(parts, n_blocks=1):
    """The networks' embeddings side by side, divided by ``sqrt(n_estimators)``.

    With ``n_blocks`` heads (a multi-label fit), the networks' heads of one
    attribute are contiguous (attribute blocks of ``n_estimators * width``
    columns, each of unit norm), as ``KNearestClusterClassifier(
    feature_blocks="auto")`` expects of the heads of a multi-label embedder.
    """
    if len(parts) == 1:
        return parts[0]  # the layout and scale of one network are its own: no copies
    # (n, blocks, width) per network -> (n, blocks, networks, width).
    out = np.stack([part.reshape(len(part), n_blocks, -1) for part in parts], axis=2)
    out = out.reshape(len(out), -1)
    out /= np.float32(math.sqrt(len(parts)))  # in place: the stack is a fresh array
    return out


_PredictOnlyClassifier = with_settings(KNearestClusterClassifier, "_settings", calibrate=False)


def input_weight_classifier(estimator, seed, weighted):
    """The unfitted classifier that chooses ``input_weight="auto"``: a clone of
    ``input_weight_estimator`` seeded from ``seed`` where it has an unset
    ``random_state``, or :class:`KNearestClusterClassifier` at its defaults."""
    if estimator.input_weight_estimator is None:
        # Only its predictions choose the weight: no threshold of unknown
        # rows, no calibration of probabilities.
        return _PredictOnlyClassifier(random_state=seed, device=estimator.device,
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
