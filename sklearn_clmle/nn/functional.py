"""Numerically safe helpers shared by the torch modules (pure torch)."""

import torch
import torch.nn.functional as F

__all__ = ["pairwise_distances", "unit_normalize"]


def unit_normalize(x, dim=1):
    """``x / ||x||`` along ``dim``, safe for any finite scale.

    ``torch.nn.functional.normalize`` squares the values: in float32 a row
    with entries above about 1e19 overflows to an infinite norm and comes
    back as zeros, and one below about 1e-12 is divided by ``eps`` and does
    not reach unit norm. Dividing by the largest absolute value first makes
    every non-zero row unit-norm; an all-zero row stays zero. Gradients are
    those of ``F.normalize`` (the result does not depend on the row's scale).

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.nn.functional import unit_normalize
    >>> unit_normalize(torch.tensor([[3e30, 4e30], [3e-30, 4e-30]])).round(decimals=6).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.6000000238418579, 0.800000011920929]]
    """
    largest = x.detach().abs().amax(dim=dim, keepdim=True)
    tiny = torch.finfo(x.dtype).tiny if x.is_floating_point() else 1e-38
    return F.normalize(x / largest.clamp_min(tiny), dim=dim)


def pairwise_distances(embeddings):
    """Euclidean distances between all rows, and their squares.

    Computed from the differences (not from the Gram matrix), so coincident
    points are exactly 0 apart and get a zero (not NaN) gradient.

    Parameters
    ----------
    embeddings : Tensor of shape (batch_size, dim)

    Returns
    -------
    distances : Tensor of shape (batch_size, batch_size)
        ``||f_i - f_j||_2``.
    squared : Tensor of shape (batch_size, batch_size)
        ``D(f_i, f_j) = ||f_i - f_j||_2^2``.
    """
    distances = torch.cdist(embeddings, embeddings,
                            compute_mode="donot_use_mm_for_euclid_dist")
    return distances, distances.pow(2)
