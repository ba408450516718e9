"""Training plans: the loss and batch sampler of each method, epoch by epoch."""

from .nn.clustering import cluster_within_classes
from .nn.losses import ClusterMarginLoss
from .nn.sampling import ClassBalancedBatchSampler, ClusterBatchSampler
from ._training import TrainingPlan


class CLMLEPlan(TrainingPlan):
    """CLMLE training, Sec. 3.3 of Huang et al.

    Epoch 0 (when ``pretrain_steps > 0``) pre-trains with a cosine softmax on
    class-balanced batches, standing in for the paper's pre-trained CNN.
    Every later epoch is one round: re-cluster each class on the current
    embeddings (step 1), then ``steps_per_round`` cluster batches (steps 2-4)
    with the loss of Eq. (9), plus ``softmax_weight`` times the cosine softmax.

    Parameters
    ----------
    features, class_codes, generator, embed_batch_size
        See :class:`TrainingPlan`.
    cluster_loss : ClusterMarginLoss
    softmax_loss : CosFaceLoss
        ``margin=0``: the (cost-sensitive) cosine softmax.
    softmax_weight : float
        Weight of the auxiliary softmax term during the cluster rounds.
    cluster_size : int
        ``l``.
    clusters_per_batch : int
        ``M``.
    samples_per_cluster : int
        Members sampled per cluster.
    pretrain_steps : int
        Batches of softmax pre-training (0 starts from the untrained encoder).
    n_rounds : int
        Clustering rounds.
    steps_per_round : int
        Cluster batches per round.
    query : {"hardest", "uniform"}
        Query cluster choice.
    """

    def __init__(self, features, class_codes, generator, embed_batch_size, *, cluster_loss,
                 softmax_loss, softmax_weight, cluster_size, clusters_per_batch,
                 samples_per_cluster, pretrain_steps, n_rounds, steps_per_round, query):
        n_epochs = n_rounds + (1 if pretrain_steps > 0 else 0)
        super().__init__(features, class_codes, n_epochs, generator, embed_batch_size)
        self.cluster_loss = cluster_loss
        self.softmax_loss = softmax_loss
        self.softmax_weight = softmax_weight
        self.cluster_size = cluster_size
        self.pretrain_steps = pretrain_steps
        self.batch_size = clusters_per_batch * samples_per_cluster
        self.pretrain_sampler = ClassBalancedBatchSampler(
            class_codes, self.batch_size, pretrain_steps, generator)
        self.cluster_sampler = ClusterBatchSampler(
            class_codes, clusters_per_batch, samples_per_cluster, steps_per_round, generator,
            query=query)
        self.stage = None

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1  # skorch has already opened this epoch's row
        if epoch == 0 and self.pretrain_steps > 0:
            self.stage, self.current_sampler = "pretrain", self.pretrain_sampler
        else:
            self.stage, self.current_sampler = "cluster", self.cluster_sampler
            self.recluster(net)
            net.history.record("n_clusters", int(self.cluster_sampler.centroids.shape[0]))
        net.history.record("stage", self.stage)

    def recluster(self, net):
        """Step 1: equal-size spherical k-means per class on the latest embeddings."""
        embeddings = self.embed_training_data(net)
        clusters = cluster_within_classes(
            embeddings, self.class_codes.to(embeddings.device), self.cluster_size,
            generator=self.generator)
        self.cluster_sampler.set_clusters(*clusters)
        self.sample_cluster = clusters[0]

    def loss(self, y_pred, class_codes, indices):
        embeddings, cosine_logits = y_pred
        if self.stage == "pretrain":
            return self.softmax_loss(cosine_logits, class_codes)
        cluster_ids = self.sample_cluster[indices.to(self.sample_cluster.device)]
        per_sample = self.cluster_loss.per_sample(
            embeddings, cluster_ids.to(embeddings.device), class_codes)
        self.cluster_sampler.record_losses(indices, per_sample)
        total = self.cluster_loss.reduce(per_sample, class_codes)
        if self.softmax_weight:
            total = total + self.softmax_weight * self.softmax_loss(cosine_logits, class_codes)
        return total


class SingleLossPlan(TrainingPlan):
    """Training by one loss on every batch of one sampler, one pass per epoch.

    Serves the baselines: softmax-family losses on the cosine head
    (``on="logits"``) and pair losses on the embeddings (``on="embeddings"``).

    Parameters
    ----------
    features, class_codes, generator, embed_batch_size
        See :class:`TrainingPlan`.
    loss : nn.Module
        Called as ``loss(inputs, class_codes)``.
    sampler : iterable of index tensors
        Batches of every epoch.
    n_epochs : int
        Passes.
    on : {"logits", "embeddings"}
        What the loss reads from the network's output.
    deferred_weights : Tensor or None
        Per-class weights assigned to ``loss.weight`` from epoch
        ``deferred_start`` on (deferred re-weighting, LDAM-DRW).
    deferred_start : int
        First epoch using ``deferred_weights``.
    """

    def __init__(self, features, class_codes, generator, embed_batch_size, *, loss, sampler,
                 n_epochs, on, deferred_weights=None, deferred_start=0):
        super().__init__(features, class_codes, n_epochs, generator, embed_batch_size)
        self.training_loss = loss
        self.current_sampler = sampler
        self.output = 1 if on == "logits" else 0
        self.deferred_weights = deferred_weights
        self.deferred_start = deferred_start

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1
        deferred = self.deferred_weights is not None and epoch >= self.deferred_start
        if deferred:
            self.training_loss.weight = self.deferred_weights
        net.history.record("stage", "reweighted" if deferred else "train")

    def loss(self, y_pred, class_codes, indices):
        return self.training_loss(y_pred[self.output], class_codes)
