"""Open-set verification and identification metrics on embeddings.

Numpy in, numpy out: the face-recognition protocols of Huang et al.
(Sec. 5.1-5.2) for any embedder's ``transform`` output. Verification
thresholds the cosine similarity of a pair of samples (accuracy with k-fold
threshold selection as on LFW, TAR at fixed FAR as on MegaFace);
identification ranks a gallery, distractors included, by similarity to each
probe (rank-1 accuracy and the CMC curve). The work is done in torch
(:mod:`sklearn_clmle.nn.verification`, whose functions these wrap under the
same names and signatures) on ``device``, in chunks, so that a gallery of a
million vectors fits.
"""

import numbers

import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array

from ._validation import check_device
from .nn import verification as _nn

__all__ = [
    "cmc_curve",
    "cosine_pair_scores",
    "rank_one_accuracy",
    "tar_at_far",
    "verification_accuracy",
    "verification_roc",
]

DEFAULT_FARS = _nn.DEFAULT_FARS


def _embeddings(X, name, dim=None):
    X = check_array(X, dtype=[np.float64, np.float32], input_name=name)
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} has {X.shape[1]} features but the other embeddings have "
                         f"{dim}.")
    return X


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _one_dimensional(values, name):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-d; got shape {values.shape}.")
    return values


def _scores_and_labels(scores, labels):
    # Verification metrics need finite scores and both kinds of pairs.
    scores = check_array(_one_dimensional(scores, "scores"), ensure_2d=False,
                         dtype=np.float64, input_name="scores")
    labels = _one_dimensional(labels, "labels")
    if labels.shape != scores.shape:
        raise ValueError(f"scores and labels have different lengths: {len(scores)} and "
                         f"{len(labels)}.")
    values = np.unique(labels)
    if labels.dtype.kind not in "biuf" or not np.isin(values, [0, 1]).all():
        raise ValueError("labels must be boolean or 0/1 (1 = same identity); got values "
                         f"{values[:5].tolist()}.")
    if len(values) < 2:
        raise ValueError("labels need both same-identity (1) and different-identity (0) "
                         f"pairs; got only {int(values[0]) if len(values) else 'no'} pairs.")
    return torch.from_numpy(scores), torch.from_numpy(labels.astype(bool))


def cosine_pair_scores(X, Y=None, *, pairs=None, chunk_size=65536, device="auto"):
    """Cosine similarity of pairs of embeddings.

    Give the two sides of each pair row by row (``X`` and ``Y``), or one
    embedding matrix ``X`` and index ``pairs`` into its rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    Y : array-like of shape (n_samples, n_features), default=None
        Second side of each pair; leave None when ``pairs`` is given.
    pairs : array-like of int of shape (n_pairs, 2), default=None
        Row indices into ``X``.
    chunk_size : int, default=65536
        Pairs scored at a time; bounds the memory.
    device : str or torch.device, default="auto"
        ``"auto"`` uses a GPU when one is visible.

    Returns
    -------
    ndarray of shape (n_pairs,)

    Examples
    --------
    >>> from sklearn_clmle.verification import cosine_pair_scores
    >>> X = [[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]
    >>> cosine_pair_scores(X, pairs=[[0, 1], [0, 2]], device="cpu").round(4)
    array([0.    , 0.7071])
    """
    chunk_size = _positive_int(chunk_size, "chunk_size")
    device = check_device(device, "cosine_pair_scores")
    X = _embeddings(X, "X")
    if (Y is None) == (pairs is None):
        raise ValueError("Pass either Y (the second side of each pair) or pairs (index "
                         "pairs into X), not both and not neither.")
    if Y is not None:
        Y = _embeddings(Y, "Y", X.shape[1])
        if len(Y) != len(X):
            raise ValueError(f"X and Y must have one row per pair; got {len(X)} and {len(Y)} "
                             "rows.")
        Y = torch.as_tensor(Y.astype(X.dtype, copy=False), device=device)
    else:
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
            raise ValueError("pairs must be an integer array of shape (n_pairs, 2); got "
                             f"shape {pairs.shape} and dtype {pairs.dtype}.")
        if pairs.size and (pairs.min() < 0 or pairs.max() >= len(X)):
            raise ValueError(f"pairs index rows 0 .. {len(X) - 1} of X; got indices from "
                             f"{pairs.min()} to {pairs.max()}.")
        pairs = torch.as_tensor(pairs.astype(np.int64), device=device)
    scores = _nn.cosine_pair_scores(torch.as_tensor(X, device=device), Y, pairs=pairs,
                                    chunk_size=chunk_size)
    return scores.cpu().numpy()


def verification_roc(scores, labels):
    """ROC curve of the rule "same identity if score >= threshold".

    Equal to ``sklearn.metrics.roc_curve(labels, scores,
    drop_intermediate=False)``; computed in torch.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
        Similarity of each pair (e.g. from :func:`cosine_pair_scores`).
    labels : array-like of shape (n_pairs,)
        Boolean or 0/1, 1 for pairs of the same identity.

    Returns
    -------
    fpr, tpr : ndarray of shape (n_thresholds,)
        False and true accept rates.
    thresholds : ndarray of shape (n_thresholds,)
        Decreasing distinct scores, after a first ``+inf``.

    Examples
    --------
    >>> from sklearn_clmle.verification import verification_roc
    >>> fpr, tpr, thresholds = verification_roc([0.9, 0.8, 0.8, 0.1], [1, 1, 0, 0])
    >>> fpr, tpr
    (array([0. , 0. , 0.5, 1. ]), array([0. , 0.5, 1. , 1. ]))
    """
    scores, labels = _scores_and_labels(scores, labels)
    return tuple(t.numpy() for t in _nn.roc_curve(scores, labels))


def tar_at_far(scores, labels, *, far=DEFAULT_FARS):
    """True accept rate at fixed false accept rates.

    For each ``f`` in ``far``, the highest TAR of a threshold that accepts at
    most a share ``f`` of the different-identity pairs.

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
    labels : array-like of shape (n_pairs,)
        Boolean or 0/1, 1 for pairs of the same identity.
    far : float or sequence of float, default=(1e-1, ..., 1e-6)
        False accept rates in (0, 1].

    Returns
    -------
    ndarray of shape (len(far),)
        NaN where ``f < 1 / n_negative_pairs``: so few negative pairs cannot
        measure such a small rate (1e-6 needs a million of them).

    Examples
    --------
    >>> from sklearn_clmle.verification import tar_at_far
    >>> scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    >>> labels = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
    >>> tar_at_far(scores, labels, far=[0.5, 0.2, 0.1])
    array([1.  , 0.75,  nan])
    """
    scores, labels = _scores_and_labels(scores, labels)
    far = np.atleast_1d(np.asarray(far, dtype=np.float64))
    if far.ndim != 1 or not np.all((far > 0) & (far <= 1)):
        raise ValueError(f"far must hold rates in (0, 1]; got {far.tolist()}.")
    return _nn.tar_at_far(scores, labels, far=far).numpy()


def verification_accuracy(scores, labels, *, folds=10):
    """Verification accuracy with k-fold threshold selection (LFW protocol).

    Each fold is scored with the threshold that maximises accuracy on all
    other folds (midway between the lowest accepted and the highest
    rejected score).

    Parameters
    ----------
    scores : array-like of shape (n_pairs,)
    labels : array-like of shape (n_pairs,)
        Boolean or 0/1, 1 for pairs of the same identity.
    folds : int or array-like of shape (n_pairs,), default=10
        An int ``k`` cuts the pairs, in the order given, into ``k``
        consecutive folds of near-equal size (LFW's pairs file lists its ten
        folds one after the other; shuffle beforehand otherwise). An array
        gives the fold of each pair.

    Returns
    -------
    Bunch
        ``accuracy`` (mean over folds), ``std`` (their standard deviation,
        ``ddof=0``; LFW's standard error is ``std * sqrt(k / (k - 1)) /
        sqrt(k)``), ``fold_accuracies`` and ``thresholds`` (one per fold).

    Examples
    --------
    >>> from sklearn_clmle.verification import verification_accuracy
    >>> scores = [0.9, 0.2, 0.8, 0.3, 0.7, 0.6]
    >>> labels = [1, 0, 1, 0, 1, 0]
    >>> result = verification_accuracy(scores, labels, folds=3)
    >>> result.fold_accuracies, result.thresholds
    (array([1. , 1. , 0.5]), array([0.65, 0.65, 0.55]))
    >>> round(result.accuracy, 4)
    0.8333
    """
    scores, labels = _scores_and_labels(scores, labels)
    n_pairs = len(scores)
    if isinstance(folds, numbers.Integral) and not isinstance(folds, bool):
        if not 2 <= folds <= n_pairs:
            raise ValueError(f"folds={folds} needs 2 <= folds <= n_pairs ({n_pairs}).")
        fold_of = np.arange(n_pairs) * int(folds) // n_pairs
    else:
        fold_of = _one_dimensional(folds, "folds")
        if len(fold_of) != n_pairs:
            raise ValueError(f"folds has {len(fold_of)} entries for {n_pairs} pairs.")
        fold_of = np.unique(fold_of, return_inverse=True)[1].ravel()
        if fold_of.max(initial=0) < 1:
            raise ValueError("folds must name at least two folds.")
    accuracies, thresholds = _nn.kfold_verification_accuracy(
        scores, labels, torch.from_numpy(fold_of.astype(np.int64)))
    accuracies = accuracies.numpy()
    return Bunch(accuracy=float(accuracies.mean()), std=float(accuracies.std()),
                 fold_accuracies=accuracies, thresholds=thresholds.numpy())


def _identification_inputs(probes, probe_labels, gallery, gallery_labels, max_rank,
                           chunk_size, device, name):
    max_rank = _positive_int(max_rank, "max_rank")
    chunk_size = _positive_int(chunk_size, "chunk_size")
    device = check_device(device, name)
    probes = _embeddings(probes, "probes")
    gallery = _embeddings(gallery, "gallery", probes.shape[1]).astype(probes.dtype, copy=False)
    probe_labels = _one_dimensional(probe_labels, "probe_labels")
    gallery_labels = _one_dimensional(gallery_labels, "gallery_labels")
    for X, y, what in ((probes, probe_labels, "probe"), (gallery, gallery_labels, "gallery")):
        if len(y) != len(X):
            raise ValueError(f"{what}_labels has {len(y)} entries for {len(X)} {what} rows.")
    missing = np.setdiff1d(probe_labels, gallery_labels)
    if len(missing):
        raise ValueError(f"{len(missing)} probe identities have no gallery item, e.g. "
                         f"{missing[:3].tolist()}; identification needs each enrolled.")
    # Common integer codes for both label arrays, whatever their type.
    _, codes = np.unique(np.concatenate([probe_labels, gallery_labels]), return_inverse=True)
    codes = torch.as_tensor(codes.ravel().astype(np.int64), device=device)
    return (torch.as_tensor(probes, device=device), codes[:len(probe_labels)],
            torch.as_tensor(gallery, device=device), codes[len(probe_labels):],
            dict(max_rank=max_rank, chunk_size=chunk_size))


def cmc_curve(probes, probe_labels, gallery, gallery_labels, *, max_rank=10,
              chunk_size=4096, device="auto"):
    """Cumulative match characteristic of closed-set identification.

    Gallery items are ranked by cosine similarity to each probe; a probe is
    found at rank ``r`` when the first item of its identity comes ``r``-th.
    Other-identity items as similar as that item count as ahead of it (ties
    go against the probe). The gallery may hold distractors, identities
    without probes (MegaFace's million faces).

    Parameters
    ----------
    probes : array-like of shape (n_probes, n_features)
    probe_labels : array-like of shape (n_probes,)
        Identity of each probe; every one must appear in ``gallery_labels``.
    gallery : array-like of shape (n_gallery, n_features)
    gallery_labels : array-like of shape (n_gallery,)
    max_rank : int, default=10
    chunk_size : int, default=4096
        Probes and gallery items per similarity block: memory is
        ``chunk_size ** 2`` similarities whatever the gallery size.
    device : str or torch.device, default="auto"

    Returns
    -------
    ndarray of shape (max_rank,)
        Share of probes found within rank 1, 2, ..., ``max_rank``.

    Examples
    --------
    >>> from sklearn_clmle.verification import cmc_curve
    >>> gallery = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]  # ids 7, 8 and a distractor 9
    >>> probes = [[1.0, 0.1], [0.7, 0.7]]  # ids 7 and 8; the second ties 7 and trails 9
    >>> cmc_curve(probes, [7, 8], gallery, [7, 8, 9], max_rank=3, device="cpu")
    array([0.5, 0.5, 1. ])
    """
    *args, sizes = _identification_inputs(probes, probe_labels, gallery, gallery_labels,
                                          max_rank, chunk_size, device, "cmc_curve")
    return _nn.cmc_curve(*args, **sizes).cpu().numpy()


def rank_one_accuracy(probes, probe_labels, gallery, gallery_labels, *, chunk_size=4096,
                      device="auto"):
    """Rank-1 identification accuracy, the first value of :func:`cmc_curve`.

    Examples
    --------
    >>> from sklearn_clmle.verification import rank_one_accuracy
    >>> gallery = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
    >>> rank_one_accuracy([[1.0, 0.1], [0.7, 0.7]], [7, 8], gallery, [7, 8, 9], device="cpu")
    0.5
    """
    return float(cmc_curve(probes, probe_labels, gallery, gallery_labels, max_rank=1,
                           chunk_size=chunk_size, device=device)[0])
