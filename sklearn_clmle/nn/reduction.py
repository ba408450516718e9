"""Cost-sensitive reduction of per-sample losses, and the loss template that uses it.

Sec. 3.3, step 4 of Huang et al. (TPAMI 2019) weights every sample of a
batch by the inverse frequency of its class in that batch, so that each
class present counts as much as any other. Every loss of the package that
offers ``cost_sensitive`` reduces through :func:`sample_weights` and
:func:`weighted_mean`; the losses of the form "per-sample values, then
their mean" derive from :class:`PerSampleLoss`. Pure torch.
"""

import torch
from torch import nn

__all__ = ["PerSampleLoss", "inverse_frequency_weights", "sample_weights", "weighted_mean"]


def inverse_frequency_weights(class_codes, dtype=None):
    """Per-sample weights ``1 / n_c`` where ``n_c`` counts the sample's class in the batch.

    Parameters
    ----------
    class_codes : Tensor of shape (batch_size,)
        Integer class of each sample.
    dtype : torch.dtype, optional
        Floating dtype of the weights; defaults to torch's default dtype.

    Returns
    -------
    Tensor of shape (batch_size,)
        Weights; each class present in the batch sums to one.
    """
    _, inverse, counts = torch.unique(class_codes, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].to(dtype or torch.get_default_dtype())


def sample_weights(class_codes, like, cost_sensitive=False, class_weight=None):
    """Weight of every sample: ``class_weight[y_i]`` times ``1 / n_{y_i}``, or None.

    Parameters
    ----------
    class_codes : Tensor of shape (batch_size,)
        Integer class of each sample.
    like : Tensor
        The weights take its dtype and device: 1 / n_c rounded to float32
        would bias a float64 loss by about 1e-8 relative.
    cost_sensitive : bool, default=False
        Include the in-batch inverse class frequency ``1 / n_{y_i}``.
    class_weight : array-like of shape (n_classes,) or None, default=None
        Fixed per-class weights.

    Returns
    -------
    Tensor of shape (batch_size,) or None
        None when neither weighting applies (a plain mean).
    """
    weights = None
    if class_weight is not None:
        weights = torch.as_tensor(class_weight, dtype=like.dtype, device=like.device)
        weights = weights[class_codes]
    if cost_sensitive:
        batch = inverse_frequency_weights(class_codes, dtype=like.dtype)
        weights = batch if weights is None else weights * batch
    return weights


def weighted_mean(values, weights=None):
    """``sum_i w_i v_i / sum_i w_i``; the plain mean when ``weights`` is None."""
    if weights is None:
        return values.mean()
    return (weights * values).sum() / weights.sum()


class PerSampleLoss(nn.Module):
    """Template of a loss: :meth:`per_sample` values, then :meth:`reduce` over the batch.

    Subclasses implement ``per_sample(*inputs)``, whose last input is the
    class of every sample; ``forward`` is their (cost-sensitive) mean, as
    in pytorch-metric-learning's split of ``compute_loss`` and reduction.

    Parameters
    ----------
    cost_sensitive : bool
        Weight each sample by the inverse frequency of its class in the
        batch (Sec. 3.3, step 4); otherwise a plain mean.
    """

    def __init__(self, cost_sensitive):
        super().__init__()
        self.cost_sensitive = cost_sensitive

    def per_sample(self, *inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def reduce(self, values, class_ids, keep=None):
        """Cost-sensitive (or plain) mean of per-sample values.

        With a boolean ``keep``, the mean over those samples only (their
        class frequencies counted among them); an exact zero tied to the
        graph when none is kept, so that backward still runs and gives zeros.
        """
        if keep is not None:
            if not bool(keep.any()):
                return values.sum() * 0.0
            values, class_ids = values[keep], class_ids[keep]
        return weighted_mean(values, sample_weights(class_ids, values, self.cost_sensitive))

    def forward(self, *inputs):
        """Reduced loss: :meth:`reduce` of :meth:`per_sample`."""
        return self.reduce(self.per_sample(*inputs), inputs[-1])
