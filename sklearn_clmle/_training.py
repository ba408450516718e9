"""skorch glue: the training engine shared by every embedder of the family.

Three objects drive a fit. :class:`EmbeddingNet` (a skorch ``NeuralNet``)
runs the epochs and batches; a :class:`TrainingPlan` (a skorch callback)
schedules the stages and hands out each epoch's batch sampler; the
criterion (:mod:`._batch_losses`) computes the loss of a batch. Callbacks
after the batch fill what later batches read.

The training procedure of CLMLE (Huang et al., TPAMI 2019, Sec. 3.3), read
top-down from ``CLMLEEmbedder.fit`` to the loss of one batch:

0. ``BaseEmbedder.fit`` (``_base.py``) validates and encodes the labels,
   builds the network (``nn/encoders.py``), asks the estimator for its
   criterion (``BaseClusterEmbedder._make_criterion``: a
   :class:`~._batch_losses.ClusterCriterion` around Eq. (9)) and its plan
   (``_make_plan``: a :class:`~._plans.ClusterPlan`), and fits an
   :class:`EmbeddingNet` with them.
1. Pre-training, the first epoch (``ClusterPlan.on_epoch_begin``):
   class-balanced batches (``nn/sampling.py``) and the cosine softmax
   (``nn/margin_losses.py``) stand in for the paper's pre-trained CNN.
2. Each later epoch is a round. Step 1, clustering:
   ``ClusterPlan.recluster`` embeds the training data (:func:`embed`) and
   splits every class into clusters of ``l`` samples by spherical k-means
   (``nn/clustering.py``), kept by a :class:`~.nn.ClusterIndex`
   (``nn/cluster_index.py``).
3. Steps 2-3, the batch: the ``ClusterIndex`` draws a class, its hardest
   query cluster and the ``M - 1`` clusters nearest to it, and
   :meth:`EmbeddingNet.get_iterator` gathers their samples.
4. Step 4, the loss: :meth:`EmbeddingNet.get_loss` calls the criterion
   with the batch's cluster ids (``ClusterPlan.criterion_inputs``);
   ``ClusterCriterion`` adds the cost-sensitive Eq. (9)
   (``nn/losses.py``: :class:`~.nn.ClusterMarginLoss`) and, with
   ``softmax_weight``, the softmax; skorch back-propagates and steps.
5. After the batch, :class:`~._plans.HardestQueryCache` records the
   per-sample losses of Eq. (9) in the ``ClusterIndex``: the next batch's
   hardest query reads them.

``LMLEEmbedder`` runs the same procedure with Eq. (5) in step 4
(``nn/losses.py``: :class:`~.nn.TripleHeaderHingeLoss`); the baselines use
a :class:`~._plans.SingleLossPlan` (one sampler, one loss).
"""

import logging
import math
import sys

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_tensor
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ._torch_data import IndexedDataset, input_batches
from .nn.sparse_rows import SparseRows

logger = logging.getLogger("sklearn_clmle")


class TrainingDivergedError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


class EmbeddingNet(NeuralNet):
    """skorch ``NeuralNet`` driven by a :class:`TrainingPlan`.

    Training batches are gathered in one indexing operation per batch
    (``batch_size=None`` with a sampler yielding index tensors). The loss of
    a batch is the criterion's, given what the plan knows of the batch's
    samples (their clusters, in a cluster round).
    """

    def __init__(self, *args, plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan

    def get_iterator(self, dataset, training=False):
        if training and isinstance(dataset, IndexedDataset):
            # A user's dataset is read item by item and collated per batch.
            return DataLoader(dataset, batch_sampler=self.plan.batch_sampler(as_lists=True))
        if training:
            return DataLoader(_TensorRows(dataset.X, dataset.y),
                              sampler=self.plan.batch_sampler(), batch_size=None)
        return super().get_iterator(dataset, training=training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # skorch moves the inputs of `forward` to the device, not the targets
        # seen here: move them like NeuralNet.get_loss does.
        inputs = {name: value.to(self.device)
                  for name, value in self.plan.criterion_inputs(X["index"]).items()}
        return self.criterion_(y_pred, to_tensor(y_true, device=self.device), **inputs)

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        # The divergence check reads the loss skorch has just recorded as a
        # Python float: testing the tensor in `get_loss` made the host wait
        # for the device a second time per batch on CUDA. The step taken with
        # the non-finite loss does not matter: the fit stops here.
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if training:
            loss = self.history[-1, "batches", -1, "train_loss"]
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"Training diverged: the loss became {loss} in epoch "
                    f"{len(self.history)}. Lower `lr`, the margins or `scale`, or check "
                    "the module for numerical problems."
                )

    def on_train_end(self, net, **kwargs):
        # A finite loss can still come with an optimizer step that overflows
        # the weights (huge `lr`): catch it before `transform` returns NaN.
        super().on_train_end(net, **kwargs)
        tensors = [*self.module_.parameters(), *self.module_.buffers()]
        if not all(torch.isfinite(t).all() for t in tensors if t.is_floating_point()):
            raise TrainingDivergedError(
                "Training diverged: the network's weights became NaN or infinite. Lower "
                "`lr`, the margins or `scale`, scale the inputs (e.g. StandardScaler), or "
                "check the module for numerical problems."
            )


class _TensorRows(Dataset):
    """A batch of rows of the training tensors (a dict of them, and the
    targets) by an index tensor: what skorch's ``Dataset`` returns, without
    its per-batch checks of the index through scikit-learn's
    ``_safe_indexing``, a sizeable share of a small network's step. Still
    read through a ``DataLoader``, whose per-epoch seed draw keeps the global
    random stream (and so dropout) as it was."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, rows):
        return {name: _dense(values[rows]) for name, values in self.X.items()}, self.y[rows]


def _dense(rows):
    # Sparse feature rows reach the network as a dense batch.
    return rows.to_dense() if isinstance(rows, SparseRows) else rows


class _LazySampler:
    # The DataLoader is built once per fit; it re-iterates this object every
    # epoch, so the plan can switch samplers between epochs.
    def __init__(self, plan, as_lists=False):
        self.plan = plan
        self.as_lists = as_lists

    def __iter__(self):
        # Samplers yield index tensors or (ClusterIndex, a torch Sampler) lists;
        # _TensorRows indexes with a tensor, while a DataLoader's batch_sampler
        # hands each index to the user's dataset, which wants ints.
        batches = (torch.as_tensor(indices) for indices in self.plan.current_sampler)
        return (rows.tolist() for rows in batches) if self.as_lists else batches

    def __len__(self):
        return len(self.plan.current_sampler)


class TrainingPlan(Callback):
    """Base of the per-method training logic, plugged into :class:`EmbeddingNet`.

    Subclasses set ``self.current_sampler`` in :meth:`on_epoch_begin`. The
    plan holds the training data so that it can embed all of it between
    epochs (e.g. to re-cluster); it computes no loss.

    Parameters
    ----------
    features : Tensor, SparseRows or Dataset
        Training inputs (on the CPU), or the user's dataset.
    class_codes : Tensor of shape (n_samples,)
        Integer class codes.
    n_epochs : int
        Number of skorch epochs the plan runs.
    generator : torch.Generator
        CPU generator for every random draw of the plan.
    embed_batch_size : int
        Batch size used to embed the training data.
    sample_weight : Tensor of shape (n_samples,), optional
        Positive float64 weights of the training rows, which the plan's
        samplers draw rows by; ``None``: unit weights.

    Attributes
    ----------
    callbacks : list of (str, Callback)
        The plan's helpers, run after it (e.g. the hardest-query cache).
    """

    def __init__(self, features, class_codes, n_epochs, generator, embed_batch_size,
                 sample_weight=None):
        self.callbacks = []
        self.sample_weight = sample_weight
        self.features = features
        self.class_codes = class_codes
        self.n_epochs = n_epochs
        self.generator = generator
        self.embed_batch_size = embed_batch_size
        self.current_sampler = None

    def batch_sampler(self, as_lists=False):
        return _LazySampler(self, as_lists)

    @property
    def n_batches(self):
        """Training batches of all epochs (the progress bar's total)."""
        return self.n_epochs * len(self.current_sampler)

    def stage_label(self, epoch):
        """Name of epoch ``epoch`` (from 0) for the progress bar and the log."""
        return f"epoch {epoch + 1}/{self.n_epochs}"

    def criterion_inputs(self, indices):
        """Keyword arguments of the criterion for the batch of sample ``indices``."""
        return {}

    def embed_training_data(self, net, rows=None):
        """Unit-norm embeddings of the training set, or of its ``rows``
        (sorted indices; ``None``: all), in eval mode.

        Embeddings given to :meth:`reuse_embeddings` (by the validation
        readout, at the end of an epoch, of the same rows) are used once: no
        step happens before the next epoch.
        """
        cached = self.__dict__.pop("_embedding_cache", None)
        if cached is not None:
            return cached
        features = self.features
        if rows is not None and rows.numel() < len(self.class_codes):
            features = (Subset(features, rows.tolist()) if isinstance(features, Dataset)
                        else features[rows])
        return self.embed_inputs(net, features, "training data")

    def reuse_embeddings(self, embeddings):
        """Have the next :meth:`embed_training_data` return ``embeddings`` (None: forget)."""
        self._embedding_cache = embeddings

    @torch.no_grad()
    def embed_inputs(self, net, features, what):
        """Unit-norm embeddings of ``features`` in eval mode; refuses NaN/inf."""
        module = net.module_
        was_training = module.training
        module.eval()
        out = embed(module, features, net.device, self.embed_batch_size)
        module.train(was_training)
        if not torch.isfinite(out).all():
            raise TrainingDivergedError(
                f"Training diverged: the embeddings of the {what} became NaN or "
                f"infinite in epoch {len(net.history)}. Lower `lr`, the margins or `scale`, "
                "or check the module for numerical problems."
            )
        return out


@torch.no_grad()
def embed(module, features, device, batch_size, flip=False):
    """Embed ``features`` (a tensor or a dataset) in batches, so memory does
    not grow with their number.

    With ``flip``, inputs are images: each row is the embedding of the image
    and of its left-right mirror side by side, over sqrt(2) (unit norm).
    """
    def embed_batch(batch):
        batch = batch.to(device)
        if not flip:
            return module.embed(batch)
        both = torch.cat([module.embed(batch), module.embed(batch.flip(-1))], dim=1)
        return both / 2**0.5

    chunks = [embed_batch(chunk) for chunk in input_batches(features, batch_size)]
    if not chunks:
        return torch.zeros(0, 0, device=device)
    return torch.cat(chunks)


class BatchProgress(Callback):
    """tqdm bar over the batches of all stages, plus a log line per epoch.

    The bar's total is every batch of the plan (``plan.n_batches``), its
    description names the stage (``plan.stage_label``: "pretrain", "round
    2/5", "epoch 3/30"), its postfix shows the running mean loss of the
    stage's batches so far, and it stays on screen at the end. With
    ``verbose >= 2``, each epoch's summary (loss, clusters, ``valid_bacc``,
    duration) is also written above the bar.
    """

    def __init__(self, plan, verbose):
        self.plan = plan
        self.verbose = verbose

    def on_train_begin(self, net, **kwargs):
        self.bar_ = tqdm(total=self.plan.n_batches, disable=self.verbose <= 0, leave=True,
                         desc="fit", unit="batch")

    def on_epoch_begin(self, net, **kwargs):
        # Shown at once (not at tqdm's next interval): every stage appears.
        self.bar_.set_description(self.plan.stage_label(len(net.history) - 1))
        self.loss_sum_, self.n_seen_ = 0.0, 0

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if not training:
            return
        self.loss_sum_ += net.history[-1, "batches", -1, "train_loss"]
        self.n_seen_ += 1
        self.bar_.set_postfix(loss=f"{self.loss_sum_ / self.n_seen_:.4f}", refresh=False)
        self.bar_.update(1)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        extra = "".join(f", {key} {row[key]:.4f}" if isinstance(row[key], float)
                        else f", {key} {row[key]}"
                        for key in ("n_clusters", "valid_bacc") if key in row)
        line = (f"epoch {row['epoch']} ({self.plan.stage_label(row['epoch'] - 1)}): "
                f"loss {row['train_loss']:.4f}{extra}, {row['dur']:.2f} s")
        logger.info(line)
        if self.verbose >= 2:
            # One line per epoch above the bar, which stays at the bottom.
            self.bar_.write(line, file=sys.stderr)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


def resolve_device(device):
    """``"auto"`` becomes ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
