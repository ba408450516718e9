"""Torch building blocks of the library: losses, clustering, batch samplers,
encoders and nearest-cluster search. Nothing here imports scikit-learn, so the
pieces can be used in any torch training loop."""

from .clustering import cluster_within_classes, equal_size_spherical_kmeans
from .encoders import ConvEncoder, EmbeddingNetwork, MLPEncoder
from .losses import ClusterMarginLoss, CosineSoftmaxLoss, inverse_frequency_weights
from .sampling import ClassBalancedBatchSampler, ClusterBatchSampler
from .search import nearest_cluster_log_scores

__all__ = [
    "ClassBalancedBatchSampler",
    "ClusterBatchSampler",
    "ClusterMarginLoss",
    "ConvEncoder",
    "CosineSoftmaxLoss",
    "EmbeddingNetwork",
    "MLPEncoder",
    "cluster_within_classes",
    "equal_size_spherical_kmeans",
    "inverse_frequency_weights",
    "nearest_cluster_log_scores",
]
