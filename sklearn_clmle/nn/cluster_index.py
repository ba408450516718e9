"""The cluster index of Sec. 3.3 of Huang et al.: clusters, cluster batches, loss cache.

One object holds what the cluster stage needs between and within batches:
the equal-size spherical k-means clusters of every class (refreshed from
the latest embeddings), the cluster batches drawn from them, and the cached
per-sample losses behind the hardest-query choice. The estimators
(``CLMLEEmbedder``, ``LMLEEmbedder``) train with it, and so can a plain torch
loop.
"""

from numbers import Integral

import torch
from torch.utils.data import Sampler

from .clustering import cluster_within_classes
from .sampling import _draw_members, _group_index, capped_class_rows, check_sample_weight

__all__ = ["ClusterIndex"]


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


class ClusterIndex(Sampler):
    """Clusters of every class and the cluster mini-batches of Sec. 3.3.

    Steps 1-3 of the training loop of Huang et al. (TPAMI 2019), Sec. 3.3,
    as a batch sampler that any ``DataLoader`` can use:

    1. :meth:`refresh` splits every class into clusters of about
       ``cluster_size`` samples by equal-size spherical k-means on the
       current embeddings (:func:`~sklearn_clmle.nn.cluster_within_classes`).
    2. Each batch draws a class uniformly and takes its query cluster: the
       one with the highest mean cached loss (``query="hardest"``) or a
       uniform one. It adds the ``clusters_per_batch - 1`` clusters whose
       centroids have the largest inner product with the query's, making
       sure another cluster of the query's class (when the class has one)
       and a cluster of another class are among them.
    3. Up to ``samples_per_cluster`` members of each of these clusters are
       drawn without replacement (all members of a smaller cluster).

    Iterating yields ``steps_per_epoch`` lists of sample indices, so the
    index is used as ``DataLoader(dataset, batch_sampler=index)``.
    :meth:`cluster_ids` gives the cluster of each sample of a batch for
    :class:`~sklearn_clmle.nn.ClusterMarginLoss`, and :meth:`record_losses`
    takes the per-sample losses back for the hardest-query choice.

    Parameters
    ----------
    labels : array-like of int of shape (n_samples,)
        Class code of every sample of the dataset, ``0 .. n_classes - 1``
        (encode other labels first, e.g. with
        ``numpy.unique(y, return_inverse=True)[1]``).
    cluster_size : int
        ``l``, the target cluster size: class ``c`` gets
        ``max(1, n_c // cluster_size)`` clusters of equal size (+-1).
    clusters_per_batch : int, default=12
        ``M``, clusters per batch (at least 2; paper: 12).
    samples_per_cluster : int, default=20
        Members drawn from each cluster of a batch (paper: 20).
    steps_per_epoch : int, default=100
        Batches per iteration over the index (its ``len``).
    query : {"hardest", "uniform"}, default="hardest"
        Query cluster of a batch: the one of the drawn class with the highest
        mean cached loss (paper), or a uniform one (Table 7 ablation).
    generator : torch.Generator, optional
        CPU generator for every random draw (seeding of the k-means and the
        batches). By default a generator seeded from torch's global one, so
        ``torch.manual_seed`` makes the index reproducible.
    max_iter : int, default=20
        k-means iterations per refresh.
    tol : float, default=0.01
        A class stops its k-means once at most this fraction of its samples
        changes cluster in an iteration (``docs/defaults.md``).
    warm_start : bool, default=False
        Start every refresh after the first from the current clusters (their
        means on the new embeddings) instead of k-means++ seeds: fewer
        k-means iterations, and no seeding (``init`` of
        :func:`~sklearn_clmle.nn.cluster_within_classes`).
    warm_max_iter : int, default=None
        k-means iterations of a warm-started refresh (``None``: ``max_iter``).
    max_rows : int, default=None
        Cluster at most this many samples: above it, every class larger than
        a common size is cut to that size by a uniform draw (smaller classes
        stay whole, see :func:`~sklearn_clmle.nn.sampling.water_level`),
        once, when the index is made; only those samples (:attr:`rows`) are
        clustered and drawn into batches. A k-means iteration costs about
        ``sum_c n_c^2 / cluster_size`` (each class's rows against its
        clusters), while a round draws ``steps_per_epoch`` batches whatever
        the data size, so without a cap re-clustering a million rows costs
        far more than the round it serves. ``None``: every sample.
    sample_weight : array-like of shape (n_samples,), optional
        Positive weight of every sample, as if it were repeated in proportion
        to it: the k-means gives every cluster an equal share of its class's
        weight and weighted centroids (``sample_weight`` of
        :func:`~sklearn_clmle.nn.cluster_within_classes`), members are drawn
        into batches in proportion to their weights, and a cluster's cached
        loss is its members' weighted mean. ``None``: unit weights.

    Attributes
    ----------
    labels : Tensor of shape (n_samples,)
        The class codes, on the CPU.
    rows : Tensor of shape (n_rows,)
        The samples that are clustered, sorted (every sample unless
        ``max_rows`` cuts them).
    sample_cluster : Tensor of shape (n_samples,)
        Cluster of every sample (after :meth:`refresh`); -1 for a sample
        outside :attr:`rows`.
    centroids : Tensor of shape (n_clusters, dim)
        Unit-norm centroids, grouped by class in class order.
    cluster_class : Tensor of shape (n_clusters,)
        Class of every cluster.
    sample_loss : Tensor of shape (n_samples,)
        Latest recorded loss of every sample (``nan`` until recorded). It is
        kept across refreshes: a new cluster's loss is the mean of its
        members' latest losses.

    Notes
    -----
    The hardest query reads the losses recorded so far, so record each
    batch's losses before the next batch is drawn: with
    ``DataLoader(num_workers=0)`` (the default) batches are drawn one at a
    time; worker processes draw a few batches ahead. Clusters none of whose
    members has a recorded loss count as hardest, so every cluster is
    visited early.

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.nn import ClusterIndex
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.tensor([0] * 8 + [1] * 4)
    >>> index = ClusterIndex(labels, cluster_size=4, clusters_per_batch=2,
    ...                      samples_per_cluster=3, steps_per_epoch=5, generator=g)
    >>> embeddings = torch.randn(12, 3, generator=g)
    >>> index.refresh(embeddings).n_clusters
    3
    >>> batch = next(iter(index))
    >>> len(batch), index.cluster_ids(batch).shape
    (6, torch.Size([6]))
    >>> index.record_losses(batch, torch.rand(6, generator=g))
    """

    def __init__(self, labels, *, cluster_size, clusters_per_batch=12, samples_per_cluster=20,
                 steps_per_epoch=100, query="hardest", generator=None, max_iter=20, tol=0.01,
                 warm_start=False, warm_max_iter=None, max_rows=None, sample_weight=None):
        super().__init__()
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.numel() == 0:
            raise ValueError(f"labels must be a non-empty 1-d array of class codes, got shape "
                             f"{tuple(labels.shape)}.")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class codes, got dtype {labels.dtype}; "
                             "encode them with numpy.unique(y, return_inverse=True)[1].")
        if int(labels.min()) < 0:
            raise ValueError("labels must be class codes >= 0; encode them with "
                             "numpy.unique(y, return_inverse=True)[1].")
        if query not in ("hardest", "uniform"):
            raise ValueError(f"query must be 'hardest' or 'uniform', got {query!r}.")
        if not 0.0 <= float(tol) <= 1.0:
            raise ValueError(f"tol must be a fraction in [0, 1], got {tol!r}.")
        self.labels = labels.long().cpu()
        self.n_classes = int(self.labels.max()) + 1
        self.cluster_size = _positive_int(cluster_size, "cluster_size")
        self.clusters_per_batch = _positive_int(clusters_per_batch, "clusters_per_batch", 2)
        self.samples_per_cluster = _positive_int(samples_per_cluster, "samples_per_cluster")
        self.steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch")
        self.query = query
        if generator is None:
            seed = int(torch.randint(2**62, (1,)))
            generator = torch.Generator().manual_seed(seed)
        self.generator = generator
        self.max_iter = _positive_int(max_iter, "max_iter")
        self.tol = float(tol)
        self.warm_start = bool(warm_start)
        self.warm_max_iter = (self.max_iter if warm_max_iter is None
                              else _positive_int(warm_max_iter, "warm_max_iter"))
        self.max_rows = None if max_rows is None else _positive_int(max_rows, "max_rows")
        # Drawn only when the cap cuts, so an uncapped index draws exactly
        # what it drew before the cap existed.
        self.rows = (torch.arange(self.labels.numel()) if self.max_rows is None
                     else capped_class_rows(self.labels, self.max_rows, self.generator))
        self.sample_loss = torch.full((self.labels.numel(),), float("nan"))
        self.sample_weight = check_sample_weight(sample_weight, self.labels.numel())
        self.centroids = None

    @property
    def n_clusters(self):
        """Number of clusters over all classes (0 before the first refresh)."""
        return 0 if self.centroids is None else int(self.centroids.shape[0])

    def refresh(self, embeddings):
        """Re-cluster every class on ``embeddings`` and install the clusters (step 1).

        Parameters
        ----------
        embeddings : Tensor of shape (n_samples, dim) or (len(rows), dim)
            Embeddings of every sample, in the order of ``labels``, or of the
            clustered :attr:`rows` only (normalised inside). They may live on
            any device; the k-means runs there.

        Returns
        -------
        self : ClusterIndex
        """
        embeddings = torch.as_tensor(embeddings)
        n_samples, n_rows = self.labels.numel(), self.rows.numel()
        if embeddings.ndim != 2 or embeddings.shape[0] not in (n_samples, n_rows):
            expected = (f"({n_samples}, dim), one row per label" if n_rows == n_samples else
                        f"({n_samples}, dim), one row per label, or ({n_rows}, dim), one "
                        "per clustered row")
            raise ValueError(f"embeddings must have shape {expected}, got "
                             f"{tuple(embeddings.shape)}.")
        embeddings = embeddings.detach()
        if embeddings.shape[0] != n_rows:
            embeddings = embeddings[self.rows.to(embeddings.device)]
        if not embeddings.is_floating_point():
            embeddings = embeddings.float()
        init = (self.sample_cluster[self.rows] if self.warm_start and self.centroids is not None
                else None)
        labels, centroids, cluster_class = cluster_within_classes(
            embeddings, self.labels[self.rows].to(embeddings.device), self.cluster_size,
            n_classes=self.n_classes,
            max_iter=self.max_iter if init is None else self.warm_max_iter, tol=self.tol,
            generator=self.generator, init=init,
            sample_weight=None if self.sample_weight is None else self.sample_weight[self.rows])
        if n_rows != n_samples:
            labels = labels.new_full((n_samples,), -1).index_copy_(
                0, self.rows.to(labels.device), labels)
        return self.set_clusters(labels, centroids, cluster_class)

    def set_clusters(self, sample_cluster, centroids, cluster_class):
        """Install a given clustering (what :meth:`refresh` computes).

        Parameters
        ----------
        sample_cluster : Tensor of shape (n_samples,)
            Cluster of every sample, ``0 .. n_clusters - 1`` (-1: a sample
            outside every cluster, never drawn).
        centroids : Tensor of shape (n_clusters, dim)
            Unit-norm centroid of every cluster.
        cluster_class : Tensor of shape (n_clusters,)
            Class of every cluster.

        Returns
        -------
        self : ClusterIndex
        """
        self.sample_cluster = sample_cluster.cpu()
        self.centroids = centroids.detach().cpu()
        self.cluster_class = cluster_class.cpu()
        self._clustered = torch.nonzero(self.sample_cluster >= 0).flatten()
        members, self.starts, self.counts = _group_index(self.sample_cluster[self._clustered],
                                                         self.n_clusters)
        self.members = self._clustered[members]
        # One sort instead of a scan per class: thousands of identities stay cheap.
        by_class, _, class_counts = _group_index(self.cluster_class, self.n_classes)
        self.class_clusters = list(torch.split(by_class, class_counts.tolist()))
        # Only classes that own a cluster can provide a query cluster.
        self.query_classes = [c for c, owned in enumerate(self.class_clusters) if owned.numel()]
        return self

    def _check_clustered(self):
        if self.centroids is None:
            raise RuntimeError("This ClusterIndex has no clusters yet: call "
                               "refresh(embeddings) before drawing batches or cluster ids.")

    def cluster_ids(self, indices):
        """Cluster of each sample of a batch, the ``cluster_ids`` of the cluster loss.

        Parameters
        ----------
        indices : Tensor or list of int of shape (batch_size,)
            Sample indices of the batch.

        Returns
        -------
        Tensor of shape (batch_size,)
            On the device of ``indices`` (the CPU for a list).
        """
        self._check_clustered()
        indices = torch.as_tensor(indices)
        return self.sample_cluster[indices.cpu()].to(indices.device)

    def record_losses(self, indices, losses):
        """Cache the latest loss of each sample of a batch (for the hardest query).

        Parameters
        ----------
        indices : Tensor or list of int of shape (batch_size,)
            Sample indices of the batch.
        losses : Tensor of shape (batch_size,)
            Their unreduced losses, e.g. ``ClusterMarginLoss.per_sample``.
        """
        indices = torch.as_tensor(indices).cpu()
        losses = torch.as_tensor(losses).detach().float().cpu()
        if losses.shape != indices.shape:
            raise ValueError(f"losses must hold one value per index: got {tuple(losses.shape)} "
                             f"for {tuple(indices.shape)} indices (pass the unreduced "
                             "per-sample losses).")
        self.sample_loss[indices] = losses

    def cluster_losses(self):
        """Mean cached loss of every cluster; ``inf`` for clusters never seen.

        Returns
        -------
        Tensor of shape (n_clusters,)
        """
        self._check_clustered()
        # Over the clustered samples only: read once per batch, so its cost
        # must not grow with the rows a cap left out.
        loss, cluster = self.sample_loss[self._clustered], self.sample_cluster[self._clustered]
        seen = ~torch.isnan(loss)
        weight = (None if self.sample_weight is None
                  else self.sample_weight[self._clustered][seen].float())
        total = torch.zeros(self.n_clusters).index_add_(
            0, cluster[seen], loss[seen] if weight is None else loss[seen] * weight)
        count = torch.bincount(cluster[seen], weight, minlength=self.n_clusters)
        return torch.where(count > 0, total / torch.where(count > 0, count, 1),
                           torch.tensor(float("inf")))

    def __len__(self):
        return self.steps_per_epoch

    def __iter__(self):
        self._check_clustered()
        for _ in range(self.steps_per_epoch):
            yield self._draw_batch(self._select_clusters()).tolist()

    def _pick(self, candidates):
        choice = torch.randint(candidates.numel(), (1,), generator=self.generator)
        return candidates[choice].item()

    def _query_cluster(self):
        klass = self.query_classes[
            torch.randint(len(self.query_classes), (1,), generator=self.generator).item()]
        candidates = self.class_clusters[klass]
        if self.query == "hardest":
            losses = self.cluster_losses()[candidates]
            candidates = candidates[losses == losses.max()]
        return self._pick(candidates)

    def _select_clusters(self):
        """Query cluster first, then its nearest clusters by centroid inner product."""
        query = self._query_cluster()
        similarity = self.centroids @ self.centroids[query]
        similarity[query] = float("-inf")
        n_others = min(self.clusters_per_batch - 1, similarity.numel() - 1)
        nearest = similarity.topk(n_others).indices
        same_class = self.cluster_class == self.cluster_class[query]
        # Greedy fix-up (Sec. 3.3): when a kind of cluster is missing, the
        # least similar pick gives way to the nearest cluster of that kind.
        # Other-class clusters are fixed last so they win when M == 2.
        for wanted in (same_class.clone(), ~same_class):
            wanted[query] = False
            if n_others and wanted.any() and not wanted[nearest].any():
                nearest[-1] = torch.where(wanted, similarity, float("-inf")).argmax()
        return torch.cat([torch.tensor([query]), nearest])

    def _draw_batch(self, clusters):
        return _draw_members(self.members, self.starts, self.counts, clusters,
                             self.samples_per_cluster, self.generator,
                             weights=self.sample_weight)
