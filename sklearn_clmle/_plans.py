"""Training plans: the loss and batch sampler of each method, epoch by epoch."""

import math

import torch

from .nn.cluster_index import ClusterIndex
from .nn.clustering import cluster_within_classes  # the validation readout
from .nn.sampling import ClassBalancedBatchSampler, RandomBatchSampler, InterleavedBatchSampler
from ._training import TrainingPlan


#: Re-clustering stops a class once at most this fraction of its samples
#: changes cluster in a k-means iteration (see docs/defaults.md).
RECLUSTER_TOL = 0.01

#: Rounds after the first start their k-means from the previous round's
#: clusters (``ClusterIndex(warm_start=True)``, see docs/defaults.md).
RECLUSTER_WARM_START = False


def cluster_head_loss(cluster_loss, index, embeddings, class_codes, indices):
    """The cluster loss of one embedding on a batch; caches the per-sample losses in
    the :class:`~.nn.ClusterIndex` ``index`` for its hardest-query choice."""
    cluster_ids = index.cluster_ids(indices).to(embeddings.device)
    per_sample = cluster_loss.per_sample(embeddings, cluster_ids, class_codes)
    index.record_losses(indices, per_sample)
    return cluster_loss.reduce(per_sample, class_codes)


class ClusterPlan(TrainingPlan):
    """Cluster-based training (CLMLE Sec. 3.3 of Huang et al.; also LMLE).

    Epoch 0 (when ``pretrain_steps > 0``) pre-trains with a cosine softmax on
    class-balanced (or, ``pretrain_sampling="random"``, instance-balanced)
    batches, standing in for the paper's pre-trained CNN.
    Every later epoch is one round: re-cluster each class on the current
    embeddings (step 1), then ``steps_per_round`` cluster batches (steps 2-4)
    with ``cluster_loss``, plus ``softmax_weight`` times the cosine softmax.
    The cluster loss is Eq. (9) for CLMLE and the triple-header hinge of
    Eq. (5) for LMLE; its per-sample values drive the hardest-query choice.

    Parameters
    ----------
    features, class_codes, generator, embed_batch_size
        See :class:`TrainingPlan`.
    cluster_loss : ClusterMarginLoss or TripleHeaderHingeLoss
        Any module with ``per_sample(embeddings, cluster_ids, class_ids)``
        and ``reduce(values, class_ids)``.
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
    pretrain_sampling : {"class_balanced", "random"}, default="class_balanced"
        Batches of the pre-training.
    validation : tuple of (Tensor or Dataset, Tensor) or None, default=None
        Held-out inputs and class codes. At the end of every epoch (the
        pre-training counts as one), the training data are clustered as in
        step 1 and each validation sample takes the class of its most
        similar centroid; the balanced accuracy of that readout is recorded
        as ``valid_bacc`` (with ``valid_bacc_best``) before any other
        callback reads the epoch's row.
    restore_best : bool, default=True
        With ``validation``: end training with the network of the epoch of
        best ``valid_bacc`` (the earliest on ties), kept as ``best_epoch_``.
    """

    def __init__(self, features, class_codes, generator, embed_batch_size, *, cluster_loss,
                 softmax_loss, softmax_weight, cluster_size, clusters_per_batch,
                 samples_per_cluster, pretrain_steps, n_rounds, steps_per_round, query,
                 pretrain_sampling="class_balanced", validation=None, restore_best=True):
        n_epochs = n_rounds + (1 if pretrain_steps > 0 else 0)
        super().__init__(features, class_codes, n_epochs, generator, embed_batch_size)
        self.n_rounds = n_rounds
        self.cluster_loss = cluster_loss
        self.softmax_loss = softmax_loss
        self.softmax_weight = softmax_weight
        self.cluster_size = cluster_size
        self.pretrain_steps = pretrain_steps
        self.batch_size = clusters_per_batch * samples_per_cluster
        self.pretrain_sampling = pretrain_sampling
        self.pretrain_sampler, self.cluster_sampler = self.make_samplers(
            class_codes, clusters_per_batch, samples_per_cluster, pretrain_steps,
            steps_per_round, query)
        self.stage = None
        self.validation = validation
        self.restore_best = restore_best
        if validation is not None:
            # Its own stream: the readout's k-means does not shift the training's.
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            self.validation_generator = torch.Generator().manual_seed(seed)

    def make_samplers(self, class_codes, clusters_per_batch, samples_per_cluster,
                      pretrain_steps, steps_per_round, query):
        """The batch samplers of the pre-training and of the cluster rounds."""
        if self.pretrain_sampling == "random":
            pretrain = RandomBatchSampler(len(class_codes), self.batch_size, pretrain_steps,
                                          self.generator)
        else:
            pretrain = ClassBalancedBatchSampler(class_codes, self.batch_size, pretrain_steps,
                                                 self.generator)
        return (pretrain,
                ClusterIndex(class_codes, cluster_size=self.cluster_size,
                             clusters_per_batch=clusters_per_batch,
                             samples_per_cluster=samples_per_cluster,
                             steps_per_epoch=steps_per_round, query=query,
                             generator=self.generator, tol=RECLUSTER_TOL,
                             warm_start=RECLUSTER_WARM_START))

    @property
    def n_batches(self):
        return len(self.pretrain_sampler) + self.n_rounds * len(self.cluster_sampler)

    def stage_label(self, epoch):
        if self.pretrain_steps > 0:
            if epoch == 0:
                return "pretrain"
            epoch -= 1
        return f"round {epoch + 1}/{self.n_rounds}"

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1  # skorch has already opened this epoch's row
        if epoch == 0 and self.pretrain_steps > 0:
            self.stage, self.current_sampler = "pretrain", self.pretrain_sampler
        else:
            self.stage, self.current_sampler = "cluster", self.cluster_sampler
            net.history.record("n_clusters", self.recluster(net))
        net.history.record("stage", self.stage)

    def on_train_begin(self, net, **kwargs):
        self.best_score_, self.best_epoch_, self.best_state_ = -math.inf, None, None

    def on_epoch_end(self, net, **kwargs):
        if self.validation is None:
            return
        score = self.validation_score(net)
        improved = score > self.best_score_
        net.history.record("valid_bacc", score)
        net.history.record("valid_bacc_best", improved)
        if improved:
            self.best_score_, self.best_epoch_ = score, net.history[-1, "epoch"]
            if self.restore_best:
                self.best_state_ = {name: value.detach().clone()
                                    for name, value in net.module_.state_dict().items()}

    def on_train_end(self, net, **kwargs):
        self.__dict__.pop("_embedding_cache", None)
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
            self.best_state_ = None

    @torch.no_grad()
    def validation_score(self, net):
        """Balanced accuracy of the nearest-centroid readout on the validation data."""
        train = self.embed_training_data(net)
        self._embedding_cache = train  # the next round re-clusters the same embeddings
        codes = self.class_codes.to(train.device)
        _, centroids, cluster_class = cluster_within_classes(
            train, codes, self.cluster_size, tol=RECLUSTER_TOL,
            generator=self.validation_generator)
        features, valid_codes = self.validation
        valid = self.embed_inputs(net, features, "validation data")
        predicted = torch.cat([cluster_class[(chunk @ centroids.T).argmax(dim=1)]
                               for chunk in torch.split(valid, self.embed_batch_size)])
        valid_codes = valid_codes.to(predicted.device)
        n_classes = int(codes.max()) + 1
        hits = torch.bincount(valid_codes[predicted == valid_codes], minlength=n_classes)
        counts = torch.bincount(valid_codes, minlength=n_classes)
        present = counts > 0
        return float((hits[present].double() / counts[present]).mean())

    def recluster(self, net):
        """Step 1: equal-size spherical k-means per class on the latest embeddings.

        Returns the number of clusters.
        """
        return self.cluster_sampler.refresh(self.embed_training_data(net)).n_clusters

    def softmax_term(self, cosine_logits, class_codes):
        """The (cost-sensitive) cosine softmax of the pre-training and auxiliary term."""
        return self.softmax_loss(cosine_logits, class_codes)

    def cluster_term(self, embeddings, class_codes, indices):
        """The cluster loss of the batch, feeding the hardest-query cache."""
        return cluster_head_loss(self.cluster_loss, self.cluster_sampler, embeddings,
                                 class_codes, indices)

    def loss(self, y_pred, class_codes, indices):
        embeddings, cosine_logits = y_pred
        if self.stage == "pretrain":
            return self.softmax_term(cosine_logits, class_codes)
        total = self.cluster_term(embeddings, class_codes, indices)
        if self.softmax_weight:
            total = total + self.softmax_weight * self.softmax_term(cosine_logits, class_codes)
        return total


class MultiLabelClusterPlan(ClusterPlan):
    """Cluster training of one embedding head per binary attribute (Sec. 3.3, 5.3).

    The schedule of :class:`ClusterPlan` with every step done per attribute:
    each round re-clusters both classes of every attribute on that
    attribute's head; each batch is built from ONE attribute's clusters (or,
    in pre-training, balanced for one attribute), the attributes taking turns
    (:class:`~.nn.sampling.InterleavedBatchSampler`), because re-sampling
    to balance all attributes at once is infeasible; the loss of a batch is
    the mean over heads of each head's cluster loss (Eq. (9) for CLMLE; the
    softmax in pre-training), computed with that attribute's clusters and
    in-batch inverse class frequencies, so the cost-sensitive weights
    re-balance the attributes the batch was not drawn for. Each attribute's sampler caches
    its own head's per-sample losses for its hardest-query choice.

    Parameters
    ----------
    features, generator, embed_batch_size, cluster_loss, softmax_loss, \
softmax_weight, cluster_size, clusters_per_batch, samples_per_cluster, \
pretrain_steps, n_rounds, steps_per_round, query
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
                   math.ceil(steps_per_round / n_attributes), query)
            for codes in class_codes.T])
        return (InterleavedBatchSampler(pretrain, pretrain_steps),
                InterleavedBatchSampler(cluster, steps_per_round))

    def recluster(self, net):
        embeddings = self.embed_training_data(net)
        heads = embeddings.reshape(len(embeddings), self.class_codes.shape[1], -1)
        return sum(index.refresh(heads[:, a]).n_clusters
                   for a, index in enumerate(self.cluster_sampler.samplers))

    def softmax_term(self, cosine_logits, class_codes):
        single = super().softmax_term
        return torch.stack([single(cosine_logits[:, a], class_codes[:, a])
                            for a in range(class_codes.shape[1])]).mean()

    def cluster_term(self, embeddings, class_codes, indices):
        return torch.stack([
            cluster_head_loss(self.cluster_loss, index, embeddings[:, a], class_codes[:, a],
                              indices)
            for a, index in enumerate(self.cluster_sampler.samplers)]).mean()


class SingleLossPlan(TrainingPlan):
    """Training by one loss on every batch of one sampler, one pass per epoch.

    Serves the baselines: softmax-family losses on the cosine head
    (``on="logits"``) and pair losses on the embeddings (``on="embeddings"``),
    optionally plus a weighted auxiliary loss on the embeddings, and with
    the class weights of the cosine head replaced by tracked class centres
    (IR-Softmax).

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
    auxiliary_loss : nn.Module or None
        Called as ``auxiliary_loss(embeddings, class_codes)``; the batch loss
        is ``loss + auxiliary_weight * auxiliary_loss``. Its parameters (e.g.
        center-loss centres) are trained with the network's.
    auxiliary_weight : float
        Weight of ``auxiliary_loss``.
    centres : ClassCentreTracker or None
        When set, the cosine logits are ``f(x) . c_j`` with the tracked
        centres instead of the network's learned class weights. The centres
        start as the class means of the training embeddings and are copied
        into the network's ``class_weight`` at the end of training.
    centre_update : {"running", "epoch"} or None
        ``"running"``: a momentum step with every batch (after its loss);
        ``"epoch"``: recomputed from all training data at each epoch start.
    """

    def __init__(self, features, class_codes, generator, embed_batch_size, *, loss, sampler,
                 n_epochs, on, deferred_weights=None, deferred_start=0, auxiliary_loss=None,
                 auxiliary_weight=0.0, centres=None, centre_update=None):
        super().__init__(features, class_codes, n_epochs, generator, embed_batch_size)
        self.training_loss = loss
        self.current_sampler = sampler
        self.output = 1 if on == "logits" else 0
        self.deferred_weights = deferred_weights
        self.deferred_start = deferred_start
        self.auxiliary_loss = auxiliary_loss
        self.auxiliary_weight = auxiliary_weight
        if auxiliary_loss is not None:
            self.criterion = auxiliary_loss
        self.centres = centres
        self.centre_update = centre_update

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1
        if self.centres is not None and (epoch == 0 or self.centre_update == "epoch"):
            self.centres.reset(self.embed_training_data(net),
                               self.class_codes.to(net.device))
        deferred = self.deferred_weights is not None and epoch >= self.deferred_start
        if deferred:
            self.training_loss.weight = self.deferred_weights
        net.history.record("stage", "reweighted" if deferred else "train")

    def on_train_end(self, net, **kwargs):
        if self.centres is not None:
            # The network's head then scores with the centres it was trained on.
            with torch.no_grad():
                net.module_.class_weight.copy_(self.centres.centres)

    def loss(self, y_pred, class_codes, indices):
        embeddings = y_pred[0]
        if self.centres is not None:
            y_pred = (embeddings, self.centres(embeddings))
        total = self.training_loss(y_pred[self.output], class_codes)
        if self.auxiliary_loss is not None:
            total = total + self.auxiliary_weight * self.auxiliary_loss(embeddings, class_codes)
        if self.centre_update == "running":
            self.centres.update(embeddings, class_codes)
        return total
