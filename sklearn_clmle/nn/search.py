"""Nearest-cluster scoring: CLMLE Eq. (10) and LMLE's cluster-wise kNN rule (pure torch)."""

import torch

__all__ = ["nearest_cluster_log_scores", "search_chunk_size"]

#: Elements of one query chunk's work arrays (similarities to every centroid,
#: candidates), per device type. On a CPU, blocks of about a million
#: similarities (4 MB) stay in cache between the product, the top-N and the
#: per-class maxima (``docs/benchmarks.md``, "Speed at scale"); a GPU wants
#: large blocks (few launches).
_MAX_CHUNK_ELEMENTS_CPU = 1 << 20
_MAX_CHUNK_ELEMENTS = 1 << 23


def nearest_cluster_log_scores(queries, centroids, cluster_class, n_classes, n_neighbors,
                               scale=1.0, chunk_size=4096, rule="clmle", every_class=False,
                               class_log_weight=None, return_similarity=False):
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

    ``class_log_weight`` adds a per-class log weight to the terms of that
    class's clusters, ``s * q.mu_k + log w_c(k)``: with ``w_c`` the inverse
    number of clusters of class ``c`` (raised to a power), a class with
    hundreds of clusters stops outweighing one with two in the rival sums (a
    prior correction). The weights do not change which clusters are
    retrieved (those nearest by similarity), so several rows of weights are
    scored from one search: the products and the top-N, about half of a
    search over a grid of ``N``, are shared.

    The scores are computed in float64 from the similarities of one matrix
    product per chunk of queries, in the inputs' precision (no candidate is
    re-scored: gathering every query's candidate rows cost more than the
    product itself). A BLAS may round a product's last bits differently for
    different numbers of rows, so every product has ``chunk_size`` rows (the
    last chunk padded with zeros); with that, a query's scores do not depend
    on the other queries of its chunk on MKL (tested). Every chunking is
    deterministic.

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
    class_log_weight : Tensor of shape (n_classes,) or (n_weights, n_classes), default=None
        Log weight of each class's terms (``None``: all zero). A matrix scores
        every row of weights from the same search.
    return_similarity : bool, default=False
        Also return the ``(n_queries, n_clusters)`` cosine similarities the
        search computed (for callers that explain the decision: no second
        product). It holds ``n_queries x n_clusters`` values: pass a bounded
        number of queries.

    Returns
    -------
    Tensor of shape (n_queries, n_classes), or a list of them, one per ``N``
        With a matrix of ``class_log_weight``, a list of those, one per row.
    similarity : Tensor of shape (n_queries, n_clusters)
        Only with ``return_similarity``.
    """
    if rule not in ("clmle", "lmle"):
        raise ValueError(f"rule must be 'clmle' or 'lmle'; got {rule!r}.")
    many = not isinstance(n_neighbors, int)
    values = [min(int(n), centroids.shape[0]) for n in (n_neighbors if many else [n_neighbors])]
    widest = max(values)
    if class_log_weight is None:
        class_log_weight = centroids.new_zeros(n_classes, dtype=torch.float64)
    elif class_log_weight.dim() not in (1, 2) or class_log_weight.shape[-1] != n_classes:
        raise ValueError(f"class_log_weight must hold one log weight per class, shape "
                         f"({n_classes},) or (n_weights, {n_classes}); got "
                         f"{tuple(class_log_weight.shape)}. (It replaced the per-cluster "
                         f"log_weight: pass the weight of each class.)")
    weights = class_log_weight.to(device=centroids.device, dtype=torch.float64)
    weighted_rows = weights.dim() == 2
    weights = weights.reshape(-1, n_classes)
    has_cluster = torch.bincount(cluster_class, minlength=n_classes) > 0
    chunk_size = search_chunk_size(centroids.shape[0], n_classes, widest, queries.device.type,
                                   chunk_size)
    scores = [[[] for _ in values] for _ in weights]
    similarities = []
    # The retrieved set is each class's nearest cluster (see below).
    nearest_of_each_class = every_class and widest == 1 and scale > 0
    for chunk in torch.split(queries, chunk_size):
        # Every product has the same shape (the last chunk is padded): a BLAS
        # picks its kernel, and so the rounding of the last bits, by shape
        # (one row goes through gemv), so a query then scores the same
        # whatever other queries share its chunk (tested on MKL).
        padded = torch.cat([chunk, chunk.new_zeros(chunk_size - len(chunk), chunk.shape[1])])
        best = None
        if every_class:
            best, transposed = _nearest_similarity(padded, centroids, cluster_class, n_classes)
            best = scale * best[:len(chunk)].double()
        if nearest_of_each_class:
            if return_similarity:
                similarities.append(transposed[:, :len(chunk)])
            # The nearest cluster is the nearest of its class, so the
            # retrieved set is each class's nearest cluster: the class maxima
            # are all the search needs (no query x centroid product, no
            # top-1: two thirds of a search), scored densely. A class without
            # clusters needs no mask: its maximum is -inf, and so is its logit
            # for a positive scale and finite weights.
            for per_weight, weight in zip(scores, weights):
                one_each = _one_cluster_per_class_scores(best + weight, rule).to(queries.dtype)
                for per_n in per_weight:
                    per_n.append(one_each)
            continue
        similarity = (padded @ centroids.T)[:len(chunk)]
        if return_similarity:
            similarities.append(similarity)
        # topk sorts by similarity, so every N reads a prefix of one search.
        nearest = similarity.topk(widest, dim=1)
        nearest_class = cluster_class[nearest.indices]
        nearest_similarity = scale * nearest.values.double()
        for per_weight, weight in zip(scores, weights):
            nearest_logits = nearest_similarity + weight[nearest_class]
            best_logits = (None if best is None
                           else (best + weight).masked_fill(~has_cluster, float("-inf")))
            # N clipped to the clusters repeats on small data (12 candidates,
            # a few clusters): each distinct N is scored once.
            by_n = {}
            for per_n, n in zip(per_weight, values):
                if n not in by_n:
                    by_n[n] = _class_scores(nearest_logits[:, :n], nearest_class[:, :n],
                                            n_classes, rule, best_logits).to(queries.dtype)
                per_n.append(by_n[n])
    scores = [[torch.cat(s) if s else queries.new_zeros(0, n_classes) for s in per_weight]
              for per_weight in scores]
    scores = [per_weight if many else per_weight[0] for per_weight in scores]
    scores = scores if weighted_rows else scores[0]
    if not return_similarity:
        return scores
    if not similarities:
        return scores, queries.new_zeros(0, centroids.shape[0])
    if len(similarities) == 1:  # a view: no copy of one chunk's product
        return scores, similarities[0].T if nearest_of_each_class else similarities[0]
    if nearest_of_each_class:
        # Centroids x queries blocks: joined along their rows and returned
        # transposed, as copying them into queries x centroids is slower.
        return scores, torch.cat(similarities, dim=1).T
    return scores, torch.cat(similarities)


def search_chunk_size(n_centroids, n_classes, n_neighbors, device_type="cpu", chunk_size=4096):
    """Queries per block of :func:`nearest_cluster_log_scores` (at most
    ``chunk_size``): its work arrays near a fixed size. A caller that passes
    at most this many queries gets one block, so ``return_similarity`` gives
    a view instead of a copy."""
    per_query = n_centroids + 4 * (n_neighbors + n_classes)
    budget = _MAX_CHUNK_ELEMENTS_CPU if device_type == "cpu" else _MAX_CHUNK_ELEMENTS
    return max(1, min(chunk_size, budget // per_query))


def _nearest_similarity(chunk, centroids, cluster_class, n_classes):
    """``(n_queries, n_classes)``: each class's largest similarity to the
    queries (-inf for a class without centroids), and the ``(n_centroids,
    n_queries)`` similarities it reduced.

    A second, transposed product (``centroids @ queries.T``) and one
    scatter-max along its rows: every element moves along whole rows,
    vectorised over the queries, where the queries x centroids layout
    reduces short strided runs per class and a loop over per-class blocks
    pays per class (``docs/benchmarks.md``, "Speed at scale").
    """
    transposed = centroids @ chunk.T
    index = cluster_class.unsqueeze(1).expand_as(transposed)
    best = transposed.new_full((n_classes, chunk.shape[0]), float("-inf"))
    return best.scatter_reduce(0, index, transposed, reduce="amax").T, transposed


def _one_cluster_per_class_scores(logits, rule):
    """``(n_queries, n_classes)`` scores when the retrieved set is exactly
    each class's nearest cluster (``N = 1`` with ``every_class``), from those
    clusters' logits (``-inf`` for a class without clusters).

    Every class's own term is its one logit and its rivals are the other
    classes' logits, so the scores are dense operations on one matrix: what
    :func:`_class_scores` gives for this set (same rule, same handling of
    the top class's rival sum; equal up to the float64 order of a sum, and
    the float32 scores matched bit for bit in the benchmarks), without the
    general case's scatters, which dominate the search at N = 1. A class
    without clusters needs no mask: its
    ``-inf`` logit minus a finite rival stays ``-inf``, and a lone class's
    missing rivals (``log 0``) give it ``+inf``, as in the general case.
    """
    top, top_class = logits.max(dim=1, keepdim=True)
    if rule == "lmle":
        second = logits.scatter(1, top_class, float("-inf")).max(dim=1, keepdim=True).values
        rival = top.expand_as(logits).scatter(1, top_class, second)
    else:
        # As in _class_scores: "all minus own" for every class but the top
        # one, whose rivals may be e^-40 against 1 and are added up directly.
        weights = torch.exp(logits - top)
        rival_sum = weights.sum(dim=1, keepdim=True) - weights
        top_rivals = weights.scatter(1, top_class, 0.0).sum(dim=1, keepdim=True)
        rival = top + torch.log(rival_sum.scatter(1, top_class, top_rivals).clamp_min(0))
    return logits - rival


def _class_scores(logits, classes, n_classes, rule, best=None):
    """``(n_queries, n_classes)`` scores from each query's retrieved clusters:
    the ``N`` nearest (``logits``, ``classes``: ``(n_queries, N)``, finite)
    and, for ``every_class``, the nearest cluster of every class absent from
    them (``best``: each class's nearest logit, ``(n_queries, n_classes)``,
    ``-inf`` for a class without clusters).

    The ``N`` nearest go through per-class scatters; the joining clusters
    stay a dense per-class matrix, cheaper than scattering them with the
    ``N`` as ``N + n_classes`` candidates (``docs/benchmarks.md``, "Speed
    at scale"). Memory stays
    ``O(queries * (N + classes))`` even with thousands of identities.
    """
    n_queries = logits.shape[0]
    among_nearest = torch.zeros(n_queries, n_classes, dtype=torch.bool,
                                device=logits.device).scatter_(1, classes, True)
    # Only classes absent from the N join with their nearest cluster (a
    # present class's nearest is already among them).
    joining = (logits.new_full((n_queries, n_classes), float("-inf")) if best is None
               else best.masked_fill(among_nearest, float("-inf")))
    joined = torch.isfinite(joining)
    own = logits.new_full((n_queries, n_classes), float("inf"))
    own = own.scatter_reduce(1, classes, logits, reduce="amin")
    # A joining class has no cluster among the N: its one cluster is its own term.
    own = torch.where(joined, joining, own)
    present = among_nearest | joined
    top_nearest, top_at = logits.max(dim=1, keepdim=True)
    top_joining, joining_at = joining.max(dim=1, keepdim=True)
    # Ties go to the N (as in one maximum over the N followed by the joining).
    from_joining = top_joining > top_nearest
    top = torch.where(from_joining, top_joining, top_nearest)
    top_class = torch.where(from_joining, joining_at, classes.gather(1, top_at))
    rival_of_top = classes != top_class
    if rule == "lmle":
        # Every class but the top cluster's has that cluster as its nearest
        # rival; the top class's nearest rival is its best other-class one.
        top_rival = torch.maximum(
            logits.masked_fill(~rival_of_top, float("-inf")).max(dim=1, keepdim=True).values,
            joining.scatter(1, top_class, float("-inf")).max(dim=1, keepdim=True).values)
        rival = top.expand(n_queries, n_classes).scatter(1, top_class, top_rival)
    else:
        # The rival sum is "all retrieved minus the class's own"; it is
        # exactly zero when only the class is retrieved. The subtraction loses
        # no precision except for the class of the top cluster (its rivals may
        # be e^-40 against 1, which would round to zero and score +inf), so
        # that class's rival sum is added up directly instead.
        weights = torch.exp(logits - top)
        joining_weights = torch.exp(joining - top)
        per_class = joining_weights.scatter_add(1, classes, weights)
        rival_sum = (weights.sum(dim=1, keepdim=True)
                     + joining_weights.sum(dim=1, keepdim=True)) - per_class
        top_rivals = (torch.where(rival_of_top, weights, 0.0).sum(dim=1, keepdim=True)
                      + joining_weights.scatter(1, top_class, 0.0).sum(dim=1, keepdim=True))
        rival_sum = rival_sum.scatter(1, top_class, top_rivals)
        rival = top + torch.log(rival_sum.clamp_min(0))
    return torch.where(present, own - rival, float("-inf"))
