"""Pair-based metric-learning losses used as baselines in Sec. 3.1 and Sec. 4.

Triplet (Schroff et al., 2015), contrastive (Hadsell et al., 2006), center
(Wen et al., 2016), range (Zhang et al., 2017) and class rectification
(Dong et al., 2017) losses as plain torch modules. They all take a batch of
embeddings of shape ``(batch_size, dim)`` and integer class labels of shape
``(batch_size,)``. ``D`` is the squared Euclidean distance
``D(a, b) = ||a - b||_2^2`` of Eq. (1). Nothing here imports scikit-learn.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .functional import pairwise_distances  # public here before 0.2
from .losses import PerSampleLoss

__all__ = ["CenterLoss", "ClassRectificationLoss", "ContrastiveLoss", "RangeLoss", "TripletLoss",
           "pairwise_distances"]


def _pair_masks(labels):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same, ~eye


class TripletLoss(PerSampleLoss):
    """Triplet loss, Eq. (2), with in-batch triplet mining.

    Every anchor ``a`` is paired with each of its positives ``p`` (same
    class, ``p != a``: "batch-all" positives). For each pair ``(a, p)`` the
    hinge is ``[D(a, p) - D(a, n) + g]_+`` with the negative ``n`` chosen by
    ``mining``:

    ``"semihard"``
        The closest negative farther than the positive, i.e. the ``n`` of
        smallest ``D(a, n)`` among those with ``D(a, n) > D(a, p)``
        (Schroff et al., 2015). When no negative is farther than the
        positive, the hardest (closest) negative is used instead, as is common
        FaceNet practice. (TensorFlow Addons' ``triplet_semihard_loss`` falls
        back to the *farthest* negative instead; we do not.)
    ``"all"``
        The hinge is averaged over all negatives of the anchor.

    Parameters
    ----------
    margin : float, default=0.2
        ``g`` in Eq. (1)-(2), in squared-distance units.
    mining : {"semihard", "all"}, default="semihard"
    cost_sensitive : bool, default=False
        Weight each anchor by the inverse frequency of its class in the batch.

    Notes
    -----
    :meth:`per_sample` gives each anchor's mean hinge over its positives; an
    anchor with no positive, or with no negative in the batch, gets 0.
    ``forward`` averages it over the anchors that have at least one positive
    and one negative (0 if there is none). This equals the triplet mean of
    Eq. (2) when all anchors have the same number of positives (a
    class-balanced batch); otherwise every anchor weighs the same, whatever
    its number of positives. Memory is ``O(batch_size^3)``.
    """

    def __init__(self, margin=0.2, mining="semihard", cost_sensitive=False):
        super().__init__(cost_sensitive)
        if mining not in ("semihard", "all"):
            raise ValueError(f"mining must be 'semihard' or 'all', got {mining!r}")
        self.margin = margin
        self.mining = mining

    def _pair_hinges(self, embeddings, labels):
        _, sq = pairwise_distances(embeddings)
        positive, negative, _ = _pair_masks(labels)
        has_negative = negative.any(dim=1)
        valid = positive & has_negative[:, None]          # (anchor, positive)
        d_ap = sq[:, :, None]                             # (a, p, 1)
        d_an = sq[:, None, :]                             # (a, 1, n)
        if self.mining == "all":
            hinge = F.relu(d_ap - d_an + self.margin)     # (a, p, n)
            hinge = hinge * negative[:, None, :].to(hinge.dtype)
            n_neg = negative.sum(dim=1).clamp_min(1).to(hinge.dtype)
            pair = hinge.sum(dim=2) / n_neg[:, None]
        else:
            inf = torch.tensor(float("inf"), dtype=sq.dtype, device=sq.device)
            farther = negative[:, None, :] & (d_an > d_ap)
            semi = torch.where(farther, d_an.expand_as(farther), inf).argmin(dim=2)
            hardest = torch.where(negative, sq, inf).argmin(dim=1)
            chosen = torch.where(farther.any(dim=2), semi, hardest[:, None])
            pair = F.relu(sq - sq.gather(1, chosen) + self.margin)
        return torch.where(valid, pair, torch.zeros_like(pair)), valid

    def negative_indices(self, embeddings, labels):
        """Index of the negative chosen for every (anchor, positive) pair.

        Only for ``mining="semihard"``; entries of pairs that are not
        (anchor, positive) pairs, or whose anchor has no negative, are
        meaningless.

        Returns
        -------
        LongTensor of shape (batch_size, batch_size)
        """
        if self.mining != "semihard":
            raise ValueError("negative_indices needs mining='semihard'")
        with torch.no_grad():
            _, sq = pairwise_distances(embeddings)
            _, negative, _ = _pair_masks(labels)
            inf = torch.tensor(float("inf"), dtype=sq.dtype, device=sq.device)
            farther = negative[:, None, :] & (sq[:, None, :] > sq[:, :, None])
            semi = torch.where(farther, sq[:, None, :].expand_as(farther), inf).argmin(dim=2)
            hardest = torch.where(negative, sq, inf).argmin(dim=1)
            return torch.where(farther.any(dim=2), semi, hardest[:, None])

    def per_sample(self, embeddings, labels):
        """Each anchor's mean hinge over its positives.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
        labels : Tensor of shape (batch_size,)

        Returns
        -------
        Tensor of shape (batch_size,)
            0 for anchors with no positive or no negative.
        """
        pair, valid = self._pair_hinges(embeddings, labels)
        count = valid.sum(dim=1).clamp_min(1).to(pair.dtype)
        return pair.sum(dim=1) / count

    def forward(self, embeddings, labels):
        """Mean of :meth:`per_sample` over anchors with a positive and a negative."""
        pair, valid = self._pair_hinges(embeddings, labels)
        count = valid.sum(dim=1)
        values = pair.sum(dim=1) / count.clamp_min(1).to(pair.dtype)
        return self.reduce(values, labels, keep=count > 0)


class ContrastiveLoss(PerSampleLoss):
    """Contrastive loss of Hadsell et al. (2006) over all in-batch pairs.

    For a pair ``(i, j)``, ``i != j``, with ``y = 1`` when both share a class::

        1/2 [ y D(i, j) + (1 - y) max(0, m - sqrt(D(i, j)))^2 ]

    i.e. Hadsell's loss with the Euclidean distance ``sqrt(D)``.

    Parameters
    ----------
    margin : float, default=0.5
        ``m``, in (non-squared) Euclidean distance units.
    cost_sensitive : bool, default=False
        Weight each anchor by the inverse frequency of its class in the batch.

    Notes
    -----
    :meth:`per_sample` averages the pair terms of each anchor over its
    ``batch_size - 1`` pairs; ``forward`` averages it over the anchors (0 for
    a batch of one). At ``D = 0`` the negative term's gradient is taken as 0.
    """

    def __init__(self, margin=0.5, cost_sensitive=False):
        super().__init__(cost_sensitive)
        self.margin = margin

    def per_sample(self, embeddings, labels):
        """Each anchor's mean pair term.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
        labels : Tensor of shape (batch_size,)

        Returns
        -------
        Tensor of shape (batch_size,)
        """
        dist, sq = pairwise_distances(embeddings)
        positive, negative, other = _pair_masks(labels)
        terms = torch.where(positive, sq, F.relu(self.margin - dist).pow(2))
        terms = 0.5 * torch.where(other, terms, torch.zeros_like(terms))
        n_pairs = max(labels.shape[0] - 1, 1)
        return terms.sum(dim=1) / n_pairs

    def forward(self, embeddings, labels):
        """(Cost-sensitive) mean of :meth:`per_sample`; 0 for a batch of one."""
        values = self.per_sample(embeddings, labels)
        keep = torch.full_like(labels, labels.shape[0] > 1, dtype=torch.bool)
        return self.reduce(values, labels, keep)


class CenterLoss(PerSampleLoss):
    """Center loss of Wen et al. (2016): ``1/2 ||f_i - c_{y_i}||^2``.

    Parameters
    ----------
    n_classes : int
        Number of centers; labels must lie in ``[0, n_classes)``.
    embedding_dim : int
    cost_sensitive : bool, default=False
        Weight each sample by the inverse frequency of its class in the batch.

    Attributes
    ----------
    centers : nn.Parameter of shape (n_classes, embedding_dim)
        Initialised from ``N(0, 1 / embedding_dim)`` (norms near 1, matching
        unit-norm embeddings).

    Notes
    -----
    Two departures from Wen et al.: ``forward`` is the batch mean rather than
    the batch sum (multiply by the batch size for their ``L_C``), and the
    centers are plain parameters learnt by whatever optimiser trains them,
    instead of Wen's separate update ``c_j <- c_j - alpha * delta c_j``.
    The loss is usually added with a weight ``lambda`` to a softmax loss.
    """

    def __init__(self, n_classes, embedding_dim, cost_sensitive=False):
        super().__init__(cost_sensitive)
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.centers = nn.Parameter(torch.empty(n_classes, embedding_dim))
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the centers from ``N(0, 1 / embedding_dim)``."""
        nn.init.normal_(self.centers, std=self.embedding_dim ** -0.5)

    def per_sample(self, embeddings, labels):
        """``1/2 ||f_i - c_{y_i}||^2`` for every sample.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, embedding_dim)
        labels : Tensor of shape (batch_size,)

        Returns
        -------
        Tensor of shape (batch_size,)
        """
        centers = self.centers.to(embeddings.dtype)[labels]
        return 0.5 * (embeddings - centers).pow(2).sum(dim=1)


class RangeLoss(nn.Module):
    """Range loss of Zhang et al. (ICCV 2017), ``alpha L_intra + beta L_inter``.

    Our reading of the paper, on a batch:

    * ``L_intra = sum_c k_c / sum_{j=1}^{k_c} 1 / D_j^c``: for every class
      ``c`` present in the batch, the harmonic mean of its ``k`` largest
      intra-class distances ``D_1^c >= D_2^c >= ...`` (over unordered pairs of
      distinct samples), summed over classes as in the paper's Eq. (3). A class
      with fewer than ``k`` pairs uses all its pairs (``k_c`` of them); a class
      with a single sample contributes 0.
    * ``L_inter = max(0, m - D(x_Q, x_R))``, with ``x_Q, x_R`` the two
      closest class centers, a center being the mean of the class's samples in
      the batch; 0 when the batch holds fewer than two classes.

    All distances are squared Euclidean, as in the paper's examples
    ``D_1 = ||x_1 - x_2||_2^2``. Each ``D_j`` is clamped to at least 1e-12
    inside the harmonic mean so that coincident points give a finite value.

    Parameters
    ----------
    k : int, default=2
        Number of largest intra-class distances per class.
    margin : float, default=1.0
        ``m``, in squared-distance units.
    alpha, beta : float, default=1.0
        Weights of the intra and inter terms.

    Notes
    -----
    There is no meaningful per-sample value; :meth:`terms` returns the two
    terms, ``forward`` their weighted sum. The paper adds it, weighted, to a
    softmax loss.
    """

    _eps = 1e-12

    def __init__(self, k=2, margin=1.0, alpha=1.0, beta=1.0):
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = k
        self.margin = margin
        self.alpha = alpha
        self.beta = beta

    def terms(self, embeddings, labels):
        """The intra-class and inter-class terms.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
        labels : Tensor of shape (batch_size,)

        Returns
        -------
        intra, inter : scalar Tensors
        """
        batch = labels.shape[0]
        _, member_of = torch.unique(labels, return_inverse=True)
        n_classes = int(member_of.max()) + 1 if batch else 0
        _, sq = pairwise_distances(embeddings)

        # Intra: per class, the k largest distances over pairs i < j.
        upper = torch.ones(batch, batch, dtype=torch.bool, device=labels.device).triu(1)
        in_class = member_of[None, :, None] == torch.arange(n_classes, device=labels.device)[:, None, None]
        pair_of_class = in_class & in_class.transpose(1, 2) & upper      # (C, B, B)
        neg_inf = torch.tensor(float("-inf"), dtype=sq.dtype, device=sq.device)
        masked = torch.where(pair_of_class, sq.expand_as(pair_of_class), neg_inf)
        masked = masked.reshape(n_classes, batch * batch)
        top, _ = masked.topk(min(self.k, batch * batch), dim=1)
        present = torch.isfinite(top)
        inverse = torch.where(present, 1.0 / top.clamp_min(self._eps), torch.zeros_like(top))
        n_present = present.sum(dim=1)
        harmonic = n_present.to(sq.dtype) / inverse.sum(dim=1).clamp_min(self._eps)
        intra = torch.where(n_present > 0, harmonic, torch.zeros_like(harmonic)).sum()
        intra = intra + 0.0 * embeddings.sum()

        # Inter: the closest pair of in-batch class centers.
        if n_classes < 2:
            inter = 0.0 * embeddings.sum()
        else:
            sums = embeddings.new_zeros(n_classes, embeddings.shape[1]).index_add(0, member_of, embeddings)
            counts = torch.bincount(member_of, minlength=n_classes).to(embeddings.dtype)
            centers = sums / counts[:, None]
            _, center_sq = pairwise_distances(centers)
            off = ~torch.eye(n_classes, dtype=torch.bool, device=labels.device)
            inter = F.relu(self.margin - center_sq[off].min())
        return intra, inter

    def forward(self, embeddings, labels):
        """``alpha * intra + beta * inter`` of :meth:`terms`."""
        intra, inter = self.terms(embeddings, labels)
        return self.alpha * intra + self.beta * inter


class ClassRectificationLoss(nn.Module):
    """Class rectification loss (CRL, Dong et al., ICCV 2017 / TPAMI 2018), instance level.

    Hard mining of the minority classes of each batch, as they come:

    * the *minority classes* of a batch are its smallest classes whose counts
      add up to at most half the batch (classes sorted by count, ties by
      label; the longest such prefix);
    * every sample of a minority class is an anchor ``a``; its hard
      positives are its ``k`` farthest same-class samples, its hard
      negatives its ``k`` nearest samples of other classes (fewer when the
      batch has fewer);
    * each (anchor, hard positive, hard negative) triplet gives the
      relative-comparison hinge ``[D(a, p) - D(a, n) + margin]_+``, with ``D``
      the squared Euclidean distance of Eq. (1).

    The loss is the mean over all such triplets (0 when there is none, e.g. a
    batch of one class). Added, weighted, to a softmax loss on the same batch.

    Parameters
    ----------
    k : int, default=3
        Hard positives and hard negatives per anchor.
    margin : float, default=0.2
        Margin of the hinge, in squared-distance units.

    Notes
    -----
    Dong et al. also define class-level (centroid) and score-level variants,
    and mine by the model's class scores as well as by feature distance; this
    is the instance-level, feature-distance form. Memory is
    ``O(batch_size^2 + batch_size k^2)``.

    Examples
    --------
    >>> import torch
    >>> labels = torch.tensor([0, 0, 0, 0, 1, 2])
    >>> ClassRectificationLoss.minority_mask(labels).tolist()
    [False, False, False, False, True, True]
    """

    def __init__(self, k=3, margin=0.2):
        super().__init__()
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.margin = margin

    @staticmethod
    def minority_mask(labels):
        """Which samples belong to a minority class of the batch.

        Parameters
        ----------
        labels : Tensor of shape (batch_size,)

        Returns
        -------
        BoolTensor of shape (batch_size,)
        """
        _, member_of, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        order = torch.sort(counts, stable=True).indices
        chosen_sorted = 2 * counts[order].cumsum(0) <= labels.shape[0]
        chosen = torch.zeros_like(chosen_sorted).scatter(0, order, chosen_sorted)
        return chosen[member_of]

    @torch.no_grad()
    def mine(self, embeddings, labels):
        """Anchors and their hard positives and negatives.

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, dim)
        labels : Tensor of shape (batch_size,)

        Returns
        -------
        anchors : BoolTensor of shape (batch_size,)
            Minority-class samples.
        positives, negatives : LongTensor of shape (batch_size, k')
            Indices of the farthest positives (by decreasing distance) and of
            the nearest negatives (by increasing distance) of every sample,
            ``k' = min(k, batch_size)``.
        positive_valid, negative_valid : BoolTensor of shape (batch_size, k')
            Whether each entry is a real positive (negative); a sample with
            fewer than ``k`` of them has invalid trailing entries.
        """
        _, sq = pairwise_distances(embeddings)
        positive, negative, _ = _pair_masks(labels)
        k = min(self.k, labels.shape[0])
        inf = torch.tensor(float("inf"), dtype=sq.dtype, device=sq.device)
        far, positives = torch.where(positive, sq, -inf).topk(k, dim=1)
        near, negatives = torch.where(negative, sq, inf).topk(k, dim=1, largest=False)
        return (self.minority_mask(labels), positives, negatives,
                torch.isfinite(far), torch.isfinite(near))

    def forward(self, embeddings, labels):
        """Mean hinge over the mined triplets of the minority anchors."""
        anchors, positives, negatives, pos_ok, neg_ok = self.mine(embeddings, labels)
        _, sq = pairwise_distances(embeddings)
        d_ap = sq.gather(1, positives)[:, :, None]
        d_an = sq.gather(1, negatives)[:, None, :]
        hinge = F.relu(d_ap - d_an + self.margin)                    # (a, p, n)
        valid = anchors[:, None, None] & pos_ok[:, :, None] & neg_ok[:, None, :]
        if not bool(valid.any()):
            return embeddings.sum() * 0.0
        return hinge[valid].mean()
