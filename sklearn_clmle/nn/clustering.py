"""Equal-size spherical k-means on torch tensors.

Written by hand because no maintained library offers it: scikit-learn's
``KMeans`` is Euclidean and unconstrained, faiss is optional and also
unconstrained, and the paper (Sec. 3.2, Eq. 6-7) needs clusters of equal size
on the unit hypersphere so that every cluster is equally hard to collapse.
Everything is batched tensor work: the only Python loops run over k-means
iterations, centroid seeds, assignment rounds and groups of classes of
similar size, never over samples (the random draws of the seeds are taken
class by class, to keep the generator's order).
"""

import torch
import torch.nn.functional as F

from .sampling import check_sample_weight, class_rows_at_most

__all__ = [
    "balanced_assignment",
    "equal_size_spherical_kmeans",
    "cluster_within_classes",
    "n_clusters_for_size",
]


def n_clusters_for_size(n_samples, cluster_size):
    """Number of clusters ``K = max(1, floor(n_samples / cluster_size))``.

    Parameters
    ----------
    n_samples : int
        Size of the class ``L_c``.
    cluster_size : int
        Target cluster size ``l``.

    Returns
    -------
    int
        The number of clusters of the paper's Sec. 3.2, at least one.
    """
    return max(1, int(n_samples) // int(cluster_size))


#: Preferences of a leftover sample in each pass of the second placement.
MAX_LEFTOVER_PREFERENCES = 64

#: Above this many clusters, seeds are distinct random samples, not k-means++.
MAX_KMEANS_PLUSPLUS_CLUSTERS = 1024


def balanced_assignment(similarity, capacities, *, n_preferences=32):
    """Assign samples to clusters without exceeding each cluster's capacity.

    Capacity-constrained deferred acceptance (Gale-Shapley with quotas):
    every free sample proposes to its most similar cluster not yet tried, each
    cluster keeps its ``capacity`` most similar proposers and rejects the rest.
    The result is stable: no sample and cluster both prefer each other to what
    they got. Each round is one batched sort over the proposals. Samples only
    rank their ``n_preferences`` most similar clusters (a full sort of an
    ``n x K`` matrix dominates the cost otherwise); the few that exhaust that
    list are placed by a second pass over the clusters with room left.

    Parameters
    ----------
    similarity : Tensor of shape (n_samples, n_clusters)
        Higher is better.
    capacities : Tensor of shape (n_clusters,)
        Integer capacities summing to at least ``n_samples``.
    n_preferences : int, default=32
        Length of each sample's ranked list of clusters.

    Returns
    -------
    Tensor of shape (n_samples,)
        Cluster index of each sample.
    """
    top = similarity.topk(min(n_preferences, similarity.shape[1]), dim=1, sorted=True)

    def place_leftovers(rows, room):
        # Second pass: complete preference lists over the clusters with room.
        open_clusters = torch.nonzero(room > 0).flatten()
        sub = balanced_assignment(similarity[rows][:, open_clusters], room[open_clusters],
                                  n_preferences=open_clusters.numel())
        return open_clusters[sub]

    return _deferred_acceptance(top.indices, top.values, capacities, place_leftovers)


def _deferred_acceptance(preference, preference_score, capacities, place_leftovers,
                         n_choices=None, weights=None):
    # preference[i] lists sample i's clusters, best first, with their scores;
    # only its first n_choices[i] entries count (all by default). Samples
    # that exhaust their list go to place_leftovers(leftover_rows, room),
    # which returns their clusters. With ``weights`` (float64, one per
    # sample) a capacity holds weight, not samples: a cluster keeps its best
    # proposers while the weight ranked above each is below its capacity.
    n_samples, n_preferences = preference.shape
    n_clusters = capacities.numel()
    # (Weighted capacities are float sums: compared with a rounding margin.)
    if float(capacities.sum()) < (n_samples if weights is None
                                  else float(weights.sum()) * (1 - 1e-9)):
        raise ValueError("Cluster capacities cannot hold all samples.")
    device = preference.device
    # A round orders the held samples by cluster, then by descending score,
    # ties to the lower sample index (the held rows come in index order and
    # the sort is stable), with one stable integer sort (a radix sort) of
    # ``cluster * 2**32 + descending score bits``. Scores of 64 bits do not
    # fit beside the cluster: they get their place in one global ranking
    # instead (the same order, at the cost of sorting every pair once).
    if preference_score.element_size() <= 4:
        order_key, shift = _descending_bits(preference_score), 32
    else:
        n_pairs = preference_score.numel()
        order_key = torch.empty(n_pairs, dtype=torch.long, device=device)
        order_key[_descending_order(preference_score.flatten())] = torch.arange(
            n_pairs, device=device)
        order_key, shift = order_key.view(n_samples, n_preferences), None
    if n_choices is None:
        n_choices = torch.full((n_samples,), n_preferences, device=device)
    next_choice = torch.zeros(n_samples, dtype=torch.long, device=device)
    assignment = torch.full((n_samples,), -1, dtype=torch.long, device=device)
    rows = torch.arange(n_samples, device=device)
    free_rows = rows[next_choice < n_choices]
    while free_rows.numel():
        proposed = preference[free_rows, next_choice[free_rows]]
        assignment[free_rows] = proposed
        next_choice[free_rows] += 1
        # Only clusters that received proposals can be over capacity. A held
        # sample sits in the cluster of its latest proposal.
        touched = torch.zeros(n_clusters, dtype=torch.bool, device=device)
        touched[proposed] = True
        held = torch.nonzero((assignment >= 0) & touched[assignment]).flatten()
        cluster = assignment[held]
        rank = order_key[held, next_choice[held] - 1]
        key = (cluster << shift) + rank if shift else cluster * order_key.numel() + rank
        rejected = held[_over_capacity(key, cluster, capacities,
                                       None if weights is None else weights[held])]
        assignment[rejected] = -1
        # Only the samples just rejected are free to propose again.
        free_rows = rejected[next_choice[rejected] < n_choices[rejected]]
    leftover = rows[assignment < 0]
    if leftover.numel():
        placed = assignment >= 0
        room = capacities - torch.bincount(
            assignment[placed], None if weights is None else weights[placed],
            minlength=n_clusters)
        assignment[leftover] = place_leftovers(leftover, room)
    return assignment


def _ordered_bits(score):
    # The bit pattern of a float, read as a signed integer and with its
    # magnitude negated for negative floats, orders like the float (-0.0
    # and 0.0 both give 0); int64.
    integer = {2: torch.int16, 4: torch.int32, 8: torch.int64}[score.element_size()]
    bits = score.contiguous().view(integer).long()
    return torch.where(bits >= 0, bits, -(bits & torch.iinfo(integer).max))


def _descending_order(score):
    # argsort(score, descending=True, stable=True) by sorting integers:
    # stable integer sorts are radix sorts, about four times faster than a
    # stable float sort on 1.5e5 scores (CPU).
    return (-_ordered_bits(score)).argsort(stable=True)


def _descending_bits(score):
    # Integers in [0, 2**32) that order like -score (16- or 32-bit floats).
    return (1 << (8 * score.element_size() - 1)) - _ordered_bits(score)


def _over_capacity(key, cluster, capacities, weights=None):
    # Boolean mask of candidates ranked beyond their cluster's capacity. The
    # unique keys sort candidates by cluster, best first inside a cluster.
    # With weights, a candidate's rank is the weight ranked above it.
    order = key.argsort(stable=True)  # unique keys; the stable integer sort is a radix sort
    cluster_sorted = cluster[order]
    counts = torch.bincount(cluster_sorted, minlength=capacities.numel())
    starts = torch.cumsum(counts, 0) - counts
    if weights is None:
        rank = torch.arange(order.numel(), device=key.device) - starts[cluster_sorted]
    else:
        sorted_weights = weights[order]
        above = torch.cumsum(sorted_weights, 0) - sorted_weights
        rank = above - above[starts[cluster_sorted]]
    mask = torch.zeros_like(cluster, dtype=torch.bool)
    mask[order] = rank >= capacities[cluster_sorted]
    return mask


def _padded(starts, counts):
    # Index matrix of ``counts[g]`` consecutive items from ``starts[g]`` per
    # row, padded by repeating the row's first item; and its validity mask.
    width = int(counts.max()) if counts.numel() else 0
    offsets = torch.arange(width, device=starts.device)
    valid = offsets < counts[:, None]
    return torch.where(valid, starts[:, None] + offsets, starts[:, None]), valid


def _size_groups(sizes, candidates):
    # Groups of classes of similar size, largest first, so that padding every
    # class of a group to its largest costs at most as much as the real rows:
    # the masked-out similarities stay bounded by the useful ones.
    order = candidates[sizes[candidates].argsort(descending=True, stable=True)].tolist()
    groups, current, real = [], [], 0
    for code in order:
        size = int(sizes[code])
        if current and (len(current) + 1) * int(sizes[current[0]]) > 2 * (real + size):
            groups.append(current)
            current, real = [], 0
        current.append(code)
        real += size
    if current:
        groups.append(current)
    return [torch.tensor(group, dtype=torch.long, device=sizes.device) for group in groups]


def _cluster_layout(sizes, n_clusters):
    # Class-major layout of the rows (sorted by class) and of the clusters:
    # first row and first cluster of every class, the class of every row and
    # cluster, and the capacities (sizes differ by at most one within a
    # class: ``floor(L_c / K)`` or one more, so that all samples are used).
    classes = torch.arange(sizes.numel(), device=sizes.device)
    row_class = classes.repeat_interleave(sizes)
    cluster_class = classes.repeat_interleave(n_clusters)
    row_start = torch.cumsum(sizes, 0) - sizes
    cluster_start = torch.cumsum(n_clusters, 0) - n_clusters
    local = torch.arange(cluster_class.numel(), device=sizes.device) - cluster_start[cluster_class]
    base, extra = sizes // n_clusters, sizes % n_clusters
    capacities = base[cluster_class] + (local < extra[cluster_class]).long()
    return row_class, cluster_class, row_start, cluster_start, capacities


def _top_preferences(X, centroids, row_index, row_valid, cluster_index, cluster_valid,
                     n_preferences, chunk_size=None):
    # Each class's rows (one padded row of ``row_index`` per class) against
    # that class's centroids only, in one batched product; every row keeps
    # its top ``n_preferences`` clusters, so memory stays O(n * n_preferences)
    # and the similarity to other classes' centroids is never formed. A chunk
    # holds at most 2**20 similarities (4 MiB): small enough to stay in cache
    # and to reuse the allocation (``docs/benchmarks.md``).
    centers = centroids[cluster_index].mT
    n_preferences = min(n_preferences, cluster_index.shape[1])
    chunk_size = chunk_size or max(1, 2**20 // cluster_index.numel())
    tops = []
    padding = None if cluster_valid.all() else ~cluster_valid[:, None, :]
    for rows in torch.split(row_index, chunk_size, dim=1):
        similarity = _bmm(X[rows], centers)
        if padding is not None:
            similarity.masked_fill_(padding, -torch.inf)
        tops.append(similarity.topk(n_preferences, dim=2, sorted=True))
    indices = torch.cat([t.indices for t in tops], dim=1)
    preference = cluster_index.gather(1, indices.flatten(1)).view_as(indices)
    values = torch.cat([t.values for t in tops], dim=1)
    return preference[row_valid], values[row_valid]


def _own_class_placer(X, centroids, row_ids, row_class, cluster_start, n_clusters,
                      weights=None):
    # Second pass of the batched assignment: the leftovers of every class are
    # matched to the clusters of their own class that still have room, in
    # passes over capped preference lists (the room of a class equals its
    # leftovers, so no sample ever needs another class's cluster).
    def one_pass(leftover, room):
        # Deferred acceptance of the leftovers over at most
        # MAX_LEFTOVER_PREFERENCES clusters with room each; -1 for those that
        # exhaust that list.
        rows = row_ids[leftover]
        classes, order, counts = torch.unique(row_class[rows], return_inverse=True,
                                              return_counts=True)
        slot = torch.cumsum(counts, 0) - counts
        position = torch.empty_like(order)
        position[order.argsort(stable=True)] = torch.arange(order.numel(), device=order.device)
        sorted_rows = rows[order.argsort(stable=True)]
        row_index, row_valid = _padded(slot, counts)
        cluster_index, cluster_valid = _padded(cluster_start[classes], n_clusters[classes])
        cluster_valid &= room[cluster_index] > 0
        preference, score = _top_preferences(
            X, centroids, sorted_rows[row_index], row_valid, cluster_index, cluster_valid,
            min(MAX_LEFTOVER_PREFERENCES, cluster_index.shape[1]))
        choices = (score > -torch.inf).sum(1)
        placed = _deferred_acceptance(
            preference, score, room,
            lambda rest, _: torch.full_like(rest, -1), n_choices=choices,
            weights=None if weights is None else weights[sorted_rows])
        return placed[position]

    def place(leftover, room):
        # Complete lists would cost leftovers x clusters of the class (the
        # leftovers of a class of 200,000 rows in 1,000 clusters ran a fit at
        # 1e6 rows out of memory), so the lists are capped and the passes
        # repeat over the rows still unplaced: every pass places at least
        # one row (each row's first choice has room), and with at most
        # MAX_LEFTOVER_PREFERENCES clusters with room per class, a pass is
        # exactly the complete-list matching.
        result = torch.full_like(leftover, -1)
        todo = torch.arange(leftover.numel(), device=leftover.device)
        room = room.clone()
        while todo.numel():
            placed = one_pass(leftover[todo], room)
            done = placed >= 0
            result[todo[done]] = placed[done]
            room -= torch.bincount(placed[done], None if weights is None
                                   else weights[row_ids[leftover[todo[done]]]],
                                   minlength=room.numel())
            todo = todo[~done]
            if todo.numel() and not bool(done.any()):
                # Only float rounding of weighted room can stall a pass (some
                # cluster of the class has room in exact arithmetic): the
                # rest join their class's roomiest cluster.
                classes = row_class[row_ids[leftover[todo]]]
                index, valid = _padded(cluster_start[classes], n_clusters[classes])
                roomiest = room[index].masked_fill(~valid, -torch.inf).argmax(dim=1)
                result[todo] = index.gather(1, roomiest[:, None])[:, 0]
                break
        return result
    return place


def _seed_centroids(X, sizes, n_clusters, row_start, cluster_start, groups, generator,
                    weights=None):
    # Seeds for every class, drawn from ``generator`` in class order exactly
    # as one class at a time would draw them (the draws do not depend on the
    # data); k-means++ then runs for a whole group of classes at once. With
    # sample weights (as scikit-learn's weighted k-means++) the first seed is
    # drawn in proportion to the weights and the later ones to weight x D^2.
    centroids = torch.zeros(int(n_clusters.sum()), X.shape[1], dtype=X.dtype, device=X.device)
    first, uniforms = {}, {}
    for code, (size, k) in enumerate(zip(sizes.tolist(), n_clusters.tolist())):
        if k == 1:
            continue
        if k > MAX_KMEANS_PLUSPLUS_CLUSTERS:
            picks = torch.randperm(size, generator=generator)[:k].to(X.device)
            start = int(cluster_start[code])
            centroids[start:start + k] = X[int(row_start[code]) + picks]
            continue
        if weights is None:
            first[code] = int(torch.randint(size, (1,), generator=generator, device="cpu"))
        else:
            start = int(row_start[code])
            cumulative = weights[start:start + size].cpu().cumsum(0)
            draw = torch.rand(1, generator=generator, dtype=torch.float64) * cumulative[-1]
            first[code] = min(int(torch.searchsorted(cumulative, draw, right=True)), size - 1)
        uniforms[code] = torch.rand(k - 1, generator=generator, dtype=torch.float64)
    for group in groups:
        group = group[n_clusters[group] <= MAX_KMEANS_PLUSPLUS_CLUSTERS]
        if group.numel():
            picks = _kmeans_plusplus(X, group, sizes, n_clusters, row_start, first, uniforms,
                                     weights)
            index, valid = _padded(cluster_start[group], n_clusters[group])
            centroids[index[valid]] = X[(row_start[group][:, None] + picks)[valid]]
    return centroids


def _kmeans_plusplus(X, group, sizes, n_clusters, row_start, first, uniforms, weights=None):
    # k-means++ seeding with the cosine distance 1 - x.c for the classes of a
    # group (largest first, so the classes still drawing are a prefix). Its K
    # sequential passes dominate the cost for thousands of clusters, where
    # distinct random samples seed nearly as well (done by the caller).
    # Draws by inverse CDF (one cumsum and a binary search per class, about
    # ten times cheaper than torch.multinomial on 1e5 weights); zero weights
    # (the centers already chosen, the padding) are never drawn.
    row_index, row_valid = _padded(row_start[group], sizes[group])
    points = X[row_index]
    size, k = sizes[group].cpu(), n_clusters[group].tolist()
    codes = group.tolist()
    picks = torch.zeros(len(codes), max(k), dtype=torch.long)
    picks[:, 0] = torch.tensor([first[code] for code in codes])
    draws = torch.zeros(len(codes), max(k), dtype=torch.float64)
    for slot, code in enumerate(codes):
        draws[slot, 1:k[slot]] = uniforms[code]
    arange = torch.arange(len(codes), device=X.device)
    closest = 1.0 - _bmm(points, points[arange, picks[:, 0].to(X.device)])
    fallback = torch.arange(1, points.shape[1] + 1, dtype=torch.float64)
    padding = ~row_valid.cpu()
    padded = bool(padding.any())
    row_weights = None if weights is None else weights[row_index].cpu()
    m = len(k)
    for step in range(1, k[0]):
        while k[m - 1] <= step:  # k is non-increasing
            m -= 1
        weights = closest[:m].clamp_min(0).double().cpu()
        if row_weights is not None:
            weights *= row_weights[:m]
        if padded:
            weights.masked_fill_(padding[:m], 0)
        cumulative = weights.cumsum(1)
        empty = cumulative[:, -1] <= 0
        if empty.any():
            cumulative[empty] = torch.minimum(fallback, size[:m][empty, None].double())
        draw = draws[:m, step] * cumulative[:, -1]
        pick = torch.searchsorted(cumulative, draw[:, None], right=True)[:, 0]
        picks[:m, step] = torch.minimum(pick, size[:m] - 1)
        chosen = points[arange[:m], picks[:m, step].to(X.device)]
        torch.minimum(closest[:m], 1.0 - _bmm(points[:m], chosen), out=closest[:m])
    return picks.to(X.device)


def _bmm(points, others):
    # points[g] @ others[g] for every class g, others being matrices or
    # vectors. A single class takes the plain matrix (or matrix-vector)
    # product, measured faster than a batch of one.
    if points.shape[0] == 1:
        return (points[0] @ others[0])[None]
    if others.dim() == 2:
        return torch.bmm(points, others[:, :, None])[..., 0]
    return torch.bmm(points, others)


def _normalised_means(X, labels, n_clusters, weights=None):
    # Eq. (7), each row counted with its weight.
    sums = torch.zeros(n_clusters, X.shape[1], dtype=X.dtype, device=X.device)
    sums.index_add_(0, labels, X if weights is None else X * weights.to(X.dtype)[:, None])
    return F.normalize(sums, dim=1)


def _kmeans_within_classes(X, sizes, n_clusters, *, max_iter, generator, tol=0.0,
                           n_preferences=8, chunk_size=None, init_labels=None,
                           init_centroids=None, weights=None):
    # Equal-size spherical k-means of every class at once. X holds the rows
    # sorted by class (``sizes[c]`` rows of class c, in their order); class c
    # gets ``n_clusters[c]`` clusters, numbered class after class. Classes do
    # not interact: a row only ever sees its own class's centroids, each
    # class stops when its assignment stops changing, and the result is that
    # of clustering the classes one after another with the same generator.
    # Batching replaces one k-means per class (hundreds of small iterations,
    # each a few deferred-acceptance rounds, bounded by call overhead) by
    # max_iter iterations over all classes. Eight preferences reach the
    # objective of 32 in half the time, as nearly every sample ends within
    # its first few choices (``docs/benchmarks.md``); the rest go through
    # the second pass of _deferred_acceptance. With ``weights`` (float64, one
    # per row, positive) a cluster holds an equal share of its class's
    # weight instead of an equal number of rows, and centroids are weighted
    # means: as if every row were repeated in proportion to its weight.
    X = F.normalize(X, dim=1)
    row_class, cluster_class, row_start, cluster_start, capacities = _cluster_layout(
        sizes, n_clusters)
    if weights is not None:
        class_weight = torch.zeros(sizes.numel(), dtype=torch.float64, device=X.device)
        class_weight.index_add_(0, row_class, weights)
        capacities = (class_weight / n_clusters)[cluster_class]
    n_total = cluster_class.numel()
    labels = cluster_start[row_class]
    active = n_clusters > 1
    groups = _size_groups(sizes, torch.nonzero(active).flatten())
    if init_centroids is not None:
        centroids = init_centroids.clone()
    elif init_labels is None:
        centroids = _seed_centroids(X, sizes, n_clusters, row_start, cluster_start, groups,
                                    generator, weights)
    else:
        # Warm start: the means of a previous clustering's clusters on these
        # rows (the embeddings of the last round drift little), no seeding.
        centroids = _normalised_means(X, init_labels, n_total, weights)
    choices = n_clusters.clamp_max(n_preferences)[row_class]
    preference = torch.zeros(X.shape[0], n_preferences, dtype=torch.long, device=X.device)
    score = torch.full((X.shape[0], n_preferences), -torch.inf, dtype=X.dtype, device=X.device)
    n_iter = 0
    for iteration in range(max_iter):
        if not active.any():
            break
        n_iter += 1
        rows = torch.nonzero(active[row_class]).flatten()
        for group in groups:
            group = group[active[group]]
            if group.numel() == 0:
                continue
            row_index, row_valid = _padded(row_start[group], sizes[group])
            cluster_index, cluster_valid = _padded(cluster_start[group], n_clusters[group])
            top, value = _top_preferences(X, centroids, row_index, row_valid, cluster_index,
                                          cluster_valid, n_preferences, chunk_size)
            preference[row_index[row_valid], :top.shape[1]] = top
            score[row_index[row_valid], :top.shape[1]] = value
        new_labels = _deferred_acceptance(
            preference[rows], score[rows], capacities,
            _own_class_placer(X, centroids, rows, row_class, cluster_start, n_clusters,
                              weights),
            n_choices=choices[rows], weights=None if weights is None else weights[rows])
        if iteration:
            # A class stops once at most `tol` of its samples changed cluster
            # (tol=0: once none did).
            moved = torch.zeros(active.shape, dtype=X.dtype, device=X.device)
            moved.index_add_(0, row_class[rows], (new_labels != labels[rows]).to(X.dtype))
            active &= moved > tol * sizes
        labels[rows] = new_labels
        updated = active[cluster_class]
        moving = active[row_class]
        centroids[updated] = _normalised_means(
            X[moving], labels[moving], n_total,
            None if weights is None else weights[moving])[updated]
    return labels, _normalised_means(X, labels, n_total, weights), n_iter


def _sampled_rows(sizes, n_clusters, per_cluster, generator):
    # Rows (of the class-sorted layout) of a uniform sample of at most
    # ``per_cluster`` rows per cluster of every class, and the sample's size
    # of every class; None when no class has more, so that nothing is drawn
    # and small data cluster as before.
    limit = n_clusters * int(per_cluster)
    if not bool((sizes > limit).any()):
        return None
    row_class = torch.arange(sizes.numel()).repeat_interleave(sizes.cpu())
    rows = class_rows_at_most(row_class, limit.cpu(), generator).to(sizes.device)
    return rows, torch.minimum(sizes, limit)


def equal_size_spherical_kmeans(X, n_clusters, *, max_iter=20, tol=0.0, generator=None):
    """Spherical k-means whose clusters differ in size by at most one.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        Rows are normalised to unit length before clustering.
    n_clusters : int
        Number of clusters, ``1 <= n_clusters <= n_samples``.
    max_iter : int, default=20
        Maximum number of assignment / update iterations; stops earlier when
        the assignment no longer changes.
    tol : float, default=0.0
        Stop once at most this fraction of the samples changed cluster in an
        iteration (0: once none did).
    generator : torch.Generator, optional
        CPU generator for the k-means++ seeding, for reproducible results.

    Returns
    -------
    labels : Tensor of shape (n_samples,)
        Cluster index of each sample.
    centroids : Tensor of shape (n_clusters, n_features)
        Unit-norm cluster centroids (Eq. 7).
    """
    n_samples = X.shape[0]
    if not 1 <= n_clusters <= n_samples:
        raise ValueError(
            f"n_clusters={n_clusters} must be between 1 and n_samples={n_samples}."
        )
    counts = torch.tensor([n_samples, n_clusters], device=X.device)
    labels, centroids, _ = _kmeans_within_classes(X, counts[:1], counts[1:], max_iter=max_iter,
                                                  tol=tol, generator=generator)
    return labels, centroids


def cluster_within_classes(X, class_codes, cluster_size, *, n_classes=None, max_iter=20,
                           tol=0.0, generator=None, return_n_iter=False, init=None,
                           max_samples_per_cluster=None, sample_weight=None):
    """Cluster every class separately into clusters of about ``cluster_size``.

    All classes run in one batched equal-size spherical k-means, each
    sample seeing only its own class's centroids. The result is that of
    :func:`equal_size_spherical_kmeans` on each class alone, class after
    class with the same generator.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        Embeddings; normalised to unit length inside.
    class_codes : Tensor of shape (n_samples,)
        Integer class codes ``0 .. n_classes - 1``.
    cluster_size : int or Tensor of shape (n_classes,)
        Target cluster size ``l``: class ``c`` gets ``max(1, L_c // l)``
        clusters. A tensor gives the number of clusters of every class
        instead (clipped to ``[1, L_c]``), for rules that size clusters
        class by class.
    n_classes : int, optional
        Number of classes; defaults to ``class_codes.max() + 1``. Classes
        without samples get no cluster.
    max_iter : int, default=20
        Iterations of every class, as in :func:`equal_size_spherical_kmeans`;
        all classes are clustered in one batched run.
    tol : float, default=0.0
        Each class stops once at most this fraction of its samples changed
        cluster in an iteration (0: once none did).
    generator : torch.Generator, optional
        CPU generator for reproducible seeding.
    return_n_iter : bool, default=False
        Also return the number of iterations of the batched run (the most
        of any class; 0 when every class is a single cluster; with a sample
        drawn by ``max_samples_per_cluster``, the sample's iterations).
    init : Tensor of shape (n_samples,), optional
        Warm start: the ``sample_cluster`` of an earlier call with the same
        class codes and cluster sizes (so the same clusters per class). The
        k-means starts from the means of those clusters on ``X`` instead of
        k-means++ seeds and draws nothing from ``generator``: far fewer
        iterations when ``X`` moved little (the embeddings of successive
        training rounds).
    max_samples_per_cluster : int, optional
        A class with more than this many rows per cluster runs its k-means
        iterations on a uniform sample of that many rows per cluster (drawn
        from ``generator`` first); then every row of every class is placed
        once by the equal-size assignment to those centroids, and the
        centroids become the means of the final clusters (Eq. 7), so sizes
        stay equal and every row counts. The iterations' cost then stops
        growing with the cluster size (faiss caps its k-means the same way,
        at 256 points per centroid). ``None`` clusters every row. With a
        sample drawn, the result is no longer that of each class alone.
    sample_weight : Tensor of shape (n_samples,), optional
        Positive weight of every sample. A cluster then holds an equal share
        of its class's weight (instead of an equal number of samples, the
        last sample a cluster accepts may overshoot it), centroids are
        weighted means and k-means++ draws seeds in proportion to the
        weights, as if every sample were repeated in proportion to its
        weight. The number of clusters of a class still counts its samples,
        so scaling the weights changes nothing. ``None``: unit weights.

    Returns
    -------
    sample_cluster : Tensor of shape (n_samples,)
        Global cluster index of each sample.
    centroids : Tensor of shape (n_clusters_total, n_features)
        Unit-norm centroids, grouped by class in class order.
    cluster_class : Tensor of shape (n_clusters_total,)
        Class code of each cluster.
    n_iter : int
        Only with ``return_n_iter``.

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9], [1.0, 1.0]])
    >>> class_codes = torch.tensor([0, 0, 0, 0, 1])
    >>> sample_cluster, centroids, cluster_class = cluster_within_classes(
    ...     X, class_codes, 2, generator=torch.Generator().manual_seed(0))
    >>> sample_cluster.tolist(), cluster_class.tolist()
    ([0, 1, 0, 1, 2], [0, 0, 1])
    """
    X = F.normalize(X, dim=1)
    if n_classes is None:
        n_classes = int(class_codes.max()) + 1
    sizes = torch.bincount(class_codes, minlength=n_classes)
    present = torch.nonzero(sizes).flatten()
    if isinstance(cluster_size, torch.Tensor):
        n_clusters = torch.minimum(cluster_size.to(sizes.device)[present].long().clamp_min(1),
                                   sizes[present])
    else:
        n_clusters = (sizes[present] // int(cluster_size)).clamp_min(1)
    # Rows sorted by class, each class in sample order: every class is the
    # contiguous block its own k-means would see.
    order = torch.argsort(class_codes, stable=True)
    init_labels = None
    if init is not None:
        init_labels = torch.as_tensor(init, device=X.device).long()[order]
        cluster_class = present.repeat_interleave(n_clusters)
        if (init_labels.numel() != X.shape[0] or int(init_labels.min()) < 0
                or int(init_labels.max()) >= cluster_class.numel()
                or not torch.equal(cluster_class[init_labels], class_codes[order])):
            raise ValueError("init must be the sample_cluster of a clustering of the same "
                             "class codes into the same numbers of clusters per class.")
    if max_samples_per_cluster is not None and (
            isinstance(max_samples_per_cluster, bool) or int(max_samples_per_cluster) < 1
            or int(max_samples_per_cluster) != max_samples_per_cluster):
        raise ValueError(f"max_samples_per_cluster must be a positive integer or None; got "
                         f"{max_samples_per_cluster!r}.")
    # float64: the capacities and the ranks above a row are sums of many weights.
    weights = check_sample_weight(sample_weight, X.shape[0], X.device)
    X, sizes = X[order], sizes[present]
    if weights is not None:
        weights = weights[order]
    sample = (None if max_samples_per_cluster is None
              else _sampled_rows(sizes, n_clusters, max_samples_per_cluster, generator))
    if sample is None:
        labels, centroids, n_iter = _kmeans_within_classes(
            X, sizes, n_clusters, max_iter=max_iter, tol=tol, generator=generator,
            init_labels=init_labels, weights=weights)
    else:
        rows, sample_sizes = sample
        init_centroids = (None if init_labels is None
                          else _normalised_means(F.normalize(X, dim=1), init_labels,
                                                 int(n_clusters.sum()), weights))
        _, centroids, n_iter = _kmeans_within_classes(
            X[rows], sample_sizes, n_clusters, max_iter=max_iter, tol=tol,
            generator=generator, init_centroids=init_centroids,
            weights=None if weights is None else weights[rows])
        # One assignment of every row to the sample's centroids, then the means.
        labels, centroids, _ = _kmeans_within_classes(
            X, sizes, n_clusters, max_iter=1, generator=generator, init_centroids=centroids,
            weights=weights)
    sample_cluster = torch.empty_like(labels)
    sample_cluster[order] = labels
    result = sample_cluster, centroids, present.repeat_interleave(n_clusters)
    return (*result, n_iter) if return_n_iter else result
