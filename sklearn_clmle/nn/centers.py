"""Class centers of the embeddings, tracked without gradient (IR-Softmax's class weights).

IR-Softmax (Zhu et al.) replaces the free class weights of a normalised
softmax by the class centers of the features: a rare class then gets a weight
that sits where its samples are, instead of one pushed aside by the gradients
of the frequent classes. Nothing here imports scikit-learn.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ClassCenterTracker", "ClassCentreTracker"]


class ClassCenterTracker(nn.Module):
    """Unit-norm class centers of embeddings, updated outside of autograd.

    Two update rules:

    * :meth:`reset` sets every center to the normalised mean of its class's
      embeddings (used at the start of training, and at the start of every
      epoch for a full pass over the training data);
    * :meth:`update` moves the centers of the classes present in a batch
      towards their batch means, ``c <- normalise(m c + (1 - m) mean_batch)``
      (a running mean).

    Calling the module gives cosine logits ``f_i . c_j`` (the centers are a
    buffer, so no gradient reaches them).

    Parameters
    ----------
    n_classes : int
        Number of centers; labels lie in ``[0, n_classes)``.
    embedding_dim : int
        Dimension of the embeddings.
    momentum : float in [0, 1), default=0.9
        ``m`` of :meth:`update`; 0 replaces a center by its batch mean.

    Attributes
    ----------
    centers : Tensor of shape (n_classes, embedding_dim)
        Unit-norm centers (zeros until the first :meth:`reset`).

    Examples
    --------
    >>> import torch
    >>> tracker = ClassCenterTracker(2, 2, momentum=0.5)
    >>> tracker.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
    >>> tracker.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    >>> tracker.centers
    tensor([[0.7071, 0.7071],
            [0.0000, 1.0000]])
    """

    def __init__(self, n_classes, embedding_dim, momentum=0.9):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}.")
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.momentum = momentum
        self.register_buffer("centers", torch.zeros(n_classes, embedding_dim))

    def _class_sums(self, embeddings, labels):
        sums = embeddings.new_zeros(self.n_classes, embeddings.shape[1])
        sums = sums.index_add(0, labels, embeddings)
        counts = torch.bincount(labels, minlength=self.n_classes)
        return sums, counts

    @torch.no_grad()
    def reset(self, embeddings, labels):
        """Centers from scratch: the normalised class means of ``embeddings``.

        Classes absent from ``labels`` keep their center. The centers move to
        the device and dtype of ``embeddings``.

        Parameters
        ----------
        embeddings : Tensor of shape (n_samples, embedding_dim)
        labels : Tensor of shape (n_samples,)
        """
        embeddings = embeddings.detach()
        sums, counts = self._class_sums(embeddings, labels.to(embeddings.device))
        centers = self.centers.to(embeddings)
        self.centers = torch.where((counts > 0)[:, None], F.normalize(sums, dim=1), centers)

    @torch.no_grad()
    def update(self, embeddings, labels):
        """Running-mean step with one batch (classes absent from it are unchanged).

        Parameters
        ----------
        embeddings : Tensor of shape (batch_size, embedding_dim)
        labels : Tensor of shape (batch_size,)
        """
        embeddings = embeddings.detach()
        sums, counts = self._class_sums(embeddings, labels.to(embeddings.device))
        centers = self.centers.to(embeddings)
        means = sums / counts.clamp_min(1).to(sums.dtype)[:, None]
        moved = F.normalize(self.momentum * centers + (1.0 - self.momentum) * means, dim=1)
        self.centers = torch.where((counts > 0)[:, None], moved, centers)

    def forward(self, embeddings):
        """Cosine logits ``embeddings @ centers.T`` (constant in the centers)."""
        return embeddings @ self.centers.to(embeddings).T


class ClassCentreTracker(ClassCenterTracker):
    """Deprecated alias of :class:`ClassCenterTracker`.

    .. deprecated:: 0.2
        ``ClassCentreTracker`` was renamed to ``ClassCenterTracker`` (and its
        ``centres`` to ``centers``) in 0.2 and will be removed in 0.4.
    """

    def __init__(self, n_classes, embedding_dim, momentum=0.9):
        warnings.warn("ClassCentreTracker was renamed to ClassCenterTracker in 0.2 and will "
                      "be removed in 0.4.", FutureWarning, stacklevel=2)
        super().__init__(n_classes, embedding_dim, momentum)

    @property
    def centres(self):
        """Deprecated name of ``centers``."""
        return self.centers
