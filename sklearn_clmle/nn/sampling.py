"""Batch samplers: each yields one ``LongTensor`` of sample indices per batch.

They are meant for ``DataLoader(dataset, sampler=..., batch_size=None)``, so
that a whole batch is gathered with one indexing operation instead of a
Python loop over samples. The cluster batches of Sec. 3.3 come from
:class:`~sklearn_clmle.nn.ClusterIndex` (``cluster_index.py``), which also
holds the clusters they are drawn from.
"""

import torch

__all__ = ["ClassBalancedBatchSampler", "ClassBlockBatchSampler", "InterleavedBatchSampler",
           "RandomBatchSampler", "weighted_class_counts"]


def check_sample_weight(sample_weight, n_samples, device="cpu"):
    """``sample_weight`` as a float64 tensor of positive weights on
    ``device``, or None.

    The samplers draw a sample in proportion to its weight, which in
    expectation is what repeating it would do; a sample of weight 0 would
    never be drawn, so it must be dropped before (the estimators do).
    """
    if sample_weight is None:
        return None
    weights = torch.as_tensor(sample_weight, dtype=torch.float64).to(device)
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), one weight per "
                         f"sample; got {tuple(weights.shape)}.")
    if not bool(torch.isfinite(weights).all()) or not bool((weights > 0).all()):
        raise ValueError("sample_weight must be finite and positive: drop the samples of "
                         "weight 0 first.")
    return weights


def weighted_class_counts(class_codes, sample_weight=None, n_classes=None):
    """Class sizes for losses that read them (priors, margins, class weights).

    ``bincount`` of the codes; with weights, the classes' shares of the
    total weight times the number of samples, so that the counts keep the
    data's size (the effective-number weights depend on it) while only the
    weights' ratios matter.
    """
    counts = torch.bincount(class_codes.cpu(), minlength=n_classes or 0).double()
    if sample_weight is None:
        return counts
    weights = torch.as_tensor(sample_weight, dtype=torch.float64).cpu()
    totals = torch.bincount(class_codes.cpu(), weights=weights, minlength=counts.numel())
    return totals * (len(class_codes) / float(weights.sum()))


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


def _draw_members(members, starts, counts, groups, k, generator, *, fill=False,
                  weights=None):
    # Up to k members of each group, without replacement (random keys, one
    # argsort per batch). With ``fill``, a group smaller than k is topped up
    # by draws with replacement; otherwise it gives all its members. With
    # ``weights`` (one per sample) the draws follow them: Efraimidis and
    # Spirakis' keys -log(u) / w for the draws without replacement, the
    # inverse CDF for those with.
    sizes = counts[groups]
    width = max(int(sizes.max()), k)
    columns = torch.arange(width)[None, :]
    keys = torch.rand(groups.numel(), width, generator=generator)
    padding = columns >= sizes[:, None]
    if weights is not None:
        slots = members[(starts[groups][:, None] + columns).clamp_max(members.numel() - 1)]
        row_weights = weights[slots].masked_fill(padding, 0.0)
        keys = -torch.log(keys.double()) / row_weights.clamp_min(1e-300)
        positions = keys.masked_fill(padding, torch.inf).argsort(dim=1)[:, :k]
    else:
        positions = keys.masked_fill(padding, 2.0).argsort(dim=1)[:, :k]
    if fill:
        uniform = torch.rand(groups.numel(), k, generator=generator)
        if weights is None:
            repeated = (uniform * sizes[:, None]).long()
        else:
            cumulative = row_weights.cumsum(dim=1)
            target = uniform.double() * cumulative[:, -1:]
            repeated = torch.searchsorted(cumulative, target, right=True)
            repeated = torch.minimum(repeated, sizes[:, None] - 1)
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
    sample_weight : Tensor of shape (n_samples,), optional
        Positive weights: a sample is drawn within its class in proportion to
        its weight (classes stay equally likely).
    """

    def __init__(self, class_codes, batch_size, n_batches, generator, sample_weight=None):
        self.members, self.starts, self.counts, self.classes = _class_index(class_codes)
        self.batch_size = batch_size
        self.n_batches = n_batches
        self.generator = generator
        weights = check_sample_weight(sample_weight, len(class_codes))
        # Cumulative weights of the members in class order: a slot's member
        # is found by one binary search within its class's span.
        self.cumulative = None if weights is None else weights[self.members].cumsum(0)

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            classes = self.classes[torch.randint(self.classes.numel(), (self.batch_size,),
                                                 generator=self.generator)]
            uniform = torch.rand(self.batch_size, generator=self.generator)
            if self.cumulative is None:
                offset = (uniform * self.counts[classes]).long()
                yield self.members[self.starts[classes] + offset]
                continue
            start, end = self.starts[classes], self.starts[classes] + self.counts[classes]
            below = torch.where(start > 0, self.cumulative[(start - 1).clamp_min(0)], 0.0)
            target = below + uniform.double() * (self.cumulative[end - 1] - below)
            position = torch.searchsorted(self.cumulative, target, right=True)
            yield self.members[torch.minimum(torch.maximum(position, start), end - 1)]


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
    sample_weight : Tensor of shape (n_samples,), optional
        Positive weights: every slot of a batch draws a sample in proportion
        to its weight (with replacement, so that each draw follows the
        weights exactly, as from the samples repeated).
    """

    def __init__(self, n_samples, batch_size, n_batches, generator, sample_weight=None):
        self.n_samples = n_samples
        self.batch_size = min(batch_size, n_samples)
        self.n_batches = n_batches
        self.generator = generator
        self.weights = check_sample_weight(sample_weight, n_samples)

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            if self.weights is not None:
                yield torch.multinomial(self.weights, self.batch_size, replacement=True,
                                        generator=self.generator)
                continue
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
    sample_weight : Tensor of shape (n_samples,), optional
        Positive weights: members are drawn in proportion to them.
    """

    def __init__(self, class_codes, classes_per_batch, samples_per_class, n_batches,
                 generator, sample_weight=None):
        self.members, self.starts, self.counts, self.classes = _class_index(class_codes)
        self.classes_per_batch = min(classes_per_batch, self.classes.numel())
        self.samples_per_class = samples_per_class
        self.n_batches = n_batches
        self.generator = generator
        self.weights = check_sample_weight(sample_weight, len(class_codes))

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            pick = torch.randperm(self.classes.numel(), generator=self.generator)
            classes = self.classes[pick[: self.classes_per_batch]]
            yield _draw_members(self.members, self.starts, self.counts, classes,
                                self.samples_per_class, self.generator, fill=True,
                                weights=self.weights)


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
