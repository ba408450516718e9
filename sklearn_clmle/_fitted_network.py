"""What one trained network of an embedder holds: the elements of ``estimators_``.

Every embedder keeps its networks in ``estimators_``, one or
``n_estimators`` of them, as a random forest keeps its trees even when it
has one: a fitted embedder has one shape whatever the fit. The embedder
owns what its networks share (the classes, the input checks, the device,
the input rows of ``input_weight``); a :class:`FittedNetwork` holds what
one network learnt.
"""

import copy


class FittedNetwork:
    """One trained network of an embedder (an element of its ``estimators_``).

    Not an estimator: it is made by the embedder's ``fit`` and read by its
    ``transform``; its attributes are for inspection (training curves, the
    torch module for export).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network, in eval mode (the encoder with its cosine
        head; with ``restore_best``, the weights of ``best_epoch_``).
    history_ : skorch.history.History
        Per-epoch training record: ``train_loss``, ``stage``, ``n_clusters``
        for the cluster embedders, and ``valid_bacc`` with
        ``validation_fraction``.
    scaler_ : QuantileTransformer, StandardScaler or None
        Feature scaling fitted on this network's rows (``None`` for images,
        datasets or ``feature_scaling=None``).
    best_epoch_ : int or None
        With ``validation_fraction``: the epoch (as numbered in
        ``history_``, 1 being the pre-training) of best ``valid_bacc``;
        ``None`` without a validation split.
    cluster_size_ : int or None
        The resolved cluster size of the cluster embedders (from this
        network's rows); ``None`` for the others.
    random_state : int, RandomState instance or None
        The seed it trained under: the embedder's ``random_state`` for a
        single network, a seed drawn from it for each member of an ensemble.
    n_samples_ : int
        Number of rows it trained on (a bootstrap sample or a cross-fit
        part counts its rows; validation rows included).
    """

    def __init__(self, *, module, history, scaler, best_epoch, cluster_size, random_state,
                 n_samples):
        self.module_ = module
        self.history_ = history
        self.scaler_ = scaler
        self.best_epoch_ = best_epoch
        self.cluster_size_ = cluster_size
        self.random_state = random_state
        self.n_samples_ = n_samples

    def __repr__(self):
        return (f"FittedNetwork(random_state={self.random_state!r}, "
                f"n_samples_={self.n_samples_}, epochs={len(self.history_)})")

    def replace(self, **attributes):
        """A shallow copy with some attributes replaced (for pickling the torch state)."""
        other = copy.copy(self)
        for name, value in attributes.items():
            setattr(other, name, value)
        return other
