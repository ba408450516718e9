"""Torch building blocks of the library: losses, clustering, batch samplers,
the cluster index of Sec. 3.3, encoders, nearest-cluster search and open-set
verification metrics. Nothing here imports scikit-learn, so the pieces can
be used in any torch training loop."""

from .cluster_index import ClusterIndex
from .clustering import cluster_within_classes, equal_size_spherical_kmeans
from .encoders import (
    ConvEncoder,
    EmbeddingNetwork,
    FastDropout,
    MLPEncoder,
    MultiHeadEmbeddingNetwork,
    PeriodicFeatureEmbedding,
)
from .functional import unit_normalize
from .losses import ClusterMarginLoss, TripleHeaderHingeLoss, inverse_frequency_weights
from .margin_losses import (
    ArcFaceLoss,
    CosFaceLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    SphereFaceLoss,
    class_balanced_weights,
    deferred_reweighting,
)
from .centers import ClassCenterTracker, ClassCentreTracker
from .pair_losses import (
    CenterLoss,
    ClassRectificationLoss,
    ContrastiveLoss,
    RangeLoss,
    TripletLoss,
)
from .quintuplets import Quintuplets, mine_quintuplets
from .sampling import (
    ClassBalancedBatchSampler,
    ClassBlockBatchSampler,
    InterleavedBatchSampler,
    RandomBatchSampler,
)
from .search import nearest_cluster_log_scores
from .verification import (
    cmc_curve,
    cosine_pair_scores,
    identification_ranks,
    kfold_verification_accuracy,
    roc_curve,
    tar_at_far,
)

__all__ = [
    "ArcFaceLoss",
    "CenterLoss",
    "ClassBalancedBatchSampler",
    "ClassBlockBatchSampler",
    "ClassCenterTracker",
    "ClassCentreTracker",
    "ClassRectificationLoss",
    "ClusterIndex",
    "ClusterMarginLoss",
    "ContrastiveLoss",
    "ConvEncoder",
    "CosFaceLoss",
    "EmbeddingNetwork",
    "FastDropout",
    "FocalLoss",
    "InterleavedBatchSampler",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "MLPEncoder",
    "MultiHeadEmbeddingNetwork",
    "PeriodicFeatureEmbedding",
    "Quintuplets",
    "RandomBatchSampler",
    "RangeLoss",
    "SphereFaceLoss",
    "TripleHeaderHingeLoss",
    "TripletLoss",
    "class_balanced_weights",
    "cmc_curve",
    "cosine_pair_scores",
    "cluster_within_classes",
    "deferred_reweighting",
    "equal_size_spherical_kmeans",
    "identification_ranks",
    "inverse_frequency_weights",
    "kfold_verification_accuracy",
    "mine_quintuplets",
    "nearest_cluster_log_scores",
    "roc_curve",
    "tar_at_far",
    "unit_normalize",
]
