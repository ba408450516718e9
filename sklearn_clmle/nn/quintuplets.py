"""LMLE's quintuplets and triple-header hinge loss, Eq. (4)-(5) of Huang et al. (pure torch)."""

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

from .losses import _weighted_mean
from .pair_losses import pairwise_distances

__all__ = ["Quintuplets", "TripleHeaderHingeLoss", "mine_quintuplets"]

#: Columns of :attr:`Quintuplets.partners`, in the order of Eq. (4).
PARTNERS = ("p+", "p-", "p--", "n")

Quintuplets = namedtuple("Quintuplets", ["partners", "valid"])
Quintuplets.__doc__ = """Partners of every anchor of a batch (see :func:`mine_quintuplets`).

partners : Tensor of shape (batch_size, 4), dtype long
    Batch indices of ``x^{p+}``, ``x^{p-}``, ``x^{p--}`` and ``x^n``; ``-1``
    where the partner does not exist in the batch.
valid : Tensor of shape (batch_size, 4), dtype bool
    Whether each partner exists.
"""


def mine_quintuplets(embeddings, cluster_ids, class_ids):
    """Quintuplet partners of every anchor of a batch (LMLE, Eq. (4)).

    With ``D`` the squared Euclidean distance (``2 - 2 cos`` on the unit
    sphere), each anchor ``x_i`` gets:

    * ``x^{p+}``: its most distant neighbour in its own cluster;
    * ``x^{p-}``: its nearest neighbour of the same class in another cluster;
    * ``x^{p--}``: its most distant neighbour of the same class (any cluster);
    * ``x^n``: its nearest neighbour of another class.

    Ties go to the lowest batch index. The search is one distance matrix and
    four masked arg-reductions; nothing loops over samples.

    Parameters
    ----------
    embeddings : Tensor of shape (batch_size, dim)
        Unit-norm embeddings.
    cluster_ids : Tensor of shape (batch_size,)
        Cluster of each sample (any integer ids, unique across classes).
    class_ids : Tensor of shape (batch_size,)
        Class of each sample.

    Returns
    -------
    Quintuplets
        ``partners`` (indices, ``-1`` where missing) and ``valid``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.nn import mine_quintuplets
    >>> points = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    >>> q = mine_quintuplets(points, torch.tensor([0, 0, 1, 2]), torch.tensor([0, 0, 0, 1]))
    >>> q.partners[0].tolist()  # p+, p-, p--, n of the first point
    [1, 2, 2, 3]
    """
    with torch.no_grad():
        _, squared = pairwise_distances(embeddings)
    return _mine(squared, cluster_ids, class_ids)


def _mine(squared, cluster_ids, class_ids):
    """:func:`mine_quintuplets` on a precomputed (detached) distance matrix."""
    eye = torch.eye(squared.shape[0], dtype=torch.bool, device=squared.device)
    same_cluster = cluster_ids[:, None] == cluster_ids[None, :]
    same_class = class_ids[:, None] == class_ids[None, :]
    searches = (
        (same_cluster & ~eye, "max"),
        (same_class & ~same_cluster, "min"),
        (same_class & ~eye, "max"),
        (~same_class, "min"),
    )
    partners, valid = [], []
    for mask, extreme in searches:
        if extreme == "max":
            index = squared.masked_fill(~mask, float("-inf")).argmax(dim=1)
        else:
            index = squared.masked_fill(~mask, float("inf")).argmin(dim=1)
        present = mask.any(dim=1)
        partners.append(torch.where(present, index, -1))
        valid.append(present)
    return Quintuplets(torch.stack(partners, dim=1), torch.stack(valid, dim=1))


class TripleHeaderHingeLoss(nn.Module):
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
        super().__init__()
        self.margins = tuple(margins)
        self.cost_sensitive = cost_sensitive

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

    def reduce(self, values, class_ids):
        """Cost-sensitive (or plain) mean of per-sample values."""
        return _weighted_mean(values, class_ids, self.cost_sensitive)

    def forward(self, embeddings, cluster_ids, class_ids):
        """Reduced loss: :meth:`reduce` of :meth:`per_sample`."""
        return self.reduce(self.per_sample(embeddings, cluster_ids, class_ids), class_ids)
