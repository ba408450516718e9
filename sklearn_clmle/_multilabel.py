"""Multi-label attributes (Sec. 5.3): one embedding head per binary attribute.

Everything that a binary indicator matrix ``y`` changes lives here: the
label encoding, the network's heads, the training plan and criterion (every
step of Sec. 3.3 done per attribute), and the layout of ``transform``'s
output. Only :class:`~sklearn_clmle.CLMLEEmbedder` accepts multi-label
``y`` (through :class:`MultiLabelMixin`); the other embedders never see it.
"""

import math

import numpy as np
import torch
from sklearn.utils.validation import _check_feature_names_in

from ._batch_losses import ClusterCriterion
from ._plans import ClusterPlan
from .nn.sampling import InterleavedBatchSampler


class MultiLabelClusterPlan(ClusterPlan):
    """Cluster training of one embedding head per binary attribute (Sec. 3.3, 5.3).

    The schedule of :class:`ClusterPlan` with every step done per attribute:
    each round re-clusters both classes of every attribute on that
    attribute's head; each batch is built from ONE attribute's clusters (or,
    in pre-training, balanced for one attribute), the attributes taking turns
    (:class:`~.nn.sampling.InterleavedBatchSampler`), because re-sampling
    to balance all attributes at once is infeasible. Each attribute's
    sampler caches its own head's per-sample losses for its hardest-query
    choice.

    Parameters
    ----------
    features, generator, embed_batch_size, cluster_size, clusters_per_batch, \
samples_per_cluster, pretrain_steps, n_rounds, steps_per_round, query
        As in :class:`ClusterPlan`; the steps count batches over all
        attributes.
    class_codes : Tensor of shape (n_samples, n_attributes)
        0/1 code of every attribute.
    """

    def make_samplers(self, class_codes, clusters_per_batch, samples_per_cluster,
                      pretrain_steps, steps_per_round, query):
        n_attributes = class_codes.shape[1]
        single = super().make_samplers
        pretrain, cluster = zip(*[
            single(codes, clusters_per_batch, samples_per_cluster,
                   math.ceil(pretrain_steps / n_attributes),
                   math.ceil(steps_per_round / n_attributes), query, capped=False)
            for codes in class_codes.T])
        return (InterleavedBatchSampler(pretrain, pretrain_steps),
                InterleavedBatchSampler(cluster, steps_per_round))

    def recluster(self, net):
        embeddings = self.embed_training_data(net)
        heads = embeddings.reshape(len(embeddings), self.class_codes.shape[1], -1)
        return sum(index.refresh(heads[:, a]).n_clusters
                   for a, index in enumerate(self.cluster_sampler.samplers))

    def cluster_ids(self, indices):
        # One column per attribute: each head is clustered on its own.
        return torch.stack([index.cluster_ids(indices)
                            for index in self.cluster_sampler.samplers], dim=1)

    def record_losses(self, indices, per_sample):
        for a, index in enumerate(self.cluster_sampler.samplers):
            index.record_losses(indices, per_sample[:, a])


class MultiLabelClusterCriterion(ClusterCriterion):
    """Batch loss of a multi-label network: the mean over heads of each head's loss.

    Each head's term (Eq. (9) for CLMLE; the softmax in pre-training) uses
    that attribute's clusters and in-batch inverse class frequencies, so the
    cost-sensitive weights re-balance the attributes the batch was not drawn
    for. ``embeddings`` are ``(batch, n_attributes, dim)``, ``cosine_logits``
    ``(batch, n_attributes, 2)``, ``class_codes`` and ``cluster_ids``
    ``(batch, n_attributes)``.
    """

    def softmax_term(self, cosine_logits, class_codes):
        single = super().softmax_term
        return torch.stack([single(cosine_logits[:, a], class_codes[:, a])
                            for a in range(class_codes.shape[1])]).mean()

    def cluster_term(self, embeddings, class_codes, cluster_ids):
        single = super().cluster_term
        return torch.stack([single(embeddings[:, a], class_codes[:, a], cluster_ids[:, a])
                            for a in range(class_codes.shape[1])]).mean()

    def per_sample(self, embeddings, class_codes, cluster_ids):
        single = super().per_sample
        return torch.stack([single(embeddings[:, a], class_codes[:, a], cluster_ids[:, a])
                            for a in range(class_codes.shape[1])], dim=1)


class MultiLabelMixin:
    """What a binary indicator matrix ``y`` changes in a cluster embedder.

    Placed before :class:`~._base.BaseClusterEmbedder` in the bases of an
    estimator tagged ``target_tags.multi_output``; single-label ``y`` goes
    to the base class unchanged.
    """

    def _encode_labels(self, y):
        if y.ndim != 2:
            return super()._encode_labels(y)
        self.classes_ = [np.unique(column) for column in y.T]
        self.n_attributes_ = y.shape[1]
        return y.astype(np.int64)

    def _class_counts(self, codes):
        if codes.ndim != 2:
            return super()._class_counts(codes)
        return np.stack([np.bincount(column, minlength=2) for column in codes.T])

    def _check_params_vs_input(self, class_counts):
        # Multi-label counts are (n_attributes, 2).
        if self.validation_fraction is not None and class_counts.ndim == 2:
            raise ValueError("validation_fraction supports one label per sample; with "
                             "multi-label y, leave it None and hold out data yourself.")
        if self.pretrain_loss == "logit_adjusted" and class_counts.ndim == 2:
            raise ValueError("pretrain_loss='logit_adjusted' needs one label per sample (its "
                             "prior is one class distribution); use pretrain_loss='balanced' "
                             "with multi-label y.")
        return super()._check_params_vs_input(class_counts)

    def _network_targets(self):
        if hasattr(self, "n_attributes_"):
            return 2, self.n_attributes_
        return super()._network_targets()

    def _training_types(self, class_codes):
        if class_codes.ndim != 2:
            return super()._training_types(class_codes)
        # The schedule and loss of the base class, every step per attribute.
        return MultiLabelClusterPlan, MultiLabelClusterCriterion

    def _embed(self, module, features):
        out = super()._embed(module, features)
        if self.test_time_flip and hasattr(self, "n_attributes_"):
            # [all heads of the image | all of the mirror] -> per attribute
            # [head of the image, head of the mirror]: blocks stay contiguous.
            out = out.reshape(len(out), 2, self.n_attributes_, -1).transpose(1, 2).flatten(1)
        return out

    @property
    def _n_features_out(self):
        return super()._n_features_out * getattr(self, "n_attributes_", 1)

    def get_feature_names_out(self, input_features=None):
        """Output feature names.

        ``<lowercase class name><j>`` for ``j`` in ``range(embedding_dim_)``;
        after a multi-label fit, ``<name>_attr<a>_<j>`` for the ``j``-th
        dimension of the block of attribute ``a`` (the column index of ``y``);
        ``j`` counts to ``2 * embedding_dim_`` with ``test_time_flip``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against ``feature_names_in_``.

        Returns
        -------
        ndarray of str objects
        """
        if not hasattr(self, "n_attributes_"):
            return super().get_feature_names_out(input_features)
        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = self.__class__.__name__.lower()
        width = self._n_features_out // self.n_attributes_
        return np.asarray([f"{prefix}_attr{a}_{j}" for a in range(self.n_attributes_)
                           for j in range(width)], dtype=object)
