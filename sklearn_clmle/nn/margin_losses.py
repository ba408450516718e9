"""Margin-based and long-tail softmax losses on cosine logits (plain torch, no scikit-learn).

Every loss here takes *cosine logits* of shape ``(batch_size, n_classes)``,
``cos(theta_j) = f(x).w_j / |w_j|`` with unit ``f(x)`` (values in [-1, 1]),
and integer class labels, multiplies by a ``scale`` ``s`` and applies a
softmax cross-entropy (or focal loss) to modified logits:

==========================  ================================================
:class:`CosFaceLoss`        ``s (cos theta_j - m [j = y])``
:class:`ArcFaceLoss`        ``s cos(theta_y + m)`` for the true class
:class:`SphereFaceLoss`     ``s psi(theta_y)`` for the true class, Eq. (3)
:class:`LDAMLoss`           ``s (cos theta_j - Delta_y [j = y])``
:class:`LogitAdjustedLoss`  ``s cos theta_j + tau log pi_j``
:class:`FocalLoss`          ``-alpha_y (1 - p_y)^gamma log p_y``
==========================  ================================================

The margins and adjustments are training-time devices only: predict with
``argmax_j cos theta_j``.

Each module has ``per_sample(cosine_logits, class_ids)`` (unreduced values),
``forward`` (the reduced value) and ``logits(cosine_logits, class_ids)`` (the
modified, scaled logits fed to the cross-entropy).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .losses import sample_weights, weighted_mean

__all__ = [
    "ArcFaceLoss",
    "CosFaceLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "SphereFaceLoss",
    "class_balanced_weights",
    "deferred_reweighting",
]

#: Default clamp of the cosines before ``acos``: keeps ``d acos / d cos`` finite.
_ACOS_EPS = 1e-7


def _counts_tensor(class_counts):
    counts = torch.as_tensor(class_counts, dtype=torch.float64).reshape(-1)
    if counts.numel() == 0:
        raise ValueError("class_counts must not be empty.")
    if not bool(torch.all(counts > 0)):
        raise ValueError(f"class_counts must all be positive, got {counts.tolist()}.")
    return counts


def class_balanced_weights(class_counts, beta=0.999, dtype=None):
    """Class-balanced weights of Cui et al. (CVPR 2019), "effective number of samples".

    ``w_c = (1 - beta) / (1 - beta^{n_c})``, normalised so that ``sum_c w_c = C``.
    ``beta = 0`` gives uniform weights; ``beta -> 1`` tends to inverse class
    frequency ``1 / n_c`` (``beta = 1`` is accepted and returns that limit).

    Parameters
    ----------
    class_counts : sequence of int of length n_classes
        Number of training samples of every class; all positive.
    beta : float in [0, 1], default=0.999
        Hyper-parameter of the effective number ``(1 - beta^n) / (1 - beta)``.
    dtype : torch.dtype, optional
        Floating dtype of the result; defaults to torch's default dtype.

    Returns
    -------
    Tensor of shape (n_classes,)
        Per-class weights summing to ``n_classes``.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}.")
    counts = _counts_tensor(class_counts)
    if beta == 1.0:
        weights = 1.0 / counts
    elif beta == 0.0:
        weights = torch.ones_like(counts)
    else:
        # 1 - beta^n computed as -expm1(n log beta): accurate for beta close to 1.
        weights = (1.0 - beta) / -torch.expm1(counts * math.log(beta))
    weights = weights * (counts.numel() / weights.sum())
    return weights.to(dtype or torch.get_default_dtype())


def deferred_reweighting(epoch, start_epoch, class_counts, beta=0.999, dtype=None):
    """Per-class weights of the deferred re-weighting (DRW) schedule of LDAM-DRW.

    Cao et al. (NeurIPS 2019) train with unweighted loss first and switch to
    class-balanced weights late in training. Use as::

        loss.weight = deferred_reweighting(epoch, start_epoch, counts)

    at the start of every epoch (:class:`LDAMLoss` and the other losses here
    accept ``weight=None``).

    Parameters
    ----------
    epoch : int
        Current epoch (any origin, the same as ``start_epoch``).
    start_epoch : int
        First epoch with re-weighting.
    class_counts : sequence of int of length n_classes
        Training samples per class.
    beta : float, default=0.999
        See :func:`class_balanced_weights` (the LDAM code uses 0.9999).
    dtype : torch.dtype, optional
        Floating dtype of the weights.

    Returns
    -------
    None or Tensor of shape (n_classes,)
        ``None`` while ``epoch < start_epoch``, else :func:`class_balanced_weights`.
    """
    if epoch < start_epoch:
        return None
    return class_balanced_weights(class_counts, beta=beta, dtype=dtype)


def _true_class_mask(cosine_logits, class_ids):
    return F.one_hot(class_ids, cosine_logits.shape[1]).to(torch.bool)


class _CosineCrossEntropy(nn.Module):
    """Cross-entropy on ``logits(cosine_logits, class_ids)``, optional sample weights.

    A sample's weight is ``w_y`` (the per-class ``weight``, 1 when None) times,
    when ``cost_sensitive``, ``1 / n_y`` with ``n_y`` the count of its class
    in the batch (the cost-sensitive weights of the CLMLE paper, Sec. 3.3).
    ``per_sample`` returns ``weight_i * CE_i``; ``forward`` returns
    ``sum_i weight_i CE_i / sum_i weight_i`` (torch's weighted ``mean``), or
    the plain mean when no weight applies.
    """

    def __init__(self, scale, weight=None, cost_sensitive=False):
        super().__init__()
        self.scale = scale
        self.weight = weight
        self.cost_sensitive = cost_sensitive

    def logits(self, cosine_logits, class_ids):  # pragma: no cover - abstract
        raise NotImplementedError

    def _cross_entropy(self, cosine_logits, class_ids):
        return F.cross_entropy(self.logits(cosine_logits, class_ids), class_ids,
                               reduction="none")

    def _sample_weights(self, values, class_ids):
        return sample_weights(class_ids, values, self.cost_sensitive, self.weight)

    def per_sample(self, cosine_logits, class_ids):
        """Unreduced (weighted) cross-entropy of :meth:`logits`.

        Parameters
        ----------
        cosine_logits : Tensor of shape (batch_size, n_classes)
            Cosines between unit features and unit class weights, in [-1, 1].
        class_ids : Tensor of shape (batch_size,)
            Integer class of each sample, in ``[0, n_classes)``.

        Returns
        -------
        Tensor of shape (batch_size,)
        """
        values = self._cross_entropy(cosine_logits, class_ids)
        weights = self._sample_weights(values, class_ids)
        return values if weights is None else weights * values

    def forward(self, cosine_logits, class_ids):
        """Reduced loss: mean of :meth:`per_sample`, weighted mean if ``weight`` is set."""
        values = self._cross_entropy(cosine_logits, class_ids)
        return weighted_mean(values, self._sample_weights(values, class_ids))


class CosFaceLoss(_CosineCrossEntropy):
    """Large margin cosine loss (CosFace / LMCL, Wang et al. 2018).

    Cross-entropy on ``s (cos theta_j - m [j = y])``. ``margin=0`` is the
    plain scaled cosine softmax.

    Parameters
    ----------
    scale : float, default=30.0
        ``s``.
    margin : float, default=0.35
        ``m``, subtracted from the true-class cosine.
    weight : array-like of shape (n_classes,), optional
        Per-class weights of the cross-entropy; may be reassigned between epochs.
    cost_sensitive : bool, default=False
        Also weight each sample by ``1 / n_y``, the inverse count of its class
        in the batch (Sec. 3.3 of the CLMLE paper). With ``margin=0`` this is
        the cost-sensitive cosine softmax of CLMLE's pre-training.
    """

    def __init__(self, scale=30.0, margin=0.35, weight=None, cost_sensitive=False):
        super().__init__(scale, weight, cost_sensitive)
        self.margin = margin

    def logits(self, cosine_logits, class_ids):
        """Scaled logits ``s (cos theta_j - m [j = y])``."""
        mask = _true_class_mask(cosine_logits, class_ids)
        return self.scale * (cosine_logits - self.margin * mask.to(cosine_logits.dtype))


class ArcFaceLoss(_CosineCrossEntropy):
    """Additive angular margin loss (ArcFace, Deng et al. 2019).

    Cross-entropy on ``s cos(theta_y + m)`` for the true class and
    ``s cos theta_j`` for the others, ``theta = acos(clamp(cos, -1 + eps, 1 - eps))``
    (the clamp keeps the gradient of ``acos`` finite; cosines outside it get
    zero gradient).

    ``cos(theta + m)`` stops decreasing once ``theta + m > pi``. Two usual fixes:

    * ``easy_margin=False`` (default, the insightface choice): when
      ``theta > pi - m`` use ``cos theta - m sin(m)`` instead, a linear
      penalty still decreasing in ``theta`` (slightly discontinuous at the
      threshold);
    * ``easy_margin=True``: apply the margin only when ``cos theta > 0``,
      otherwise keep ``cos theta``.

    ``margin=0`` is the plain scaled cosine softmax.

    Parameters
    ----------
    scale : float, default=30.0
        ``s``.
    margin : float, default=0.5
        ``m``, added to the true-class angle (radians).
    easy_margin : bool, default=False
        Threshold choice, see above.
    eps : float, default=1e-7
        Clamp of the cosines before ``acos``.
    weight : array-like of shape (n_classes,), optional
        Per-class weights of the cross-entropy.
    cost_sensitive : bool, default=False
        Also weight each sample by the inverse count of its class in the
        batch (see :class:`CosFaceLoss`).
    """

    def __init__(self, scale=30.0, margin=0.5, easy_margin=False, eps=_ACOS_EPS, weight=None,
                 cost_sensitive=False):
        super().__init__(scale, weight, cost_sensitive)
        self.margin = margin
        self.easy_margin = easy_margin
        self.eps = eps

    def logits(self, cosine_logits, class_ids):
        """Scaled logits with ``cos(theta_y + m)`` in the true-class column."""
        cos_y = cosine_logits.gather(1, class_ids[:, None]).squeeze(1)
        theta = torch.acos(cos_y.clamp(-1.0 + self.eps, 1.0 - self.eps))
        target = torch.cos(theta + self.margin)
        if self.easy_margin:
            target = torch.where(cos_y > 0, target, cos_y)
        else:
            fallback = cos_y - self.margin * math.sin(self.margin)
            target = torch.where(theta + self.margin <= math.pi, target, fallback)
        adjusted = cosine_logits.scatter(1, class_ids[:, None], target[:, None])
        return self.scale * adjusted


class SphereFaceLoss(_CosineCrossEntropy):
    """A-Softmax (SphereFace, Liu et al. 2017), Eq. (3) of the CLMLE paper.

    Cross-entropy on ``s psi(theta_y)`` for the true class and ``s cos theta_j``
    for the others, with the monotone extension of ``cos(m theta)``::

        psi(theta) = (-1)^k cos(m theta) - 2k,   theta in [k pi / m, (k + 1) pi / m],

    ``k = 0, ..., m - 1``. Eq. (3) multiplies by the feature norm ``||f(x)||``;
    here features are unit vectors, so ``||f(x)||`` is replaced by the fixed
    ``scale`` (as in normalised-feature variants of A-Softmax).

    Parameters
    ----------
    scale : float, default=30.0
        ``s``, stands for ``||f(x)||``.
    margin : int, default=4
        ``m >= 1``, the multiplicative angular margin; ``m=1`` is the plain
        scaled cosine softmax.
    cos_weight : float, default=0.0
        ``lambda >= 0`` of the SphereFace training trick: the true-class
        value is ``(lambda cos theta + psi(theta)) / (1 + lambda)``; anneal
        it from large to small to ease optimisation. ``0`` is Eq. (3).
    eps : float, default=1e-7
        Clamp of the cosines before ``acos``.
    weight : array-like of shape (n_classes,), optional
        Per-class weights of the cross-entropy.
    cost_sensitive : bool, default=False
        Also weight each sample by the inverse count of its class in the
        batch (see :class:`CosFaceLoss`).
    """

    def __init__(self, scale=30.0, margin=4, cos_weight=0.0, eps=_ACOS_EPS, weight=None,
                 cost_sensitive=False):
        super().__init__(scale, weight, cost_sensitive)
        if int(margin) != margin or margin < 1:
            raise ValueError(f"margin must be a positive integer, got {margin}.")
        self.margin = int(margin)
        self.cos_weight = cos_weight
        self.eps = eps

    def psi(self, cosine):
        """``psi(theta)`` of Eq. (3) as a function of ``cos theta``."""
        theta = torch.acos(cosine.clamp(-1.0 + self.eps, 1.0 - self.eps))
        k = torch.floor(self.margin * theta / math.pi).clamp(0, self.margin - 1).detach()
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
        return sign * torch.cos(self.margin * theta) - 2.0 * k

    def logits(self, cosine_logits, class_ids):
        """Scaled logits with ``psi(theta_y)`` in the true-class column."""
        cos_y = cosine_logits.gather(1, class_ids[:, None]).squeeze(1)
        target = (self.cos_weight * cos_y + self.psi(cos_y)) / (1.0 + self.cos_weight)
        adjusted = cosine_logits.scatter(1, class_ids[:, None], target[:, None])
        return self.scale * adjusted


class LDAMLoss(_CosineCrossEntropy):
    """Label-distribution-aware margin loss (LDAM, Cao et al., NeurIPS 2019).

    Cross-entropy on ``s (cos theta_j - Delta_y [j = y])`` with per-class margins
    ``Delta_c = C / n_c^{1/4}``, ``C`` chosen so that ``max_c Delta_c = max_margin``
    (rare classes get the largest margin). For LDAM-DRW set ``weight`` from
    :func:`deferred_reweighting` at every epoch.

    Parameters
    ----------
    class_counts : sequence of int of length n_classes
        Training samples per class; all positive.
    max_margin : float, default=0.5
        Margin of the rarest class. ``0`` is the plain scaled cosine softmax.
    scale : float, default=30.0
        ``s``.
    weight : array-like of shape (n_classes,), optional
        Per-class weights of the cross-entropy (deferred re-weighting).
    cost_sensitive : bool, default=False
        Also weight each sample by the inverse count of its class in the
        batch (see :class:`CosFaceLoss`).

    Attributes
    ----------
    margins : Tensor of shape (n_classes,)
        ``Delta_c`` (float64 buffer).
    """

    def __init__(self, class_counts, max_margin=0.5, scale=30.0, weight=None,
                 cost_sensitive=False):
        super().__init__(scale, weight, cost_sensitive)
        self.class_counts = class_counts
        self.max_margin = max_margin
        raw = _counts_tensor(class_counts).pow(-0.25)
        self.register_buffer("margins", raw * (max_margin / raw.max()))

    def logits(self, cosine_logits, class_ids):
        """Scaled logits ``s (cos theta_j - Delta_y [j = y])``."""
        margins = self.margins.to(cosine_logits)[class_ids]
        mask = _true_class_mask(cosine_logits, class_ids).to(cosine_logits.dtype)
        return self.scale * (cosine_logits - margins[:, None] * mask)


class LogitAdjustedLoss(_CosineCrossEntropy):
    """Logit-adjusted softmax cross-entropy (Menon et al., ICLR 2021).

    Cross-entropy on ``s cos theta_j + tau log pi_j`` with the class prior
    ``pi_j = n_j / sum_c n_c``. ``tau = 1`` is the balanced softmax of Ren et al.
    (NeurIPS 2020); ``tau = 0`` the plain scaled cosine softmax. Predict with
    the unadjusted ``argmax_j cos theta_j``.

    Parameters
    ----------
    class_counts : sequence of int of length n_classes
        Training samples per class; all positive.
    tau : float, default=1.0
        Strength of the adjustment.
    scale : float, default=30.0
        ``s``.
    weight : array-like of shape (n_classes,), optional
        Per-class weights of the cross-entropy.

    Attributes
    ----------
    log_prior : Tensor of shape (n_classes,)
        ``log pi_j`` (float64 buffer).
    """

    def __init__(self, class_counts, tau=1.0, scale=30.0, weight=None, cost_sensitive=False):
        super().__init__(scale, weight, cost_sensitive)
        self.class_counts = class_counts
        self.tau = tau
        counts = _counts_tensor(class_counts)
        self.register_buffer("log_prior", torch.log(counts / counts.sum()))

    def logits(self, cosine_logits, class_ids):
        """Scaled, adjusted logits ``s cos theta_j + tau log pi_j``."""
        return self.scale * cosine_logits + self.tau * self.log_prior.to(cosine_logits)


class FocalLoss(nn.Module):
    """Multi-class focal loss (Lin et al., ICCV 2017) on scaled cosine logits.

    ``-alpha_y (1 - p_y)^gamma log p_y`` with ``p = softmax(s cos theta)``.
    ``gamma = 0`` and ``alpha=None`` is the plain scaled cosine softmax.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing parameter ``gamma >= 0``.
    alpha : float or array-like of shape (n_classes,), optional
        Class weight ``alpha_y``: a scalar applies to every class, a sequence
        per class (e.g. :func:`class_balanced_weights`); None means 1.
    scale : float, default=30.0
        ``s``.

    Notes
    -----
    ``forward`` is the plain mean of :meth:`per_sample` (as in the focal loss
    paper), not normalised by the ``alpha`` weights.
    """

    def __init__(self, gamma=2.0, alpha=None, scale=30.0):
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha
        self.scale = scale

    def logits(self, cosine_logits, class_ids=None):
        """Scaled logits ``s cos theta_j``."""
        return self.scale * cosine_logits

    def per_sample(self, cosine_logits, class_ids):
        """Unreduced focal loss.

        Parameters
        ----------
        cosine_logits : Tensor of shape (batch_size, n_classes)
            Cosines in [-1, 1].
        class_ids : Tensor of shape (batch_size,)
            Integer class of each sample.

        Returns
        -------
        Tensor of shape (batch_size,)
        """
        log_p = F.log_softmax(self.logits(cosine_logits), dim=1)
        log_p_y = log_p.gather(1, class_ids[:, None]).squeeze(1)
        values = -log_p_y
        if self.gamma != 0:
            # 1 - p_y as -expm1(log p_y): no cancellation when p_y is close to 1.
            values = values * (-torch.expm1(log_p_y)).clamp_min(0).pow(self.gamma)
        if self.alpha is not None:
            alpha = torch.as_tensor(self.alpha, dtype=values.dtype, device=values.device)
            values = values * (alpha[class_ids] if alpha.dim() else alpha)
        return values

    def forward(self, cosine_logits, class_ids):
        """Reduced loss: mean of :meth:`per_sample`."""
        return self.per_sample(cosine_logits, class_ids).mean()
