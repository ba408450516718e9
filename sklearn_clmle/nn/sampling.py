"""Batch samplers: each yields one ``LongTensor`` of sample indices per batch.

They are meant for ``DataLoader(dataset, sampler=..., batch_size=None)``, so
that a whole batch is gathered with one indexing operation instead of a
Python loop over samples. The cluster batches of Sec. 3.3 come from
:class:`~sklearn_clmle.nn.ClusterIndex` (``cluster_index.py``), which also
holds the clusters they are drawn from.
"""

import torch

__all__ = ["ClassBalancedBatchSampler", "ClassBlockBatchSampler", "InterleavedBatchSampler",
           "RandomBatchSampler"]


def _group_index(group_of_sample, n_groups):
    # Sample indices sorted by group, with each group's start and size.
    members = torch.argsort(group_of_sample, stable=True)
    counts = torch.bincount(group_of_sample, minlength=n_groups)
    starts = torch.cumsum(counts, 0) - counts
    return members, starts, counts


def _class_index(class_codes):
    # Members grouped by class, plus the classes that have members: codes
    # without samples are never drawn (they would index the next class's
    # members); with every code present ``classes`` is ``arange``.
    codes = class_codes.cpu()
    members, starts, counts = _group_index(codes, int(codes.max()) + 1)
    return members, starts, counts, torch.nonzero(counts > 0).flatten()


def water_level(counts, cap):
    """The largest size ``t`` with ``sum(min(counts, t)) <= cap`` (at least 1).

    Capping every class at ``t`` keeps at most ``cap`` rows in all, the
    largest classes cut to a common size and the smaller ones whole, so that
    a rare class is never thinned further.
    """
    ordered, below = sorted(int(c) for c in counts), 0
    for i, count in enumerate(ordered):
        level = (cap - below) // (len(ordered) - i)
        if level < count:
            return max(int(level), 1)
        below += count
    return ordered[-1]


def capped_class_rows(class_codes, cap, generator):
    """Sorted indices of at most ``cap`` rows: each class at most
    :func:`water_level` rows, drawn uniformly without replacement (one
    random key per row and one stable sort, no loop over classes). With
    more classes than ``cap``, every class still keeps one row.

    Returns every row (``arange``) when there are no more than ``cap``,
    drawing nothing from ``generator``.
    """
    codes = torch.as_tensor(class_codes).cpu()
    if codes.numel() <= cap:
        return torch.arange(codes.numel())
    counts = torch.bincount(codes)
    return class_rows_at_most(codes, water_level(counts[counts > 0], cap), generator)


def class_rows_at_most(class_codes, limit, generator):
    """Sorted indices of at most ``limit`` rows of every class (an int, or a
    tensor of one limit per class code), drawn uniformly without
    replacement: one random key per row and one stable sort, no loop over
    classes. A class within its limit keeps every row."""
    codes = torch.as_tensor(class_codes).cpu()
    _, starts, _ = _group_index(codes, int(codes.max()) + 1)
    keys = torch.rand(codes.numel(), generator=generator)
    # Members of a class in random order: sorted by key, then (stably) by class.
    by_key = keys.argsort()
    order = by_key[codes[by_key].argsort(stable=True)]
    rank = torch.arange(codes.numel()) - starts[codes[order]]
    limit = torch.as_tensor(limit).cpu()
    return order[rank < (limit[codes[order]] if limit.dim() else limit)].sort().values


def _draw_members(members, starts, counts, groups, k, generator, *, fill=False):
    # Up to k members of each group, without replacement (random keys, one
    # argsort per batch). With ``fill``, a group smaller than k is topped up
    # by draws with replacement; otherwise it gives all its members.
    sizes = counts[groups]
    width = max(int(sizes.max()), k)
    columns = torch.arange(width)[None, :]
    keys = torch.rand(groups.numel(), width, generator=generator)
    positions = keys.masked_fill(columns >= sizes[:, None], 2.0).argsort(dim=1)[:, :k]
    if fill:
        repeated = (torch.rand(groups.numel(), k, generator=generator) * sizes[:, None]).long()
        positions = torch.where(sizes[:, None] >= k, positions, repeated)
        return members[(starts[groups][:, None] + positions).flatten()]
    valid = columns[:, :k] < sizes[:, None]
    return members[(starts[groups][:, None] + positions)[valid]]


class ClassBalancedBatchSampler:
    """Random batches in which every class is equally likely.

    Each slot of a batch draws a class uniformly, then a sample of that class
    uniformly (with replacement), so minority classes are seen as often as
    majority ones.

    Parameters
    ----------
    class_codes : Tensor of shape (n_samples,)
        Integer class codes ``0 .. n_classes - 1``.
    batch_size : int
        Samples per batch.
    n_batches : int
        Batches per pass (one skorch epoch).
    generator : torch.Generator
        CPU generator driving all random draws.
    """

    def __init__(self, class_codes, batch_size, n_batches, generator):
        self.members, self.starts, self.counts, self.classes = _class_index(class_codes)
        self.batch_size = batch_size
        self.n_batches = n_batches
        self.generator = generator

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            classes = self.classes[torch.randint(self.classes.numel(), (self.batch_size,),
                                                 generator=self.generator)]
            offset = (torch.rand(self.batch_size, generator=self.generator)
                      * self.counts[classes]).long()
            yield self.members[self.starts[classes] + offset]


class RandomBatchSampler:
    """Uniform random batches of samples (with replacement across batches).

    Parameters
    ----------
    n_samples : int
        Number of samples.
    batch_size : int
        Samples per batch (all samples if fewer), drawn without replacement.
    n_batches : int
        Batches per pass (one skorch epoch).
    generator : torch.Generator
        CPU generator driving all random draws.
    """

    def __init__(self, n_samples, batch_size, n_batches, generator):
        self.n_samples = n_samples
        self.batch_size = min(batch_size, n_samples)
        self.n_batches = n_batches
        self.generator = generator

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            yield torch.randperm(self.n_samples, generator=self.generator)[: self.batch_size]


class ClassBlockBatchSampler:
    """P x K batches: ``classes_per_batch`` classes, ``samples_per_class`` of each.

    The classes of a batch are drawn uniformly without replacement; members
    are drawn without replacement when the class is large enough and with
    replacement otherwise (as pair and triplet losses need positives).

    Parameters
    ----------
    class_codes : Tensor of shape (n_samples,)
        Integer class codes.
    classes_per_batch : int
        ``P`` (all classes when fewer exist).
    samples_per_class : int
        ``K``.
    n_batches : int
        Batches per pass (one skorch epoch).
    generator : torch.Generator
        CPU generator driving all random draws.
    """

    def __init__(self, class_codes, classes_per_batch, samples_per_class, n_batches,
                 generator):
        self.members, self.starts, self.counts, self.classes = _class_index(class_codes)
        self.classes_per_batch = min(classes_per_batch, self.classes.numel())
        self.samples_per_class = samples_per_class
        self.n_batches = n_batches
        self.generator = generator

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            pick = torch.randperm(self.classes.numel(), generator=self.generator)
            classes = self.classes[pick[: self.classes_per_batch]]
            yield _draw_members(self.members, self.starts, self.counts, classes,
                                self.samples_per_class, self.generator, fill=True)


class InterleavedBatchSampler:
    """Batches taken from several samplers in turn: batch ``t`` comes from ``samplers[t % k]``.

    For multi-label data (Sec. 3.3 of Huang et al.): re-sampling to balance
    every attribute at once is infeasible, so each batch is built for one
    attribute by that attribute's own sampler, the attributes taking turns.
    Turns rather than random picks give every attribute the same number of
    batches in every pass. The samplers are iterated lazily, so a sampler
    that reads a cache (the hardest query cluster) sees the losses recorded
    for the batches before.

    Parameters
    ----------
    samplers : list of batch samplers
        Each must yield at least ``ceil(n_batches / len(samplers))`` batches
        per pass.
    n_batches : int
        Batches per pass (one skorch epoch).

    Examples
    --------
    >>> import torch
    >>> from sklearn_clmle.nn import InterleavedBatchSampler, RandomBatchSampler
    >>> g = torch.Generator().manual_seed(0)
    >>> samplers = [RandomBatchSampler(4, 2, 2, g), RandomBatchSampler(4, 3, 2, g)]
    >>> [len(batch) for batch in InterleavedBatchSampler(samplers, 3)]
    [2, 3, 2]
    """

    def __init__(self, samplers, n_batches):
        self.samplers = list(samplers)
        self.n_batches = n_batches

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        iterators = [iter(sampler) for sampler in self.samplers]
        for step in range(self.n_batches):
            yield next(iterators[step % len(iterators)])
