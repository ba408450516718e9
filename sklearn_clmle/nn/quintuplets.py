"""LMLE's quintuplets, Eq. (4) of Huang et al.: the partners of every anchor (pure torch).

The triple-header hinge loss of Eq. (5) on them is
:class:`~sklearn_clmle.nn.losses.TripleHeaderHingeLoss`.
"""

from collections import namedtuple

import torch

from .functional import pairwise_distances

__all__ = ["Quintuplets", "mine_quintuplets"]

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
