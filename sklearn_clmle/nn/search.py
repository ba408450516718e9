"""Nearest-cluster scoring: CLMLE Eq. (10) and LMLE's cluster-wise kNN rule (pure torch)."""

import torch

__all__ = ["nearest_cluster_log_scores"]


def nearest_cluster_log_scores(queries, centroids, cluster_class, n_classes, n_neighbors,
                               scale=1.0, chunk_size=4096, rule="clmle"):
    """Per-class scores of the k-nearest-cluster rule for every query.

    For a query ``q`` and its ``N`` most similar centroids, class ``c`` scores,
    with ``rule="clmle"`` (the log of the Eq. (10) ratio)::

        s * min_{m in N, c(m) = c} q.mu_m  -  log sum_{k in N, c(k) != c} exp(s * q.mu_k)

    and with ``rule="lmle"`` (LMLE's cluster-wise kNN rule)::

        s * min_{m in N, c(m) = c} q.mu_m  -  max_{k in N, c(k) != c} s * q.mu_k

    On the unit sphere ``D(q, mu) = 2 - 2 q.mu``, so the LMLE score is
    ``s / 2 * (min_{c(k) != c} D(q, mu_k) - max_{c(m) = c} D(q, mu_m))``, the
    rule of the LMLE slides up to the factor ``s / 2`` (which does not change
    the argmax). It is the CLMLE score with the log-sum-exp over rival
    clusters replaced by their maximum (its large-``s`` limit).

    Cases the papers leave open, handled alike by both rules:

    * a class with no cluster among the ``N`` scores ``-inf`` (the ``min`` of
      an empty set of ``exp`` terms is taken as 0);
    * a class with no rival cluster (all ``N`` clusters are its own) scores
      ``+inf``; only that class can then be present, so it wins.

    Parameters
    ----------
    queries : Tensor of shape (n_queries, dim)
        Unit-norm query embeddings.
    centroids : Tensor of shape (n_clusters, dim)
        Unit-norm cluster centroids.
    cluster_class : Tensor of shape (n_clusters,)
        Class code of each cluster.
    n_classes : int
        Number of classes.
    n_neighbors : int or sequence of int
        ``N``, clipped to the number of clusters. A sequence scores every
        ``N`` from one search (e.g. to choose ``N`` on validation data).
    scale : float, default=1.0
        ``s``, multiplies the similarities (1.0 is the paper's rule).
    chunk_size : int, default=4096
        Queries scored per matrix product, bounding memory.
    rule : {"clmle", "lmle"}, default="clmle"
        How rival clusters enter the score: log-sum-exp or maximum.

    Returns
    -------
    Tensor of shape (n_queries, n_classes), or a list of them, one per ``N``
    """
    if rule not in ("clmle", "lmle"):
        raise ValueError(f"rule must be 'clmle' or 'lmle'; got {rule!r}.")
    many = not isinstance(n_neighbors, int)
    values = [min(int(n), centroids.shape[0]) for n in (n_neighbors if many else [n_neighbors])]
    scores = [[] for _ in values]
    for chunk in torch.split(queries, chunk_size):
        # topk sorts by similarity, so every N reads a prefix of one search.
        similarity, nearest = (chunk @ centroids.T).topk(max(values), dim=1)
        logits, classes = scale * similarity, cluster_class[nearest]
        for per_n, n in zip(scores, values):
            per_n.append(_class_scores(logits[:, :n], classes[:, :n], n_classes, rule))
    scores = [torch.cat(s) if s else queries.new_zeros(0, n_classes) for s in scores]
    return scores if many else scores[0]


def _class_scores(logits, classes, n_classes, rule):
    # Scatter per class instead of a (queries, N, classes) one-hot so memory
    # stays O(queries * (N + classes)) even with thousands of identities.
    n_queries = logits.shape[0]
    own = logits.new_full((n_queries, n_classes), float("inf"))
    own = own.scatter_reduce(1, classes, logits, reduce="amin")
    present = torch.zeros_like(own, dtype=torch.bool).scatter_(1, classes, True)
    top, top_at = logits.max(dim=1, keepdim=True)
    top_class = classes.gather(1, top_at)
    rival_of_top = classes != top_class
    if rule == "lmle":
        # Every class but the top cluster's has that cluster as its nearest
        # rival; the top class's nearest rival is its best other-class one.
        rival = top.expand(n_queries, n_classes).double()
        top_rival = logits.masked_fill(~rival_of_top, float("-inf")).max(dim=1, keepdim=True)
        rival = rival.scatter(1, top_class, top_rival.values.double())
    else:
        # The rival sum is "all retrieved minus the class's own", in float64;
        # it is exactly zero when only the class is retrieved. The subtraction
        # loses no precision except for the class of the top cluster (its
        # rivals may be e^-40 against 1, which would round to zero and score
        # +inf), so that class's rival sum is added up directly instead.
        weights = torch.exp((logits - top).double())
        per_class = weights.new_zeros(n_queries, n_classes).scatter_add_(1, classes, weights)
        rival_sum = weights.sum(dim=1, keepdim=True) - per_class
        top_rivals = torch.where(rival_of_top, weights, 0.0).sum(dim=1, keepdim=True)
        rival_sum = rival_sum.scatter(1, top_class, top_rivals)
        rival = top.double() + torch.log(rival_sum.clamp_min(0))
    score = (own.double() - rival).to(logits.dtype)
    return torch.where(present, score, float("-inf"))
