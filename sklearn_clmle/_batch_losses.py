"""The loss of one training batch: the skorch criterion of every embedder.

:meth:`~._training.EmbeddingNet.get_loss` calls the criterion as
``criterion(y_pred, class_codes, **plan.criterion_inputs(indices))``, where
``y_pred`` is the network's ``(embeddings, cosine_logits)``. A criterion
computes the loss and nothing else: the caches that read it (the hardest
query of Sec. 3.3, the running class centers of IR-Softmax) are filled by
callbacks after the batch (:mod:`._plans`). Pure torch, no scikit-learn.
"""

from torch import nn


class ClusterCriterion(nn.Module):
    """Batch loss of cluster training (Sec. 3.3, step 4), in either stage.

    In pre-training (``cluster_ids=None``) the cosine softmax alone; in a
    cluster round the cluster loss (Eq. (9) for CLMLE, Eq. (5) for LMLE)
    plus ``softmax_weight`` times the cosine softmax.

    Parameters
    ----------
    cluster_loss : ClusterMarginLoss or TripleHeaderHingeLoss
        Any module with ``per_sample(embeddings, cluster_ids, class_ids)``
        whose call is the reduced loss.
    softmax_loss : CosFaceLoss or LogitAdjustedLoss
        Called as ``softmax_loss(cosine_logits, class_codes)``.
    softmax_weight : float
        Weight of the softmax term in the cluster rounds.
    """

    def __init__(self, cluster_loss, softmax_loss, softmax_weight):
        super().__init__()
        self.cluster_loss = cluster_loss
        self.softmax_loss = softmax_loss
        self.softmax_weight = softmax_weight

    def softmax_term(self, cosine_logits, class_codes):
        """The (cost-sensitive) cosine softmax of the pre-training and auxiliary term."""
        return self.softmax_loss(cosine_logits, class_codes)

    def cluster_term(self, embeddings, class_codes, cluster_ids):
        """The reduced cluster loss of the batch."""
        return self.cluster_loss(embeddings, cluster_ids, class_codes)

    def per_sample(self, embeddings, class_codes, cluster_ids):
        """Unreduced cluster loss of every sample (what the hardest query ranks)."""
        return self.cluster_loss.per_sample(embeddings, cluster_ids, class_codes)

    def forward(self, y_pred, class_codes, cluster_ids=None):
        embeddings, cosine_logits = y_pred
        if cluster_ids is None:
            return self.softmax_term(cosine_logits, class_codes)
        total = self.cluster_term(embeddings, class_codes, cluster_ids)
        if self.softmax_weight:
            total = total + self.softmax_weight * self.softmax_term(cosine_logits, class_codes)
        return total


class SingleLossCriterion(nn.Module):
    """Batch loss of the baselines: one loss, optionally plus an auxiliary loss.

    Parameters
    ----------
    loss : nn.Module
        Called as ``loss(inputs, class_codes)``.
    on : {"logits", "embeddings"}
        What ``loss`` reads from the network's output.
    auxiliary_loss : nn.Module or None, default=None
        Called as ``auxiliary_loss(embeddings, class_codes)``; the batch loss
        is ``loss + auxiliary_weight * auxiliary_loss``. Its parameters (e.g.
        center-loss centers) are trained with the network's: skorch
        optimises the criterion's parameters beside the module's.
    auxiliary_weight : float, default=0.0
        Weight of ``auxiliary_loss``.
    centers : ClassCenterTracker or None, default=None
        When set, the cosine logits are ``f(x) . c_j`` with the tracked
        centers instead of the network's learned class weights (IR-Softmax).
    """

    def __init__(self, loss, on, auxiliary_loss=None, auxiliary_weight=0.0, centers=None):
        super().__init__()
        self.loss = loss
        self.output = 1 if on == "logits" else 0
        self.auxiliary_loss = auxiliary_loss
        self.auxiliary_weight = auxiliary_weight
        self.centers = centers

    def forward(self, y_pred, class_codes):
        embeddings = y_pred[0]
        if self.centers is not None:
            y_pred = (embeddings, self.centers(embeddings))
        total = self.loss(y_pred[self.output], class_codes)
        if self.auxiliary_loss is not None:
            total = total + self.auxiliary_weight * self.auxiliary_loss(embeddings, class_codes)
        return total
