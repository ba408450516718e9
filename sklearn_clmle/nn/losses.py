"""The cluster losses of the CLMLE family, and the reduction every loss shares (pure torch).

Eq. (9), CLMLE's cluster-based large margin loss (:class:`ClusterMarginLoss`),
and Eq. (5), LMLE's triple-header hinge loss (:class:`TripleHeaderHingeLoss`,
on the quintuplets of :mod:`.quintuplets`), are :class:`PerSampleLoss`
templates: per-sample values (which the hardest query ranks), then their
mean. Sec. 3.3, step 4 weights every sample of a batch by the inverse
frequency of its class in that batch, so that each class present counts as
much as any other: every loss of the package that offers ``cost_sensitive``
(here, in :mod:`.pair_losses` and in :mod:`.margin_losses`) reduces through
:func:`sample_weights` and :func:`weighted_mean`. No scikit-learn inside.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .functional import pairwise_distances
from .quintuplets import _mine

__all__ = ["ClusterMarginLoss", "PerSampleLoss", "TripleHeaderHingeLoss",
           "inverse_frequency_weights", "sample_weights", "weighted_mean"]


def inverse_frequency_weights(class_codes, dtype=None):
    """Per-sample weights ``1 / n_c`` where ``n_c`` counts the sample's class in the batch.

    Parameters
    ----------
    class_codes : Tensor of shape (batch_size,)
        Integer class of each sample.
    dtype : torch.dtype, optional
        Floating dtype of the weights; defaults to torch's default dtype.

    Returns
    -------
    Tensor of shape (batch_size,)
        Weights; each class present in the batch sums to one.
    """
    # Counted by binary search in the sorted codes, not torch.unique: unique's
    # output size depends on the data, so on CUDA it makes the host wait for
    # the device at every batch; searchsorted keeps the batch's shape.
    class_codes = class_codes.contiguous()  # a column of a multi-label batch is strided
    ordered = torch.sort(class_codes).values
    counts = (torch.searchsorted(ordered, class_codes, right=True)
              - torch.searchsorted(ordered, class_codes))
    return 1.0 / counts.to(dtype or torch.get_default_dtype())


def sample_weights(class_codes, like, cost_sensitive=False, class_weight=None):
    """Weight of every sample: ``class_weight[y_i]`` times ``1 / n_{y_i}``, or None.

    Parameters
    ----------
    class_codes : Tensor of shape (batch_size,)
        Integer class of each sample.
    like : Tensor
        The weights take its dtype and device: 1 / n_c rounded to float32
        would bias a float64 loss by about 1e-8 relative.
    cost_sensitive : bool, default=False
        Include the in-batch inverse class frequency ``1 / n_{y_i}``.
    class_weight : array-like of shape (n_classes,) or None, default=None
        Fixed per-class weights.

    Returns
    -------
    Tensor of shape (batch_size,) or None
        None when neither weighting applies (a plain mean).
    """
    weights = None
    if class_weight is not None:
        weights = torch.as_tensor(class_weight, dtype=like.dtype, device=like.device)
        weights = weights[class_codes]
    if cost_sensitive:
        batch = inverse_frequency_weights(class_codes, dtype=like.dtype)
        weights = batch if weights is None else weights * batch
    return weights


def weighted_mean(values, weights=None):
    """``sum_i w_i v_i / sum_i w_i``; the plain mean when ``weights`` is None."""
    if weights is None:
        return values.mean()
    return (weights * values).sum() / weights.sum()


class PerSampleLoss(nn.Module):
    """Template of a loss: :meth:`per_sample` values, then :meth:`reduce` over the batch.

    Subclasses implement ``per_sample(*inputs)``, whose last input is the
    class of every sample; ``forward`` is their (cost-sensitive) mean, as
    in pytorch-metric-learning's split of ``compute_loss`` and reduction.

    Parameters
    ----------
    cost_sensitive : bool
        Weight each sample by the inverse frequency of its class in the
        batch (Sec. 3.3, step 4); otherwise a plain mean.
    """

    def __init__(self, cost_sensitive):
        super().__init__()
        self.cost_sensitive = cost_sensitive

    def per_sample(self, *inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def reduce(self, values, class_ids, keep=None):
        """Cost-sensitive (or plain) mean of per-sample values.

        With a boolean ``keep``, the mean over those samples only (their
        class frequencies counted among them); an exact zero tied to the
        graph when none is kept, so that backward still runs and gives zeros.
        """
        if keep is not None:
            if not bool(keep.any()):
                return values.sum() * 0.0
            values, class_ids = values[keep], class_ids[keep]
        return weighted_mean(values, sample_weights(class_ids, values, self.cost_sensitive))

    def forward(self, *inputs):
        """Reduced loss: :meth:`reduce` of :meth:`per_sample`."""
        return self.reduce(self.per_sample(*inputs), inputs[-1])




def _masked_logsumexp(logits, mask):
    # Rows with an empty mask get 0 instead of -inf so that neither the value
    # nor the gradient becomes NaN; callers zero those rows' terms.
    has_any = mask.any(dim=1)
    masked = logits.masked_fill(~mask, float("-inf"))
    masked = torch.where(has_any[:, None], masked, torch.zeros_like(masked))
    return torch.logsumexp(masked, dim=1), has_any


class ClusterMarginLoss(PerSampleLoss):
    """Cluster-based large margin loss, Eq. (9) of Huang et al. (TPAMI 2019).

    For a sample ``i`` of cluster ``m`` with centroid ``mu_m`` (the normalised
    mean of the batch samples of that cluster), with ``s`` the scale::

        [ log sum_{k: c(k) != c(m)} exp(s f_i.mu_k) - s (f_i.mu_m - a1) ]_+
      + [ log sum_{k != m, c(k) == c(m)} exp(s f_i.mu_k) - s (f_i.mu_m - a2) ]_+

    A term whose sum is empty (no other class, or no other cluster of the same
    class in the batch) is zero.

    Parameters
    ----------
    inter_margin : float, default=1.0
        ``a1``, the angular margin between clusters of different classes.
    intra_margin : float, default=0.1
        ``a2``, the angular margin between clusters of the same class.
    scale : float, default=8.0
        ``s``, multiplies every inner product. Not in the paper: with unit
        vectors the printed logits lie in [-1, 1] and the softmax is nearly
        flat. ``scale=1`` gives Eq. (9) as printed.
    cost_sensitive : bool, default=True
        Weight each sample by the inverse frequency of its class in the batch
        (Sec. 3.3, step 4); otherwise a plain mean.

    Notes
    -----
    ``forward`` returns the reduced loss; :meth:`per_sample` the unreduced
    values, e.g. to cache them for hard cluster mining.
    """

    def __init__(self, inter_margin=1.0, intra_margin=0.1, scale=8.0, cost_sensitive=True):
        super().__init__(cost_sensitive)
        self.inter_margin = inter_margin
        self.intra_margin = intra_margin
        self.scale = scale

    def per_sample(self, embeddings, cluster_ids, class_ids):
        """Unreduced Eq. (9) for every sample of the batch.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
            Unit-norm embeddings ``f(x_i)``.
        cluster_ids : Tensor of shape (batch_size,)
            Cluster of each sample (any integer ids).
        class_ids : Tensor of shape (batch_size,)
            Class of each sample; constant within a cluster.

        Returns
        -------
        Tensor of shape (batch_size,)
        """
        clusters, member_of = torch.unique(cluster_ids, return_inverse=True)
        n_clusters = clusters.numel()
        sums = embeddings.new_zeros(n_clusters, embeddings.shape[1])
        sums = sums.index_add(0, member_of, embeddings)
        centroids = F.normalize(sums, dim=1)
        centroid_class = class_ids.new_empty(n_clusters).scatter_(0, member_of, class_ids)

        logits = self.scale * embeddings @ centroids.T
        own = logits.gather(1, member_of[:, None]).squeeze(1)
        same_class = centroid_class[None, :] == class_ids[:, None]
        not_own = torch.arange(n_clusters, device=embeddings.device)[None, :] != member_of[:, None]
        loss = embeddings.new_zeros(embeddings.shape[0])
        for mask, margin in ((~same_class, self.inter_margin), (same_class & not_own, self.intra_margin)):
            lse, present = _masked_logsumexp(logits, mask)
            term = F.relu(lse - own + self.scale * margin)
            loss = loss + torch.where(present, term, torch.zeros_like(term))
        return loss


class TripleHeaderHingeLoss(PerSampleLoss):
    """Triple-header hinge loss of LMLE, Eq. (5) of Huang et al. (TPAMI 2019).

    For every anchor ``x_i`` of the batch and its quintuplet partners
    (:func:`mine_quintuplets`), with ``D`` the squared Euclidean distance::

        [g1 + D(x_i, x^{p+})  - D(x_i, x^{p-}) ]_+
      + [g2 + D(x_i, x^{p-})  - D(x_i, x^{p--})]_+
      + [g3 + D(x_i, x^{p--}) - D(x_i, x^n)  ]_+

    These are the slacks ``eps_i, tau_i, sigma_i`` of Eq. (5) at their
    optimum. The partners are re-mined in every batch; the gradient flows
    through the distances, not through the choice of partners.

    A term one of whose two partners is missing from the batch (``x^{p+}``
    for a singleton cluster, ``x^{p-}`` when the anchor's class has a single
    cluster in the batch, ``x^n`` when the batch holds one class) is zero;
    the anchor still counts in the mean, as in
    :class:`~sklearn_clmle.nn.ClusterMarginLoss`.

    Parameters
    ----------
    margins : tuple of 3 floats, default=(0.1, 0.1, 0.2)
        ``(g1, g2, g3)``, margins in squared Euclidean distance (``D`` lies
        in [0, 4] on the unit sphere).
    cost_sensitive : bool, default=True
        Weight each anchor by the inverse frequency of its class in the batch;
        otherwise a plain mean.

    Notes
    -----
    Same interface as :class:`~sklearn_clmle.nn.ClusterMarginLoss`:
    :meth:`per_sample`, :meth:`reduce` and ``forward``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.nn import TripleHeaderHingeLoss
    >>> points = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    >>> loss = TripleHeaderHingeLoss(margins=(0.1, 0.1, 0.2))
    >>> loss.per_sample(points, torch.tensor([0, 0, 1, 2]),
    ...                 torch.tensor([0, 0, 0, 1])).shape
    torch.Size([4])
    """

    def __init__(self, margins=(0.1, 0.1, 0.2), cost_sensitive=True):
        super().__init__(cost_sensitive)
        self.margins = tuple(margins)

    def per_sample(self, embeddings, cluster_ids, class_ids):
        """Unreduced Eq. (5), ``eps_i + tau_i + sigma_i``, for every anchor.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
            Unit-norm embeddings.
        cluster_ids : Tensor of shape (batch_size,)
            Cluster of each sample.
        class_ids : Tensor of shape (batch_size,)
            Class of each sample; constant within a cluster.

        Returns
        -------
        Tensor of shape (batch_size,)
        """
        _, squared = pairwise_distances(embeddings)
        partners, valid = _mine(squared.detach(), cluster_ids, class_ids)
        anchors = torch.arange(squared.shape[0], device=squared.device)[:, None]
        # A missing partner reads the anchor's own (zero) distance; its terms
        # are masked out below.
        distances = squared.gather(1, torch.where(valid, partners, anchors))
        loss = squared.new_zeros(squared.shape[0])
        for near, far, margin in zip(range(3), range(1, 4), self.margins):
            term = F.relu(margin + distances[:, near] - distances[:, far])
            loss = loss + torch.where(valid[:, near] & valid[:, far], term, 0.0)
        return loss
