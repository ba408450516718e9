"""Nearest-cluster scoring: CLMLE Eq. (10) and LMLE's cluster-wise kNN rule (pure torch)."""

import torch

__all__ = ["nearest_cluster_log_scores"]

#: Elements of one query chunk's work arrays (similarities to every centroid,
#: gathered candidates): bounds memory whatever the numbers of clusters and classes.
_MAX_CHUNK_ELEMENTS = 1 << 23


def nearest_cluster_log_scores(queries, centroids, cluster_class, n_classes, n_neighbors,
                               scale=1.0, chunk_size=4096, rule="clmle", every_class=False,
                               log_weight=None):
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

    Cases the papers leave open:

    * ``every_class=False`` (the rules as printed): a class with no cluster
      among the ``N`` scores ``-inf`` (the ``min`` of an empty set of ``exp``
      terms is taken as 0); a class with no rival cluster (all ``N`` are its
      own) scores ``+inf``, and only that class can then be present, so it wins.
    * ``every_class=True``: the retrieved set is the ``N`` nearest clusters
      plus the nearest cluster of every class absent from them, so every class
      has an own term and (with two classes or more) rivals: the scores are
      finite and graded for every class. Where all classes are among the
      ``N``, they equal the rule as printed.

    ``log_weight`` adds a per-cluster log weight to every term,
    ``s * q.mu_k + log w_k``: with ``w_k`` the inverse number of clusters of
    the class of ``k`` (raised to a power), a class with hundreds of clusters
    stops outweighing one with two in the rival sums (a prior correction).

    The similarities of the retrieved clusters are recomputed one query at a
    time (a dot product per query and cluster, in the inputs' precision) and
    scored in float64, so a query's scores do not depend on the other queries
    of its chunk (a float32 matrix product does, in its last bits).

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
        Queries scored per matrix product (fewer when the clusters are many),
        bounding memory.
    rule : {"clmle", "lmle"}, default="clmle"
        How rival clusters enter the score: log-sum-exp or maximum.
    every_class : bool, default=False
        Add each absent class's nearest cluster to the retrieved set.
    log_weight : Tensor of shape (n_clusters,) or None, default=None
        Log weight of each cluster's term (``None``: all zero).

    Returns
    -------
    Tensor of shape (n_queries, n_classes), or a list of them, one per ``N``
    """
    if rule not in ("clmle", "lmle"):
        raise ValueError(f"rule must be 'clmle' or 'lmle'; got {rule!r}.")
    many = not isinstance(n_neighbors, int)
    values = [min(int(n), centroids.shape[0]) for n in (n_neighbors if many else [n_neighbors])]
    widest = max(values)
    if log_weight is None:
        log_weight = centroids.new_zeros(centroids.shape[0], dtype=torch.float64)
    log_weight = log_weight.to(device=centroids.device, dtype=torch.float64)
    per_query = max(centroids.shape[0], (widest + n_classes) * (centroids.shape[1] + 1))
    chunk_size = max(1, min(chunk_size, _MAX_CHUNK_ELEMENTS // per_query))
    scores = [[] for _ in values]
    # The class layout is read once (host round trips), not once per chunk.
    slices = _class_slices(cluster_class, n_classes) if every_class else None
    for chunk in torch.split(queries, chunk_size):
        similarity = chunk @ centroids.T
        # topk sorts by similarity, so every N reads a prefix of one search.
        nearest = similarity.topk(widest, dim=1).indices
        nearest_logits = _exact_logits(chunk, centroids, nearest, scale, log_weight)
        if every_class:
            best, has_cluster = _nearest_of_each_class(similarity, cluster_class, n_classes,
                                                       slices)
            best_logits = _exact_logits(chunk, centroids, best, scale, log_weight)
        for per_n, n in zip(scores, values):
            logits, classes = nearest_logits[:, :n], cluster_class[nearest[:, :n]]
            if every_class:
                # Only classes absent from the N join with their nearest
                # cluster (a present class's nearest is already among them);
                # the other entries are masked out of every term.
                present = torch.zeros_like(best, dtype=torch.bool).scatter_(1, classes, True)
                joining = best_logits.masked_fill(present | ~has_cluster, float("-inf"))
                logits = torch.cat([logits, joining], dim=1)
                classes = torch.cat([classes, cluster_class[best]], dim=1)
            per_n.append(_class_scores(logits, classes, n_classes, rule).to(queries.dtype))
    scores = [torch.cat(s) if s else queries.new_zeros(0, n_classes) for s in scores]
    return scores if many else scores[0]


#: Up to this many classes, each class's nearest centroid is read from a
#: slice per class when the centroids are grouped by class (one pass over the
#: similarities, values and indices together); beyond it, Python's loop over
#: the classes costs more than the scatter passes.
_MAX_SLICED_CLASSES = 64


def _class_slices(cluster_class, n_classes):
    """``(code, start, stop)`` of every class with centroids when the centroids
    are grouped by class (as ``cluster_within_classes`` returns them) and the
    classes are few; ``None`` otherwise."""
    grouped = bool((cluster_class[1:] >= cluster_class[:-1]).all())
    if n_classes > _MAX_SLICED_CLASSES or not grouped:
        return None
    stops = torch.cumsum(torch.bincount(cluster_class, minlength=n_classes), 0).tolist()
    starts = [0] + stops[:-1]
    return [(code, start, stop) for code, (start, stop) in enumerate(zip(starts, stops))
            if stop > start]


def _nearest_of_each_class(similarity, cluster_class, n_classes, slices=None):
    """Index of each class's most similar centroid, ``(n_queries, n_classes)``,
    and whether the class has a centroid at all.

    ``slices`` is :func:`_class_slices` of ``cluster_class`` (``None``: the
    scatter passes over the whole matrix, for any layout)."""
    if slices is not None:
        # argmax gives the first centroid attaining each slice's maximum.
        first = torch.zeros(similarity.shape[0], n_classes, dtype=torch.long,
                            device=similarity.device)
        has_cluster = torch.zeros(n_classes, dtype=torch.bool, device=similarity.device)
        for code, start, stop in slices:
            first[:, code] = similarity[:, start:stop].argmax(dim=1) + start
            has_cluster[code] = True
        return first, has_cluster.expand_as(first)
    index = cluster_class.expand_as(similarity)
    top = similarity.new_full((similarity.shape[0], n_classes), float("-inf"))
    top = top.scatter_reduce(1, index, similarity, reduce="amax")
    # The centroids attaining their class's maximum, found with one
    # comparison and a nonzero (scatter_reduce is the slow pass on CPU, so
    # only one runs over the whole matrix); ties keep the first centroid, the
    # smallest index, by an amin over the few hits. A class without
    # clusters gets index 0, which the caller masks out.
    query, centroid = torch.nonzero(similarity == top.gather(1, index), as_tuple=True)
    first = torch.full((top.numel(),), similarity.shape[1], dtype=torch.long,
                       device=similarity.device)
    first = first.scatter_reduce(0, query * n_classes + cluster_class[centroid], centroid,
                                 reduce="amin").view(top.shape)
    has_cluster = first < similarity.shape[1]
    return torch.where(has_cluster, first, 0), has_cluster


def _exact_logits(queries, centroids, candidates, scale, log_weight):
    """``s q.mu_k + log w_k`` of each query's candidates, as float64.

    One dot product per (query, candidate), reduced over the features alone
    (a batch of matrix-vector products): the same value whatever else is in
    the chunk. The products run in the inputs' precision (float32 rows are
    not copied to float64: that copy of every candidate row was the largest
    cost of the search); only the results are widened for the scores.
    """
    rows = centroids[candidates]
    similarity = torch.bmm(rows, queries.unsqueeze(2).to(rows.dtype)).squeeze(2)
    return scale * similarity.double() + log_weight[candidates]


def _class_scores(logits, classes, n_classes, rule):
    # Scatter per class instead of a (queries, N, classes) one-hot so memory
    # stays O(queries * (N + classes)) even with thousands of identities.
    # Entries at -inf are not retrieved (masked candidates).
    n_queries = logits.shape[0]
    retrieved = torch.isfinite(logits)
    own = logits.new_full((n_queries, n_classes), float("inf"))
    own = own.scatter_reduce(1, classes, logits.masked_fill(~retrieved, float("inf")),
                             reduce="amin")
    present = torch.zeros_like(own).scatter_reduce(1, classes, retrieved.to(own.dtype),
                                                   reduce="amax") > 0
    top, top_at = logits.max(dim=1, keepdim=True)
    top_class = classes.gather(1, top_at)
    rival_of_top = (classes != top_class) & retrieved
    if rule == "lmle":
        # Every class but the top cluster's has that cluster as its nearest
        # rival; the top class's nearest rival is its best other-class one.
        rival = top.expand(n_queries, n_classes)
        top_rival = logits.masked_fill(~rival_of_top, float("-inf")).max(dim=1, keepdim=True)
        rival = rival.scatter(1, top_class, top_rival.values)
    else:
        # The rival sum is "all retrieved minus the class's own"; it is
        # exactly zero when only the class is retrieved. The subtraction loses
        # no precision except for the class of the top cluster (its rivals may
        # be e^-40 against 1, which would round to zero and score +inf), so
        # that class's rival sum is added up directly instead.
        weights = torch.exp(logits - top)
        per_class = weights.new_zeros(n_queries, n_classes).scatter_add_(1, classes, weights)
        rival_sum = weights.sum(dim=1, keepdim=True) - per_class
        top_rivals = torch.where(rival_of_top, weights, 0.0).sum(dim=1, keepdim=True)
        rival_sum = rival_sum.scatter(1, top_class, top_rivals)
        rival = top + torch.log(rival_sum.clamp_min(0))
    return torch.where(present, own - rival, float("-inf"))

