"""Losses of the CLMLE family as plain torch modules (no scikit-learn inside)."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ClusterMarginLoss", "inverse_frequency_weights"]


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
    _, inverse, counts = torch.unique(class_codes, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].to(dtype or torch.get_default_dtype())


def _weighted_mean(values, class_codes, cost_sensitive):
    if not cost_sensitive:
        return values.mean()
    # Weights in the values' dtype: 1 / n_c rounded to float32 would bias a
    # float64 loss by about 1e-8 relative.
    weights = inverse_frequency_weights(class_codes, dtype=values.dtype)
    return (weights * values).sum() / weights.sum()


def _masked_logsumexp(logits, mask):
    # Rows with an empty mask get 0 instead of -inf so that neither the value
    # nor the gradient becomes NaN; callers zero those rows' terms.
    has_any = mask.any(dim=1)
    masked = logits.masked_fill(~mask, float("-inf"))
    masked = torch.where(has_any[:, None], masked, torch.zeros_like(masked))
    return torch.logsumexp(masked, dim=1), has_any


class ClusterMarginLoss(nn.Module):
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
        super().__init__()
        self.inter_margin = inter_margin
        self.intra_margin = intra_margin
        self.scale = scale
        self.cost_sensitive = cost_sensitive

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

    def reduce(self, values, class_ids):
        """Cost-sensitive (or plain) mean of per-sample values."""
        return _weighted_mean(values, class_ids, self.cost_sensitive)

    def forward(self, embeddings, cluster_ids, class_ids):
        """Reduced loss: :meth:`reduce` of :meth:`per_sample`."""
        return self.reduce(self.per_sample(embeddings, cluster_ids, class_ids), class_ids)
