"""Base class of the embedder family: validation, fitting, device, transform."""

import copy
import math
import warnings
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder, QuantileTransformer, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils import get_tags
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data
from skorch.history import History
from torch import nn
from torch.utils.data import Dataset

from ._ensemble import (check_ensemble_params, input_weight_classifier, join_members,
                        member_rows)
from ._fitted_network import FittedNetwork
from ._input_rows import (add_input_rows, can_cross_fit, check_input_weight, choose_input_weight,
                          cross_fit_folds, fit_input_scaler, set_input_rows)
from ._persistence import load_arrays, loadable_device, module_to_arrays
from ._settings import INPUT_WEIGHT_CHOICE, RECLUSTER
from ._batch_losses import ClusterCriterion
from ._plans import ClusterPlan
from ._torch_data import IndexedDataset, dataset_labels, first_inputs
from ._threads import N_JOBS_CONSTRAINT, uses_n_jobs
from ._training import EmbeddingNet, BatchProgress, TrainingDivergedError, embed
from ._validation import (check_callbacks, check_class_labels, check_cluster_size, check_device,
                          check_input_shape, check_no_effect, clear_fitted_attributes,
                          drop_zero_weight_rows, positive_weight_rows, stratified_hold_out,
                          take_rows, to_tensor)
from .nn.encoders import ConvEncoder, EmbeddingNetwork, MLPEncoder, MultiHeadEmbeddingNetwork
from .nn.margin_losses import CosFaceLoss, LogitAdjustedLoss
from .nn.sampling import weighted_class_counts
from .nn.sparse_rows import SparseRows


#: What ``feature_scaling="auto"`` does to feature rows (see docs/defaults.md).
DEFAULT_FEATURE_SCALING = "standard"


def deprecated_network_attribute(name):
    """The embedder's property ``name``: its network's, with a ``FutureWarning``.

    Before 0.2 a single-network embedder held ``module_``, ``history_``,
    ... itself; every embedder now keeps its networks in ``estimators_``.
    An ensemble never had them: the error names where they are.
    """
    def network_attribute(self):
        members = getattr(self, "estimators_", None)
        if members is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if len(members) > 1:
            raise AttributeError(
                f"{type(self).__name__} with n_estimators={len(members)} has no {name}: "
                f"each network has its own; read estimators_[i].{name}.")
        warnings.warn(
            f"{type(self).__name__}.{name} is deprecated since 0.2 and will be removed in "
            f"0.4: every embedder keeps its networks in estimators_, so read "
            f"estimators_[0].{name}.", FutureWarning, stacklevel=2)
        return getattr(members[0], name)

    return property(network_attribute, doc=f"Deprecated: ``estimators_[0].{name}``.")


class BaseEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the embedders: subclasses provide the plan and the loss.

    ``fit`` validates the data, encodes the labels, builds the encoder and
    trains it with skorch under the subclass's :class:`~._training.TrainingPlan`
    and criterion (template methods :meth:`_make_plan` and
    :meth:`_make_criterion`). ``transform`` returns unit-norm float32
    embeddings computed in batches.
    """

    #: Fixed settings of ``input_weight="auto"`` (``_settings.py``).
    _input_weight_choice = INPUT_WEIGHT_CHOICE

    _parameter_constraints = {
        "module": [None, nn.Module, type],
        "module_params": [None, dict],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        # Any string may name a device ("cuda:1"): fit parses it (check_device).
        "device": [str, torch.device],
        "n_jobs": N_JOBS_CONSTRAINT,
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
        "transform_batch_size": [Interval(Integral, 1, None, closed="left")],
        "test_time_flip": ["boolean"],
        "feature_scaling": [StrOptions({"auto", "quantile", "standard"}), None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
    }

    def __init__(self, *, module, module_params, embedding_dim, lr, weight_decay, device,
                 n_jobs, random_state, verbose, callbacks, transform_batch_size, test_time_flip,
                 feature_scaling, n_estimators, bootstrap):
        # The parameters of every embedder; subclasses list them in their own
        # signature (scikit-learn's get_params reads it) and pass them here.
        self.module = module
        self.module_params = module_params
        self.embedding_dim = embedding_dim
        self.lr = lr
        self.weight_decay = weight_decay
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.transform_batch_size = transform_batch_size
        self.test_time_flip = test_time_flip
        self.feature_scaling = feature_scaling
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap

    @abstractmethod
    def _make_plan(self, features, class_codes, generator, validation=None,
                   sample_weight=None, resolved=None):
        """Return the :class:`~._training.TrainingPlan` of this method.

        ``validation`` is what :meth:`_hold_out` held out, or ``None``;
        ``sample_weight`` the training rows' positive weights (a float64
        tensor), which the plan's samplers draw rows by, or ``None``;
        ``resolved`` what :meth:`_check_params_vs_input` resolved.
        """

    @abstractmethod
    def _make_criterion(self, class_codes, sample_weight=None):
        """Return the skorch criterion: the loss of a batch (:mod:`._batch_losses`).

        Losses that read class sizes read them weighted
        (:func:`~.nn.sampling.weighted_class_counts`)."""

    def _encode_labels(self, y):
        """Set ``classes_``; return the integer class codes."""
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        return encoder.transform(y)

    def _class_counts(self, codes):
        """Rows of every class among ``codes`` (of one network's rows)."""
        return np.bincount(codes, minlength=len(self.classes_))

    def _check_params_vs_input(self, class_counts):
        """Data-dependent checks of one network's rows; returns the ``"auto"``
        settings resolved on them (a dict, read by :meth:`_make_plan`)."""
        return {}

    def _hold_out(self, features, class_codes, sample_weight, rng):
        """Split off validation data: ``(features, class_codes, sample_weight,
        validation)``, the first three of the training part.

        The base class trains on everything (``validation=None``).
        """
        return features, class_codes, sample_weight, None

    def _monitorable(self):
        """History keys a skorch callback may monitor, with why others cannot."""
        return {"train_loss", "train_loss_best"}, (
            "this embedder records no validation score (it has no validation split); "
            "monitor 'train_loss' (one loss throughout the training)")

    @uses_n_jobs
    def fit(self, X, y=None, sample_weight=None):
        """Learn the embedding: ``n_estimators`` networks into ``estimators_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, [channels,] \
height, width), or torch Dataset
            Training inputs: feature rows (dense, or a scipy sparse matrix,
            densified a batch at a time), or images (then the default
            encoder is a :class:`~sklearn_clmle.nn.ConvEncoder`), or a
            ``torch.utils.data.Dataset`` of ``(input, label)`` items (or bare
            inputs, with ``y``) read lazily in batches.
        y : array-like of shape (n_samples,) or (n_samples, n_attributes), default=None
            Class labels of any type (ints, strings), or a binary indicator
            matrix for estimators tagged ``target_tags.multi_output``.
            Required for arrays; for a dataset, ``None`` takes ``X.targets``
            when it exists, else the items' labels (one pass over the dataset).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of every row, as if the row were repeated
            that many times: batches draw rows in proportion to their
            weights (within the class a balanced batch draws first), clusters
            hold equal shares of weight, and class sizes, scalers and scores
            are weighted (``docs/method.md``, section 10). Weight 0 drops the
            row; equal weights fit what no weights fit.

        Returns
        -------
        self : object
            Fitted embedder.
        """
        self._validate_params()
        check_ensemble_params(self)
        # A refit keeps nothing of an earlier fit (a multi-label one, input rows, ...).
        clear_fitted_attributes(self)
        name = type(self).__name__
        if isinstance(X, Dataset):
            X, probe, y = self._check_dataset(X, y)
            X, y, weights = drop_zero_weight_rows(X, y, sample_weight)
        else:
            X, y = validate_data(self, X, y, dtype=np.float32, multi_output=True,
                                 ensure_min_samples=2, allow_nd=True, accept_sparse="csr")
            X, y, weights = drop_zero_weight_rows(X, y, sample_weight)
            self.input_shape_ = check_input_shape(X, name)
            probe = None
        if isinstance(X, Dataset) or len(self.input_shape_) > 1:
            self._check_no_scaling()
        if self.test_time_flip and len(self.input_shape_) == 1:
            raise ValueError(
                "test_time_flip=True mirrors images left to right; it needs image inputs "
                "(n_samples, [channels,] height, width), not feature rows."
            )
        y = check_class_labels(y, name, multi_label=get_tags(self).target_tags.multi_output)
        check_input_weight(self, X, y.ndim > 1)
        if weights is not None and len(y) < 2:
            raise ValueError(f"{name} needs at least 2 rows of positive sample_weight; got "
                             f"{len(y)}.")
        codes = self._encode_labels(y)
        check_callbacks(self.callbacks, self._monitorable(), name)
        self.device_ = check_device(self.device, name)

        rng = check_random_state(self.random_state)
        folds = None
        if getattr(self, "input_weight", 0.0) == "auto" and can_cross_fit(X, y, self):
            # Cross-fitted networks: network k never sees fold k, so every row
            # has a held-out embedding to choose the input rows' weight on.
            # (The seed is drawn only here: elsewhere "auto" fits what
            # input_weight=0 fits.)
            fold_seed = int(rng.randint(np.iinfo(np.int32).max))
            folds = cross_fit_folds(y, self.n_estimators, fold_seed)
        self.estimators_ = []
        for rows, seed in member_rows(self, y, folds, rng):
            if rows is None:
                part = X, codes, weights
            else:
                part = (take_rows(X, rows), codes[rows],
                        None if weights is None else weights[rows])
            self.estimators_.append(self._fit_network(*part, probe, seed))

        chosen = scaler = None
        if folds is not None:
            classifier = input_weight_classifier(self, fold_seed, weights is not None)
            # Scores the choice, then scales transform's rows.
            scaler = fit_input_scaler(X, weights)
            embeddings = [self._network_embedding(member, X) for member in self.estimators_]
            chosen, self.input_weight_scores_ = choose_input_weight(
                embeddings, folds, X, y, scaler, classifier, self._input_weight_choice,
                sample_weight=weights, seed=fold_seed)
        set_input_rows(self, X, chosen, scaler, sample_weight=weights)
        return self

    def _fit_network(self, X, codes, sample_weight, probe, random_state):
        """Train one network on validated rows: a :class:`~._fitted_network.FittedNetwork`.

        ``codes`` are the rows' class codes (``_encode_labels``), ``probe``
        a batch of a dataset's first inputs (``None`` for arrays), and
        ``random_state`` seeds the scaler, the hold-out and torch.
        """
        # A part of equal weights trains as one of no weights (as a fit does).
        _, weights = positive_weight_rows(sample_weight, len(codes))
        scaler = None
        features = X
        if not isinstance(X, Dataset):
            scaler = self._fit_scaler(X, weights, random_state)
            features = self._network_inputs(X, scaler)
            probe = features[:2].to_dense() if isinstance(features, SparseRows) else features
        resolved = self._check_params_vs_input(self._class_counts(codes))
        rng = check_random_state(random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        class_codes = torch.from_numpy(codes).long()
        if weights is not None:
            weights = torch.from_numpy(weights)
        features, class_codes, weights, validation = self._hold_out(features, class_codes,
                                                                    weights, rng)
        if isinstance(features, Dataset):
            training_data, targets = IndexedDataset(features, class_codes), None
        else:
            training_data = {"features": features, "index": torch.arange(len(features))}
            targets = class_codes
        fork_devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        # Seeding a forked global RNG makes initialisation and dropout
        # reproducible without touching the user's own random streams.
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            network = self._build_network(probe, *self._network_targets())
            # Known before the plan is made: losses with per-class parameters need it.
            self.embedding_dim_ = network.class_weight.shape[-1]
            plan = self._make_plan(features, class_codes, generator, validation,
                                   sample_weight=weights, resolved=resolved)
            criterion = self._make_criterion(class_codes, sample_weight=weights)
            net = EmbeddingNet(
                network, plan=plan, criterion=criterion, optimizer=torch.optim.AdamW,
                lr=self.lr, optimizer__weight_decay=self.weight_decay,
                # One fused kernel for all parameters: on the CPU a twentieth
                # of a training step less than the multi-tensor step, itself
                # cheaper than torch's default loop (benchmarks/step_cost.py).
                optimizer__fused=True,
                max_epochs=plan.n_epochs, train_split=None, device=self.device_,
                callbacks=[("plan", plan), *plan.callbacks,
                           ("progress", BatchProgress(plan, int(self.verbose))),
                           *(self.callbacks or [])],
                verbose=0,
            )
            try:
                net.fit(training_data, targets)
            except TrainingDivergedError as exc:
                raise ValueError(str(exc)) from exc
        return FittedNetwork(
            module=net.module_.eval(), history=net.history, scaler=scaler,
            best_epoch=(None if validation is None
                        else plan.validation_readout.best_epoch_),
            cluster_size=resolved.get("cluster_size"), random_state=random_state,
            n_samples=len(codes))

    @uses_n_jobs
    def transform(self, X):
        """Embed ``X`` on the unit sphere.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``, or torch Dataset
            Inputs shaped as in ``fit``; a dataset is read in batches of
            ``transform_batch_size`` items, in order.

        Returns
        -------
        ndarray of shape (n_samples, `embedding_dim_`), dtype float32
            Unit-norm embeddings; ``(n_samples, 2 * embedding_dim_)`` with
            ``test_time_flip``. After a multi-label fit, the ``n_attributes_``
            heads side by side (see :class:`CLMLEEmbedder`). The networks of
            ``estimators_`` side by side, divided by ``sqrt(n_estimators)``;
            with ``input_weight_ > 0``, the standardised input rows after
            them (``n_features_in_`` more columns; the rows keep unit norm).
        """
        check_is_fitted(self)
        name = type(self).__name__
        if isinstance(X, Dataset):
            if self.estimators_[0].scaler_ is not None:
                raise ValueError(
                    f"This embedder scales feature rows (feature_scaling="
                    f"{self.feature_scaling!r}) and was fitted on an array; transform an "
                    "array too, or fit on the dataset (datasets are not scaled).")
            check_input_shape(first_inputs(X, 1, name), name, expected=self.input_shape_)
        else:
            if len(self.input_shape_) > 1:
                # Name the image shape before validate_data's count of "features"
                # (the channels, for images) says something less helpful.
                check_input_shape(np.asarray(X), name, expected=self.input_shape_)
            X = validate_data(self, X, dtype=np.float32, reset=False, allow_nd=True,
                              accept_sparse="csr")
            check_input_shape(X, name, expected=self.input_shape_)
        Z = join_members([self._network_embedding(member, X) for member in self.estimators_],
                         getattr(self, "n_attributes_", 1))
        return add_input_rows(self, Z, X)

    def _network_embedding(self, member, X):
        """One network's embedding of validated inputs (a dataset or rows)."""
        features = X if isinstance(X, Dataset) else self._network_inputs(X, member.scaler_)
        return self._embed(member.module_, features).cpu().numpy()

    def _fit_scaler(self, X, sample_weight, random_state):
        """The feature scaling fitted on validated feature rows (None for
        images), with the rows' weights; ``random_state`` seeds quantiles.

        Users' columns come in their own units (counts up to 1e5 beside
        0/1 flags); a network needs them on one scale. ``"quantile"`` maps
        every column through its empirical quantiles to a standard normal,
        robust to heavy tails and outliers (as tabular deep-learning work
        preprocesses); ``"standard"`` removes mean and variance.
        """
        if len(self.input_shape_) > 1:
            return None
        method = self.feature_scaling
        if method == "auto":
            # A module of the user's own gets its inputs as given.
            method = DEFAULT_FEATURE_SCALING if self.module is None else None
        if method == "quantile":
            if sample_weight is not None:
                raise ValueError(
                    f"{type(self).__name__}: feature_scaling='quantile' cannot weight rows "
                    "(scikit-learn's QuantileTransformer takes no sample_weight). Use "
                    "feature_scaling='standard' (or 'auto'), which weights them, or scale "
                    "X before the embedder and pass feature_scaling=None.")
            if issparse(X):
                raise ValueError(
                    f"{type(self).__name__}: feature_scaling='quantile' maps every value "
                    "through its column's quantiles, zeros included, and so needs dense "
                    "rows; X is sparse. Use feature_scaling='standard' (or 'auto'), which "
                    "standardises each batch as it is densified, or None.")
            seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
            return QuantileTransformer(
                n_quantiles=max(2, min(1000, len(X))), output_distribution="normal",
                random_state=seed).fit(X)
        elif method == "standard" and issparse(X):
            # Centring a sparse matrix would fill it: the mean and scale are
            # computed here and applied to each batch as it is densified.
            return StandardScaler(with_mean=False).fit(
                X, sample_weight=sample_weight).set_params(with_mean=True)
        if method == "standard":
            return StandardScaler().fit(X, sample_weight=sample_weight)
        return None

    def _network_inputs(self, X, scaler):
        """The network's inputs for validated rows: a tensor, scaled by
        ``scaler`` (a network's ``scaler_``), or for sparse rows a
        :class:`~.nn.sparse_rows.SparseRows`
        that standardises each batch as it densifies it."""
        if not issparse(X):
            if scaler is not None:
                X = scaler.transform(X).astype(np.float32)
            return to_tensor(X)
        if isinstance(scaler, QuantileTransformer):
            raise ValueError(
                f"{type(self).__name__} was fitted with feature_scaling='quantile', which "
                "needs dense rows; X is sparse. Transform X.toarray(), or refit with "
                "feature_scaling='standard' to embed sparse rows.")
        # (validate_data made it CSR; repeated cells add up when densified, as in scipy.)
        return SparseRows.from_csr(X.indptr, X.indices, X.data, X.shape[1],
                                   center=None if scaler is None else scaler.mean_,
                                   scale=None if scaler is None else scaler.scale_)

    def _check_no_scaling(self):
        # Scaling applies to feature rows only: images and datasets pass as they are.
        if self.feature_scaling not in ("auto", None):
            raise ValueError(
                f"feature_scaling={self.feature_scaling!r} applies to feature rows "
                "(n_samples, n_features) only; images and torch datasets are passed to the "
                "network as they are. Use feature_scaling='auto' or None.")

    def _check_dataset(self, dataset, y):
        """Checks of a torch dataset (validate_data's role for arrays).

        Returns the dataset, a probe batch of its first two inputs and the labels.
        """
        name = type(self).__name__
        labels = dataset_labels(dataset, y, name)
        probe = first_inputs(dataset, 2, name)
        self.input_shape_ = check_input_shape(probe, name)
        self.n_features_in_ = self.input_shape_[0]
        return dataset, probe, labels

    def _embed(self, module, features):
        out = embed(module, features, self.device_, self.transform_batch_size,
                    flip=self.test_time_flip)
        bad = ~torch.isfinite(out).all(dim=1)
        if bad.any():
            raise ValueError(
                f"The network gives NaN or infinite embeddings for {int(bad.sum())} of "
                f"{len(out)} inputs: their values overflow its float32 layers (they are far "
                "larger than the training data, or not finite). Scale the inputs as in fit "
                "(e.g. a StandardScaler fitted on the training data in a Pipeline)."
            )
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        ``<lowercase class name><j>`` for the embedding's columns, then, when
        the input rows are beside it (``input_weight_ > 0``),
        ``<lowercase class name>_input_<feature name>`` for theirs.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names, checked against ``feature_names_in_``.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        names = super().get_feature_names_out(input_features)
        if not getattr(self, "input_weight_", 0.0):
            return names
        inputs = _check_feature_names_in(self, input_features)
        prefix = type(self).__name__.lower()
        return np.concatenate([names[:len(names) - len(inputs)],
                               np.asarray([f"{prefix}_input_{name}" for name in inputs],
                                          dtype=object)])

    @property
    def _n_features_out(self):
        rows = self.n_features_in_ if getattr(self, "input_weight_", 0.0) else 0
        return (self.embedding_dim_ * (2 if self.test_time_flip else 1)
                * len(self.estimators_)) + rows

    def _network_targets(self):
        # (classes per head, number of heads): None heads is the single-label network.
        return len(self.classes_), None

    def _build_network(self, features, n_classes, n_heads=None):
        input_shape = tuple(features.shape[1:])
        encoder = self._build_encoder(input_shape, trunk=n_heads is not None)
        encoder.eval()
        batch = features[:2]
        try:
            with torch.no_grad():
                probe = encoder(batch)
        except (RuntimeError, ValueError, TypeError) as exc:
            accepts = (f"{input_shape[0]} input features" if len(input_shape) == 1
                       else f"inputs of shape {input_shape}")
            raise ValueError(
                f"The module failed on a batch of inputs of shape {tuple(batch.shape)} "
                f"({type(exc).__name__}: {exc}); check that it accepts {accepts}."
            ) from exc
        if not torch.is_tensor(probe) or probe.ndim < 2 or probe.shape[0] != len(batch):
            shape = tuple(probe.shape) if torch.is_tensor(probe) else type(probe).__name__
            raise ValueError(
                f"The module must return a tensor of shape (batch_size, ...) with one row "
                f"per input; got {shape} for a batch of {len(batch)}."
            )
        embedding_dim = int(np.prod(probe.shape[1:]))
        if n_heads is None and self.module is not None and self.embedding_dim != embedding_dim:
            # The same value as the module's output (a record of it) is harmless.
            check_no_effect(self, "embedding_dim", "with a custom `module`, whose output "
                            f"sets the dimension (here {embedding_dim})",
                            "leave it at its default, or size the module's output")
        if n_heads is None and not any(p.requires_grad for p in encoder.parameters()):
            # The cosine head would train alone in pre-training, and the
            # cluster losses, on the embeddings only, would have no gradient.
            raise ValueError(
                f"The module {type(encoder).__name__} has no trainable parameters, so "
                "there is no embedding to learn. Pass a module with parameters (or "
                "module=None for the default MLP); to cluster fixed features, use "
                "KNearestClusterClassifier on them directly."
            )
        if n_heads is not None:
            return MultiHeadEmbeddingNetwork(encoder, embedding_dim, self.embedding_dim,
                                             n_heads, n_classes).to(self.device_)
        return EmbeddingNetwork(encoder, embedding_dim, n_classes).to(self.device_)

    def _build_encoder(self, input_shape, trunk=False):
        # A trunk (shared by the heads of a multi-label network) is the default
        # encoder without its last projection: each head is that projection.
        params = dict(self.module_params or {})
        if self.module is None:
            if len(input_shape) == 1:
                default, args = MLPEncoder, (input_shape[0],)
            else:
                # Images: (height, width) gets one channel.
                default = ConvEncoder
                args = ((1, *input_shape) if len(input_shape) == 2 else input_shape,)
            try:
                return default(*args, embedding_dim=None if trunk else self.embedding_dim,
                               **params)
            except TypeError as exc:
                raise ValueError(
                    f"module_params={params} do not fit {default.__name__}, the default "
                    f"encoder for inputs of shape {input_shape} ({exc})."
                ) from exc
        if isinstance(self.module, nn.Module):
            if params:
                raise ValueError("module_params apply only when `module` is a class, "
                                 "not an instance.")
            # A copy, re-initialised under our seed: fitting never mutates the
            # given instance and `random_state` governs its weights.
            encoder = copy.deepcopy(self.module)
            for layer in encoder.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
            return encoder
        if isinstance(self.module, type) and issubclass(self.module, nn.Module):
            return self.module(**params)
        raise TypeError(f"`module` must be None, an nn.Module subclass or instance; "
                        f"got {self.module!r}.")

    # The attributes of one network, read on the embedder before every
    # embedder kept its networks in estimators_ (0.1): deprecated.
    module_ = deprecated_network_attribute("module_")
    history_ = deprecated_network_attribute("history_")
    scaler_ = deprecated_network_attribute("scaler_")
    best_epoch_ = deprecated_network_attribute("best_epoch_")
    cluster_size_ = deprecated_network_attribute("cluster_size_")

    def __getstate__(self):
        # Torch state travels as NumPy arrays (see _persistence): the pickle
        # loads on machines without the fitting device, and skops can store it.
        state = dict(super().__getstate__())  # a copy: it may be our own __dict__
        if "estimators_" in state:
            state["estimators_"] = [
                member.replace(module_=module_to_arrays(member.module_),
                               history_=[dict(row) for row in member.history_])
                for member in self.estimators_]
            state["device_"] = str(self.device_)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "estimators_" not in state:
            return
        self.device_ = loadable_device(self.device_)
        # Rebuilding draws initial weights that the saved ones overwrite:
        # keep that draw off the user's global torch stream.
        with torch.random.fork_rng(devices=[]):
            probe = torch.zeros(2, *self.input_shape_)
            networks = [self._build_network(probe, *self._network_targets())
                        for _ in self.estimators_]
        self.estimators_ = [
            member.replace(module_=load_arrays(network, member.module_).to(self.device_).eval(),
                           history_=History(member.history_))
            for member, network in zip(self.estimators_, networks)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        tags.input_tags.sparse = True  # feature rows as CSR / CSC, densified a batch at a time
        return tags


class BaseClusterEmbedder(BaseEmbedder):
    """Shared part of the cluster-based embedders (CLMLE, LMLE).

    Both train under :class:`~._plans.ClusterPlan` (softmax pre-training,
    then rounds of re-clustering and cluster batches) and differ only in the
    cluster loss, built by :meth:`_make_cluster_loss`. This class holds the
    parameters they share, their validation and the ``"auto"`` rules.
    """

    #: Fixed re-clustering settings (``_settings.py``).
    _recluster = RECLUSTER

    _parameter_constraints = {
        **BaseEmbedder._parameter_constraints,
        "scale": [Interval(Real, 0, None, closed="neither")],
        "cluster_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "clusters_per_batch": [Interval(Integral, 2, None, closed="left")],
        "samples_per_cluster": [Interval(Integral, 1, None, closed="left"),
                                StrOptions({"auto"})],
        "n_rounds": [Interval(Integral, 0, None, closed="left")],
        "steps_per_round": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "pretrain_steps": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "softmax_weight": [Interval(Real, 0, None, closed="left")],
        "query": [StrOptions({"hardest", "uniform"})],
        "cost_sensitive": ["boolean"],
        "pretrain_loss": [StrOptions({"balanced", "logit_adjusted"})],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "restore_best": ["boolean"],
        "input_weight": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="left")],
        "input_weight_estimator": [None, HasMethods(["fit", "predict"])],
    }

    def __init__(self, *, scale, cluster_size, clusters_per_batch, samples_per_cluster, n_rounds,
                 steps_per_round, pretrain_steps, softmax_weight, query, cost_sensitive,
                 pretrain_loss, validation_fraction, restore_best, input_weight,
                 input_weight_estimator, **common):
        # The parameters of both cluster embedders (see BaseEmbedder.__init__).
        super().__init__(**common)
        self.scale = scale
        self.cluster_size = cluster_size
        self.clusters_per_batch = clusters_per_batch
        self.samples_per_cluster = samples_per_cluster
        self.n_rounds = n_rounds
        self.steps_per_round = steps_per_round
        self.pretrain_steps = pretrain_steps
        self.softmax_weight = softmax_weight
        self.query = query
        self.cost_sensitive = cost_sensitive
        self.pretrain_loss = pretrain_loss
        self.validation_fraction = validation_fraction
        self.restore_best = restore_best
        self.input_weight = input_weight
        self.input_weight_estimator = input_weight_estimator

    @abstractmethod
    def _make_cluster_loss(self):
        """Return the loss of the cluster rounds (``per_sample`` / ``reduce``)."""

    def _check_params_vs_input(self, class_counts):
        # Counts may be one row per head (multi-label, see _multilabel.py): every
        # row sums to n_samples, and the cluster size is resolved over all classes.
        n_samples = int(class_counts.sum(axis=-1).max())
        class_counts = class_counts.ravel()
        if self.cluster_size == "auto":
            cluster_size = auto_cluster_size(class_counts)
        else:
            check_cluster_size(self.cluster_size, class_counts)
            cluster_size = self.cluster_size
        samples_per_cluster = (min(20, cluster_size) if self.samples_per_cluster == "auto"
                               else self.samples_per_cluster)
        pretrain_steps, steps_per_round = auto_budget(
            n_samples, self.clusters_per_batch * samples_per_cluster)
        resolved = dict(
            cluster_size=cluster_size, samples_per_cluster=samples_per_cluster,
            pretrain_steps=(pretrain_steps if self.pretrain_steps == "auto"
                            else self.pretrain_steps),
            steps_per_round=(steps_per_round if self.steps_per_round == "auto"
                             else self.steps_per_round))
        if self.n_rounds == 0 and resolved["pretrain_steps"] == 0:
            raise ValueError("n_rounds=0 and pretrain_steps=0 leave nothing to train.")
        if self.validation_fraction is None:
            check_no_effect(self, "restore_best", "without a validation split",
                            "set validation_fraction, or leave restore_best at its default")
        if resolved["pretrain_steps"] == 0 and self.softmax_weight == 0:
            check_no_effect(self, "pretrain_loss", "without pre-training or a softmax term",
                            "set pretrain_steps above 0, or leave pretrain_loss at its default")
        return resolved

    def _make_softmax_loss(self, class_codes, sample_weight=None):
        """The cosine softmax of the pre-training (and of ``softmax_weight``).

        ``"balanced"``: class-balanced batches, each sample weighted by the
        inverse in-batch frequency of its class (``cost_sensitive``);
        ``"logit_adjusted"``: instance-balanced batches and cross-entropy on
        ``s cos + log prior`` (Menon et al. 2021), which learns the
        representation from every sample as drawn (Kang et al. 2020).
        """
        if self.pretrain_loss == "logit_adjusted":
            # The prior of the rows trained on (after any validation hold-out).
            counts = weighted_class_counts(class_codes, sample_weight, len(self.classes_))
            return LogitAdjustedLoss(counts, scale=self.scale)
        return CosFaceLoss(scale=self.scale, margin=0.0, cost_sensitive=self.cost_sensitive)

    def _hold_out(self, features, class_codes, sample_weight, rng):
        """A stratified ``validation_fraction`` of every class large enough.

        A class gives samples to validation only when it has at least two and
        ``validation_fraction`` of it is at least one sample; smaller classes
        stay whole in training (they could not be learnt from nothing).
        """
        if self.validation_fraction is None:
            return features, class_codes, sample_weight, None
        train, valid = stratified_hold_out(class_codes.numpy(), self.validation_fraction,
                                           rng, type(self).__name__)
        train, valid = torch.from_numpy(train), torch.from_numpy(valid)
        weights = ((None, None) if sample_weight is None
                   else (sample_weight[train], sample_weight[valid]))
        return (take_rows(features, train), class_codes[train], weights[0],
                (take_rows(features, valid), class_codes[valid], weights[1]))

    def _monitorable(self):
        if self.validation_fraction is None:
            return set(), (
                "the cluster embedders record no validation score without a validation "
                "split, and 'train_loss' mixes the pre-training loss with the cluster "
                "loss (different scales); set validation_fraction (e.g. 0.2) and monitor "
                "'valid_bacc' with lower_is_better=False")
        return {"valid_bacc", "valid_bacc_best"}, (
            "the cluster embedders record 'valid_bacc' (higher is better), not a "
            "validation loss, and 'train_loss' mixes the pre-training loss with the "
            "cluster loss (different scales); monitor 'valid_bacc' with "
            "lower_is_better=False")

    def _training_types(self, class_codes):
        """The classes of the plan and of the criterion for these class codes."""
        return ClusterPlan, ClusterCriterion

    def _make_criterion(self, class_codes, sample_weight=None):
        criterion = self._training_types(class_codes)[1]
        return criterion(self._make_cluster_loss(),
                         self._make_softmax_loss(class_codes, sample_weight),
                         self.softmax_weight)

    def _make_plan(self, features, class_codes, generator, validation=None,
                   sample_weight=None, resolved=None):
        plan = self._training_types(class_codes)[0]
        extra = {} if validation is None else dict(validation=validation,
                                                   restore_best=self.restore_best)
        return plan(
            features, class_codes, generator, self.transform_batch_size,
            pretrain_sampling=("random" if self.pretrain_loss == "logit_adjusted"
                               else "class_balanced"),
            cluster_size=resolved["cluster_size"],
            clusters_per_batch=self.clusters_per_batch,
            samples_per_cluster=resolved["samples_per_cluster"],
            pretrain_steps=resolved["pretrain_steps"],
            n_rounds=self.n_rounds,
            steps_per_round=resolved["steps_per_round"],
            query=self.query,
            recluster=self._recluster,
            sample_weight=sample_weight,
            **extra,
        )


def auto_budget(n_samples, batch_size, *, pretrain_epochs=30, min_pretrain_steps=300,
                round_epochs=5, min_round_steps=60, max_pretrain_steps=1_500,
                max_round_steps=100):
    """``"auto"`` training budget: ``(pretrain_steps, steps_per_round)``.

    Epochs over the data (passes of ``batch_size`` samples), so that the
    network trains as much on 20,000 samples as on 200, with floors for
    small data sets (a few hundred steps are needed whatever the size) and
    caps for very large ones. The keyword values are the defaults, chosen on
    the development suite (``docs/defaults.md``); benchmarks call this with
    other values to compare rules.
    """
    passes = math.ceil(n_samples / batch_size)
    pretrain = min(max_pretrain_steps, max(min_pretrain_steps, pretrain_epochs * passes))
    per_round = min(max_round_steps, max(min_round_steps, round_epochs * passes))
    return pretrain, per_round


def auto_cluster_size(class_counts):
    """Data-size-aware cluster size ``l`` for ``cluster_size="auto"``.

    The paper's ``l = 200`` assumes classes of hundreds of samples. Here ``l``
    is a quarter of the median class size, between 2 and 200, so that a
    typical class holds a few clusters and the smallest hold one.
    """
    median = float(sorted(class_counts)[len(class_counts) // 2])
    return int(min(200, max(2, round(median / 4))))
