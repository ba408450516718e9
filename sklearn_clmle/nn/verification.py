"""Open-set verification and identification on embeddings (pure torch).

The protocols of face recognition (Huang et al., Sec. 5.1-5.2): verification
thresholds the cosine similarity of a pair (LFW: accuracy with 10-fold
threshold selection; MegaFace: TAR at a fixed FAR), identification ranks a
gallery by similarity to each probe (rank-1 accuracy, CMC curve).

scikit-learn computes the ROC (``sklearn.metrics.roc_curve``) and the tests
check ours against it; these versions exist so that scores of millions of
pairs and galleries of a million vectors stay on the GPU, and so that memory
stays bounded by ``chunk_size`` on the CPU. :mod:`sklearn_clmle.verification`
wraps these functions, with the same names and signatures, for NumPy inputs.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "cmc_curve",
    "cosine_pair_scores",
    "identification_ranks",
    "kfold_verification_accuracy",
    "roc_curve",
    "tar_at_far",
]

#: The false accept rates reported by default, MegaFace's 1e-6 included.
DEFAULT_FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def cosine_pair_scores(x, y=None, *, pairs=None, chunk_size=65536):
    """Cosine similarity of each pair of embeddings.

    Either ``x`` and ``y`` hold the two sides row by row, or ``pairs`` holds
    index pairs into the rows of ``x`` (then ``y`` is None). Rows are
    normalised chunk by chunk, so ``x`` is never copied whole.

    Parameters
    ----------
    x : Tensor of shape (n, dim)
    y : Tensor of shape (n_pairs, dim), default=None
    pairs : Tensor of shape (n_pairs, 2), dtype long, default=None
    chunk_size : int, default=65536
        Pairs scored at a time.

    Returns
    -------
    Tensor of shape (n_pairs,)

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    >>> cosine_pair_scores(x, pairs=torch.tensor([[0, 1], [0, 2]]))
    tensor([0.0000, 0.7071])
    """
    n_pairs = pairs.shape[0] if pairs is not None else x.shape[0]
    scores = []
    for start in range(0, n_pairs, chunk_size):
        stop = min(start + chunk_size, n_pairs)
        if pairs is None:
            left, right = x[start:stop], y[start:stop]
        else:
            left, right = x[pairs[start:stop, 0]], x[pairs[start:stop, 1]]
        scores.append((F.normalize(left, dim=1) * F.normalize(right, dim=1)).sum(dim=1))
    return torch.cat(scores) if scores else x.new_zeros(0)


def _roc_counts(scores, labels):
    # False and true positive counts of the rule "accept score >= threshold"
    # at each distinct score, from the highest down; the first point (no
    # pair accepted) has threshold +inf, as in scikit-learn.
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_scores, positive = scores[order], labels[order].long()
    last_of_tie = torch.cat([torch.nonzero(sorted_scores[1:] != sorted_scores[:-1]).flatten(),
                             sorted_scores.new_tensor([scores.numel() - 1], dtype=torch.long)])
    tps = torch.cumsum(positive, 0)[last_of_tie]
    fps = last_of_tie + 1 - tps
    zero = tps.new_zeros(1)
    thresholds = torch.cat([scores.new_tensor([float("inf")]), sorted_scores[last_of_tie]])
    return torch.cat([zero, fps]), torch.cat([zero, tps]), thresholds


def roc_curve(scores, labels):
    """ROC of the rule "same identity if score >= threshold".

    One point per distinct score (ties move together), plus the starting
    point (0, 0) at threshold ``+inf``: the same as
    ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``.

    Parameters
    ----------
    scores : Tensor of shape (n_pairs,)
    labels : Tensor of shape (n_pairs,), bool or 0/1
        True for pairs of the same identity.

    Returns
    -------
    fpr, tpr : Tensor of shape (n_thresholds,), float64
        False and true accept rates; NaN if there are no negative (positive)
        pairs.
    thresholds : Tensor of shape (n_thresholds,)
        Decreasing; the first is ``+inf``.

    Examples
    --------
    >>> import torch
    >>> fpr, tpr, thr = roc_curve(torch.tensor([0.75, 0.5, 0.5, 0.25]),
    ...                           torch.tensor([1, 1, 0, 0]))
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])
    >>> thr.tolist()
    [inf, 0.75, 0.5, 0.25]
    """
    fps, tps, thresholds = _roc_counts(scores, labels)
    return fps.double() / fps[-1], tps.double() / tps[-1], thresholds


def tar_at_far(scores, labels, *, far=DEFAULT_FARS):
    """True accept rate at each false accept rate in ``far``.

    The TAR at FAR ``f`` is the highest true accept rate of a threshold whose
    false accept rate is at most ``f``. With ``n`` negative pairs the false
    accept rates are multiples of ``1 / n``; a FAR below ``1 / n`` cannot be
    told apart from zero, so its TAR is NaN (MegaFace's 1e-6 needs a million
    negative pairs).

    Parameters
    ----------
    scores : Tensor of shape (n_pairs,)
    labels : Tensor of shape (n_pairs,), bool or 0/1
    far : float or sequence of float, default=(1e-1, ..., 1e-6)

    Returns
    -------
    Tensor of shape (len(far),), float64

    Examples
    --------
    >>> import torch
    >>> scores = torch.tensor([0.9, 0.7, 0.6, 0.5, 0.4, 0.3])
    >>> labels = torch.tensor([1, 0, 1, 1, 0, 0])
    >>> tar_at_far(scores, labels, far=[0.5, 0.1])
    tensor([1., nan], dtype=torch.float64)
    """
    fpr, tpr, _ = roc_curve(scores, labels)
    fars = torch.as_tensor(far, dtype=torch.float64, device=fpr.device).reshape(-1)
    n_negative = int((~labels.bool()).sum())
    # fpr is non-decreasing and starts at 0, so the last point with
    # fpr <= f is found by a right-sided search; k / n <= f compares two
    # correctly rounded doubles, exact for the FAR values people type.
    at = torch.searchsorted(fpr, fars, right=True) - 1
    tar = tpr[at.clamp_min(0)]
    resolvable = fars >= (1.0 / n_negative if n_negative else float("inf"))
    return torch.where(resolvable, tar, torch.full_like(tar, float("nan")))


def kfold_verification_accuracy(scores, labels, folds):
    """Verification accuracy with the threshold chosen on the other folds.

    The LFW protocol: for each fold, the threshold that maximises accuracy
    on the pairs of all other folds is applied to the fold's own pairs. The
    threshold lies midway between the lowest accepted and the highest
    rejected training score (ties in accuracy go to the higher threshold).

    Parameters
    ----------
    scores : Tensor of shape (n_pairs,)
    labels : Tensor of shape (n_pairs,), bool or 0/1
    folds : Tensor of shape (n_pairs,), long
        Fold number of each pair, ``0 .. n_folds - 1``.

    Returns
    -------
    accuracies, thresholds : Tensor of shape (n_folds,), float64
        Held-out accuracy and threshold of each fold.

    Examples
    --------
    >>> import torch
    >>> scores = torch.tensor([0.9, 0.2, 0.8, 0.3, 0.7, 0.6])
    >>> labels = torch.tensor([1, 0, 1, 0, 1, 0])
    >>> acc, thr = kfold_verification_accuracy(scores, labels, torch.tensor([0, 0, 1, 1, 2, 2]))
    >>> acc  # the third fold's threshold, 0.55, accepts its negative 0.6
    tensor([1.0000, 1.0000, 0.5000], dtype=torch.float64)
    """
    labels = labels.bool()
    n_folds = int(folds.max()) + 1
    accuracies, thresholds = [], []
    for fold in range(n_folds):
        train, test = folds != fold, folds == fold
        fps, tps, cutoffs = _roc_counts(scores[train], labels[train])
        n_negative = int(train.sum()) - int(tps[-1])
        # Correct decisions at each cutoff: accepted positives + rejected negatives.
        best = int(torch.argmax(tps + n_negative - fps))
        below = cutoffs[best + 1] if best + 1 < cutoffs.numel() else cutoffs.new_tensor(
            float("-inf"))
        threshold = (cutoffs[best] + below) / 2
        hits = (scores[test] >= threshold) == labels[test]
        accuracies.append(hits.double().mean())
        thresholds.append(threshold.double())
    return torch.stack(accuracies), torch.stack(thresholds)


def identification_ranks(probes, probe_labels, gallery, gallery_labels, *, max_rank=10,
                         chunk_size=4096):
    """Rank of the first gallery item of each probe's identity.

    Gallery items are ranked by cosine similarity to the probe. A probe's
    rank is one plus the number of other-identity items at least as similar
    as its best same-identity item: ties count against the probe, so a
    collapsed embedding does not score well. Only the ``max_rank`` most
    similar other-identity items are kept per probe (a running top-k over
    chunks of the gallery), so memory is ``chunk_size ** 2`` similarities
    whatever the gallery size.

    Parameters
    ----------
    probes : Tensor of shape (n_probes, dim)
    probe_labels : Tensor of shape (n_probes,), long
    gallery : Tensor of shape (n_gallery, dim)
        May include distractors, items whose identity has no probe.
    gallery_labels : Tensor of shape (n_gallery,), long
    max_rank : int, default=10
        Ranks above it are reported as ``max_rank + 1``.
    chunk_size : int, default=4096
        Probes and gallery items per similarity block.

    Returns
    -------
    Tensor of shape (n_probes,), long
        ``max_rank + 1`` also for probes with no item of their identity.

    Examples
    --------
    >>> import torch
    >>> gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> probes = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    >>> identification_ranks(probes, torch.tensor([0, 1]), gallery,
    ...                      torch.tensor([1, 0, 2]), max_rank=3)
    tensor([3, 3])
    """
    ranks = []
    for probe_start in range(0, probes.shape[0], chunk_size):
        chunk = F.normalize(probes[probe_start:probe_start + chunk_size], dim=1)
        labels = probe_labels[probe_start:probe_start + chunk_size]
        genuine = chunk.new_full((chunk.shape[0],), float("-inf"))
        impostors = chunk.new_full((chunk.shape[0], max_rank), float("-inf"))
        for start in range(0, gallery.shape[0], chunk_size):
            similarity = chunk @ F.normalize(gallery[start:start + chunk_size], dim=1).T
            same = labels[:, None] == gallery_labels[None, start:start + chunk_size]
            genuine = torch.maximum(genuine, similarity.masked_fill(~same, float("-inf"))
                                    .max(dim=1).values)
            # Only values are kept: the multiset of the top-k values does not
            # depend on how ties are ordered, so the chunking cannot change it.
            impostors = torch.cat([impostors, similarity.masked_fill(same, float("-inf"))],
                                  dim=1).topk(max_rank, dim=1).values
        ranks.append(1 + (impostors >= genuine[:, None]).sum(dim=1))
    return torch.cat(ranks) if ranks else probe_labels.new_zeros(0)


def cmc_curve(probes, probe_labels, gallery, gallery_labels, *, max_rank=10, chunk_size=4096):
    """Cumulative match characteristic: share of probes found within rank r.

    See :func:`identification_ranks` for the ranking and its tie rule; the
    first value is the rank-1 identification accuracy.

    Returns
    -------
    Tensor of shape (max_rank,), float64

    Examples
    --------
    >>> import torch
    >>> gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    >>> probes = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    >>> cmc_curve(probes, torch.tensor([1, 0]), gallery, torch.tensor([1, 0, 2]), max_rank=2)
    tensor([1., 1.], dtype=torch.float64)
    """
    ranks = identification_ranks(probes, probe_labels, gallery, gallery_labels,
                                 max_rank=max_rank, chunk_size=chunk_size)
    within = ranks[:, None] <= torch.arange(1, max_rank + 1, device=ranks.device)
    return within.double().mean(dim=0)
