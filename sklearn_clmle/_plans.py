"""Training plans: the stages and batch samplers of each method, epoch by epoch.

A plan schedules; it computes no loss (that is the criterion, :mod:`._batch_losses`).
The callbacks here fill what the next batches read after each batch
(:class:`HardestQueryCache`, :class:`RunningCenters`) or score an epoch
(:class:`ValidationReadout`).
"""

import math

import torch
from skorch.callbacks import Callback

from ._settings import RECLUSTER
from ._training import TrainingPlan
from .nn.cluster_index import ClusterIndex
from .nn.clustering import cluster_within_classes  # the validation readout
from .nn.sampling import ClassBalancedBatchSampler, RandomBatchSampler


class ClusterPlan(TrainingPlan):
    """Cluster-based training (CLMLE Sec. 3.3 of Huang et al.; also LMLE).

    Epoch 0 (when ``pretrain_steps > 0``) pre-trains on class-balanced (or,
    ``pretrain_sampling="random"``, instance-balanced) batches, standing in
    for the paper's pre-trained CNN. Every later epoch is one round:
    re-cluster each class on the current embeddings (step 1), then
    ``steps_per_round`` cluster batches (steps 2-4). The criterion
    (:class:`~._batch_losses.ClusterCriterion`) gets the batch's cluster ids
    in the rounds and none in pre-training, which is how it tells the
    stages apart; :class:`HardestQueryCache` feeds its per-sample values
    back to the sampler after every cluster batch.

    Parameters
    ----------
    features, class_codes, generator, embed_batch_size
        See :class:`TrainingPlan`.
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
    validation : tuple of (Tensor or Dataset, Tensor, Tensor or None) or None, default=None
        Held-out inputs, class codes and weights (or ``None``), scored by
        :class:`ValidationReadout` at the end of every epoch.
    restore_best : bool, default=True
        See :class:`ValidationReadout`.
    recluster : ReclusterSettings, default=RECLUSTER
        How the rounds re-cluster.
    sample_weight : Tensor of shape (n_samples,), optional
        See :class:`TrainingPlan`: every sampler and clustering uses it.
    """

    def __init__(self, features, class_codes, generator, embed_batch_size, *, cluster_size,
                 clusters_per_batch, samples_per_cluster, pretrain_steps, n_rounds,
                 steps_per_round, query, pretrain_sampling="class_balanced", validation=None,
                 restore_best=True, recluster=RECLUSTER, sample_weight=None):
        n_epochs = n_rounds + (1 if pretrain_steps > 0 else 0)
        super().__init__(features, class_codes, n_epochs, generator, embed_batch_size,
                         sample_weight)
        self.recluster_settings = recluster
        self.n_rounds = n_rounds
        self.cluster_size = cluster_size
        self.pretrain_steps = pretrain_steps
        self.batch_size = clusters_per_batch * samples_per_cluster
        self.pretrain_sampling = pretrain_sampling
        self.pretrain_sampler, self.cluster_sampler = self.make_samplers(
            class_codes, clusters_per_batch, samples_per_cluster, pretrain_steps,
            steps_per_round, query)
        self.stage = None
        self.callbacks = [("hardest_query_cache", HardestQueryCache(self))]
        self.validation_readout = None
        if validation is not None:
            self.validation_readout = ValidationReadout(self, validation, restore_best)
            self.callbacks.append(("validation_readout", self.validation_readout))

    def make_samplers(self, class_codes, clusters_per_batch, samples_per_cluster,
                      pretrain_steps, steps_per_round, query, capped=True):
        """The batch samplers of the pre-training and of the cluster rounds
        (``capped``: the rounds cluster at most ``recluster_settings.max_rows`` rows)."""
        weights = self.sample_weight
        if self.pretrain_sampling == "random":
            pretrain = RandomBatchSampler(len(class_codes), self.batch_size, pretrain_steps,
                                          self.generator, sample_weight=weights)
        else:
            pretrain = ClassBalancedBatchSampler(class_codes, self.batch_size, pretrain_steps,
                                                 self.generator, sample_weight=weights)
        settings = self.recluster_settings
        return (pretrain,
                ClusterIndex(class_codes, cluster_size=self.cluster_size,
                             clusters_per_batch=clusters_per_batch,
                             samples_per_cluster=samples_per_cluster,
                             steps_per_epoch=steps_per_round, query=query,
                             generator=self.generator, max_iter=settings.max_iter,
                             tol=settings.tol, warm_start=settings.warm_start,
                             warm_max_iter=settings.warm_max_iter,
                             max_rows=settings.max_rows if capped else None,
                             sample_weight=weights))

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

    def on_train_end(self, net, **kwargs):
        self.reuse_embeddings(None)

    def recluster(self, net):
        """Step 1: equal-size spherical k-means per class on the latest embeddings.

        Returns the number of clusters.
        """
        return self.cluster_sampler.refresh(
            self.embed_training_data(net, self.cluster_rows)).n_clusters

    @property
    def cluster_rows(self):
        """The rows the rounds cluster (``None``: all; see ``ReclusterSettings.max_rows``)."""
        return getattr(self.cluster_sampler, "rows", None)

    def criterion_inputs(self, indices):
        # Pre-training batches have no clusters: the criterion's softmax stage.
        if self.stage != "cluster":
            return {}
        return {"cluster_ids": self.cluster_ids(indices)}

    def cluster_ids(self, indices):
        """Cluster of every sample of a batch (step 2's clusters)."""
        return self.cluster_sampler.cluster_ids(indices)

    def record_losses(self, indices, per_sample):
        """Cache the batch's per-sample cluster losses for the next hardest query."""
        self.cluster_sampler.record_losses(indices, per_sample)


class HardestQueryCache(Callback):
    """After every cluster batch, its per-sample losses into the sampler's cache.

    Step 2 of Sec. 3.3 draws the query cluster of a class as the one whose
    members had the highest loss when last seen; this callback records those
    losses (the criterion's ``per_sample`` of the batch, without gradient)
    once the batch is done, so computing the loss writes nothing.
    """

    def __init__(self, plan):
        self.plan = plan

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training or self.plan.stage != "cluster":
            return
        inputs, class_codes = batch
        indices = inputs["index"]
        embeddings = y_pred[0].detach()
        with torch.no_grad():
            per_sample = net.criterion_.per_sample(
                embeddings, class_codes.to(embeddings.device),
                self.plan.cluster_ids(indices).to(embeddings.device))
        self.plan.record_losses(indices, per_sample)


class ValidationReadout(Callback):
    """``valid_bacc``: the nearest-centroid readout of held-out data, every epoch.

    At the end of every epoch (the pre-training counts as one) the training
    data are clustered as in step 1 and each validation sample takes the
    class of its most similar centroid; the balanced accuracy of that
    readout is recorded as ``valid_bacc`` (with ``valid_bacc_best``) before
    the user's callbacks read the epoch's row.

    Parameters
    ----------
    plan : ClusterPlan
        Holds the training data, their codes and the cluster size.
    validation : tuple of (Tensor or Dataset, Tensor, Tensor or None)
        Held-out inputs, class codes and weights (``None``: unit weights).
    restore_best : bool
        End training with the network of the epoch of best ``valid_bacc``
        (the earliest on ties), kept as ``best_epoch_``.
    """

    def __init__(self, plan, validation, restore_best):
        self.plan = plan
        self.validation = validation
        self.restore_best = restore_best
        # Its own stream: the readout's k-means does not shift the training's.
        seed = int(torch.randint(2**31 - 1, (1,), generator=plan.generator))
        self.generator = torch.Generator().manual_seed(seed)

    def on_train_begin(self, net, **kwargs):
        self.best_score_, self.best_epoch_, self.best_state_ = -math.inf, None, None

    def on_epoch_end(self, net, **kwargs):
        score = self.score(net)
        improved = score > self.best_score_
        net.history.record("valid_bacc", score)
        net.history.record("valid_bacc_best", improved)
        if improved:
            self.best_score_, self.best_epoch_ = score, net.history[-1, "epoch"]
            if self.restore_best:
                self.best_state_ = {name: value.detach().clone()
                                    for name, value in net.module_.state_dict().items()}

    def on_train_end(self, net, **kwargs):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
            self.best_state_ = None

    @torch.no_grad()
    def score(self, net):
        """Balanced accuracy of the nearest-centroid readout on the validation data."""
        plan = self.plan
        rows = plan.cluster_rows
        train = plan.embed_training_data(net, rows)
        plan.reuse_embeddings(train)  # the next round re-clusters the same embeddings
        codes = (plan.class_codes if rows is None else plan.class_codes[rows]).to(train.device)
        weights = plan.sample_weight
        if weights is not None and rows is not None:
            weights = weights[rows]
        _, centroids, cluster_class = cluster_within_classes(
            train, codes, plan.cluster_size, tol=plan.recluster_settings.tol,
            generator=self.generator, sample_weight=weights)
        features, valid_codes, valid_weights = self.validation
        valid = plan.embed_inputs(net, features, "validation data")
        predicted = torch.cat([cluster_class[(chunk @ centroids.T).argmax(dim=1)]
                               for chunk in torch.split(valid, plan.embed_batch_size)])
        valid_codes = valid_codes.to(predicted.device)
        n_classes = int(codes.max()) + 1
        if valid_weights is not None:
            valid_weights = valid_weights.to(predicted.device)
        hit = predicted == valid_codes
        hits = torch.bincount(valid_codes[hit], None if valid_weights is None
                              else valid_weights[hit], minlength=n_classes)
        counts = torch.bincount(valid_codes, valid_weights, minlength=n_classes)
        present = counts > 0
        return float((hits[present].double() / counts[present]).mean())


class SingleLossPlan(TrainingPlan):
    """One sampler for every epoch, one pass per epoch (the baselines).

    Serves the softmax-family and pair embedders, whose criterion is a
    :class:`~._batch_losses.SingleLossCriterion`. The plan switches on
    deferred class weights and keeps IR-Softmax's tracked class centers
    (the criterion's ``centers``) on schedule.

    Parameters
    ----------
    features, class_codes, generator, embed_batch_size
        See :class:`TrainingPlan`.
    sampler : iterable of index tensors
        Batches of every epoch.
    n_epochs : int
        Passes.
    deferred_weights : Tensor or None
        Per-class weights assigned to the criterion's ``loss.weight`` from
        epoch ``deferred_start`` on (deferred re-weighting, LDAM-DRW).
    deferred_start : int
        First epoch using ``deferred_weights``.
    center_update : {"running", "epoch"} or None
        With the criterion's ``centers``: they start as the class means of
        the training embeddings; ``"running"``: a momentum step with every
        batch (after its loss, :class:`RunningCenters`); ``"epoch"``:
        recomputed from all training data at each epoch start. They are
        copied into the network's ``class_weight`` at the end of training.
    """

    def __init__(self, features, class_codes, generator, embed_batch_size, *, sampler,
                 n_epochs, deferred_weights=None, deferred_start=0, center_update=None):
        super().__init__(features, class_codes, n_epochs, generator, embed_batch_size)
        self.current_sampler = sampler
        self.deferred_weights = deferred_weights
        self.deferred_start = deferred_start
        self.center_update = center_update
        if center_update == "running":
            self.callbacks = [("running_centers", RunningCenters())]

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1
        centers = net.criterion_.centers
        if centers is not None and (epoch == 0 or self.center_update == "epoch"):
            centers.reset(self.embed_training_data(net), self.class_codes.to(net.device))
        deferred = self.deferred_weights is not None and epoch >= self.deferred_start
        if deferred:
            net.criterion_.loss.weight = self.deferred_weights
        net.history.record("stage", "reweighted" if deferred else "train")

    def on_train_end(self, net, **kwargs):
        centers = net.criterion_.centers
        if centers is not None:
            # The network's head then scores with the centers it was trained on.
            with torch.no_grad():
                net.module_.class_weight.copy_(centers.centers)


class RunningCenters(Callback):
    """After every batch, IR-Softmax's running-mean step of the class centers."""

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if training:
            _, class_codes = batch
            embeddings = y_pred[0]
            net.criterion_.centers.update(embeddings, class_codes.to(embeddings.device))
