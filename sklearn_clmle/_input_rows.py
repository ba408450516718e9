"""The scaled input rows beside the embedding, and the cross-fitted choice of their weight.

On tabular sets whose minority has a few dozen rows, the nearest-cluster rule
on the standardised input rows can beat the same rule on a learnt embedding
(glass5, winequality in ``docs/defaults.md``), while elsewhere the embedding
wins by far (poker, the long tails). ``input_weight = w`` puts both side by
side, ``[sqrt(1 - w) * embedding, sqrt(w) * rows / |rows|]``: rows keep unit
norm and their cosine similarity is ``(1 - w)`` times the embedding's plus
``w`` times the input rows'.

``input_weight="auto"`` chooses ``w`` on rows no network has seen: the
ensemble's members are cross-fitted (member ``k`` trains on the rows outside
fold ``k`` of a stratified ``n_estimators``-fold split), so for every ``w`` of
``INPUT_WEIGHT_CHOICE.grid`` the classifier at its defaults is fitted on member
``k``'s training rows and scored on fold ``k``; the ``w`` of best mean
balanced accuracy is kept (ties: the smaller), and ``w = 0`` unless another
weight wins by more than ``INPUT_WEIGHT_CHOICE.tolerance``. What
``GridSearchCV`` over the weight would choose, without its extra fits: the
members are the final model's own.
"""

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ._settings import INPUT_WEIGHT_CHOICE
from ._validation import check_no_effect
from .nn.sampling import capped_class_rows

def side_by_side(embedding, rows, weight):
    """``[sqrt(1 - w) * embedding, sqrt(w) * rows / |rows|]`` (float32); the embedding if w = 0."""
    if not weight:
        return embedding
    with np.errstate(over="ignore"):
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
    huge = ~np.isfinite(norms[:, 0])
    if huge.any():
        # float32 squares overflow above about 1e19: those rows' norms in float64.
        norms[huge] = np.linalg.norm(rows[huge].astype(np.float64), axis=1, keepdims=True)
    unit = rows / np.maximum(norms, 1e-12)
    return np.hstack([embedding * np.float32(np.sqrt(1.0 - weight)),
                      unit * np.float32(np.sqrt(weight))]).astype(np.float32)


def can_cross_fit(X, y, estimator):
    """Whether ``input_weight="auto"`` can cross-fit the members on these data.

    It needs dense single-label feature rows (an array of 2 dimensions) read by
    the default MLP (not a ``module`` of the user's own), two networks or
    more, and ``n_estimators`` rows of every class, so that each
    network's training part holds every class (the ensemble's classes are
    its networks'); an integer ``cluster_size`` or a ``validation_fraction``
    must also suit each network's part.
    """
    k = estimator.n_estimators
    if getattr(X, "ndim", 0) != 2 or y.ndim != 1 or k < 2 or issparse(X):
        # (Sparse rows: their standardised copy beside the embedding would be dense.)
        return False
    if getattr(estimator, "module", None) is not None:
        # A module of the user's own reads its rows as given (signals,
        # flattened images: feature_scaling="auto" does not scale them
        # either), where a cosine between raw rows means little: on the
        # development suite's perceptual tasks the choice was always 0, so
        # cross-fitting only cost the networks a third of their rows.
        return False
    counts = np.unique(y, return_counts=True)[1]
    # The smallest training part a class can get: its count less a fold.
    part = counts - -(-counts // k)
    fits = counts.min() >= k
    # Checks a network makes of its own data must hold on its part as on all
    # rows: otherwise train on all rows, and a bad setting is named with the
    # user's own class sizes.
    cluster_size = getattr(estimator, "cluster_size", "auto")
    if cluster_size != "auto":
        fits &= part.max() >= cluster_size
    fraction = getattr(estimator, "validation_fraction", None)
    if fraction is not None:
        fits &= part.max() >= max(2, int(np.ceil(1 / fraction)))
    return bool(fits)


def cross_fit_folds(y, n_folds, seed):
    """Stratified folds of the rows (shuffled by ``seed``) for cross-fitted members."""
    return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(
        np.zeros((len(y), 1)), y))


def fit_input_scaler(X, sample_weight=None):
    """The standardisation of the input rows put beside the embedding."""
    return StandardScaler().fit(X, sample_weight=sample_weight)


def choose_input_weight(embeddings, folds, X, y, scaler, classifier,
                        settings=INPUT_WEIGHT_CHOICE, sample_weight=None, seed=None):
    """The weight of best mean held-out balanced accuracy, 0 unless it wins by
    ``settings.tolerance``.

    ``embeddings[k]`` embeds ``X`` by a network fitted on ``folds[k][0]``
    (so its ``folds[k][1]`` rows are held out from it); ``classifier`` is an
    unfitted classifier cloned for every fit. Returns the weight and the
    mean scores by weight (ties: the smaller weight). With
    ``sample_weight``, the classifier fits and the balanced accuracy counts
    rows by it. ``seed`` seeds the subsampling of large folds.
    """
    rows = scaler.transform(X).astype(np.float32)
    scores = {w: [] for w in settings.grid}
    rng = np.random.RandomState(seed)
    for Z, (train, held_out) in zip(embeddings, folds):
        train = capped_rows(train, y, settings.max_rows, rng)
        held_out = capped_rows(held_out, y, settings.max_rows, rng)
        for w in settings.grid:
            Zw = side_by_side(Z, rows, w)
            fitted = clone(classifier).fit(
                Zw[train], y[train],
                **({} if sample_weight is None else {"sample_weight": sample_weight[train]}))
            scores[w].append(balanced_accuracy_score(
                y[held_out], fitted.predict(Zw[held_out]),
                sample_weight=_rows_of(sample_weight, held_out)))
    means = {w: float(np.mean(s)) for w, s in scores.items()}
    return preferred_weight(means, settings.tolerance), means


def _rows_of(weights, rows):
    return None if weights is None else weights[rows]


def capped_rows(rows, y, cap, rng):
    """``rows`` (sorted) with at most ``cap`` of them: classes above a common
    size are subsampled to it, smaller classes kept whole (so that every
    class, however rare, still counts in a balanced accuracy)."""
    if len(rows) <= cap:
        return np.sort(rows)
    # The rounds' own draw (nn.sampling.capped_class_rows), on the class codes
    # of these rows, seeded from ``rng``.
    codes = torch.from_numpy(np.unique(y[rows], return_inverse=True)[1].reshape(-1))
    generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
    return np.sort(rows[capped_class_rows(codes, cap, generator).numpy()])


def preferred_weight(means, tolerance):
    """0 unless the best weight's mean beats 0's by more than ``tolerance``; ties: smaller."""
    best = max(means.values())
    best_weight = min(w for w, m in means.items() if m == best)
    return 0.0 if best <= means[0.0] + tolerance else best_weight


def check_input_weight(estimator, X, multi_label):
    """Refuse input rows where there are none to put beside the embedding (before training)."""
    weight = getattr(estimator, "input_weight", 0.0)
    if weight != "auto" and hasattr(estimator, "input_weight_estimator"):
        check_no_effect(estimator, "input_weight_estimator",
                        f"with input_weight={weight!r} (it chooses input_weight='auto')",
                        "set input_weight='auto', or leave input_weight_estimator=None")
    if weight == "auto" or not weight:
        return
    where = ("a torch Dataset" if not hasattr(X, "ndim") else
             "images" if X.ndim > 2 else "multi-label y" if multi_label else
             "sparse X (its standardised rows would be dense)" if issparse(X) else None)
    if where is not None:
        raise ValueError(
            f"{type(estimator).__name__}: input_weight={weight!r} puts the scaled feature rows "
            f"beside the embedding, for dense single-label feature rows (n_samples, n_features); "
            f"this fit has {where}. Use input_weight=0 (or 'auto', which is 0 there).")


def set_input_rows(estimator, X, chosen=None, scaler=None, sample_weight=None):
    """Set ``input_weight_`` (and ``input_scaler_`` when it is positive) after a fit.

    ``chosen`` is the cross-fitted choice of ``input_weight="auto"``, or
    None where none was made (then ``"auto"`` is 0); ``scaler`` is the one
    already fitted on ``X`` for that choice, if any.
    """
    if not hasattr(estimator, "input_weight"):
        # An embedder without the parameter (Softmax, Pair) gets no attribute for it.
        return
    weight = estimator.input_weight
    weight = (chosen or 0.0) if weight == "auto" else float(weight)
    estimator.input_weight_ = weight
    if weight:
        estimator.input_scaler_ = (scaler if scaler is not None
                                   else fit_input_scaler(X, sample_weight))


def add_input_rows(estimator, Z, X):
    """The embedding ``Z`` of validated rows ``X`` with the input rows beside it, if any."""
    weight = getattr(estimator, "input_weight_", 0.0)
    if not weight:
        return Z
    return side_by_side(Z, estimator.input_scaler_.transform(X).astype(np.float32), weight)
